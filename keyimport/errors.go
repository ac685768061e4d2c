package keyimport

import (
	"fmt"
	"strings"
)

// kindError is a sentence of its own that is also one or more of the
// sentinel errors, so messages read "keyimport: this is a public JWK …"
// rather than the sentinel's text followed by the details.
type kindError struct {
	msg   string
	kinds []error
}

func (e *kindError) Error() string   { return e.msg }
func (e *kindError) Unwrap() []error { return e.kinds }

// errorf formats a message (no %w) that errors.Is matches against kinds.
func errorf(kind error, format string, a ...any) error {
	return &kindError{msg: "keyimport: " + fmt.Sprintf(format, a...), kinds: []error{kind}}
}

// within puts where an error happened before its sentence; it stays the
// same kinds.
func within(where string, err error) error {
	return &kindError{msg: "keyimport: " + where + ": " + strings.TrimPrefix(err.Error(), "keyimport: "), kinds: []error{err}}
}
