package assertion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The assertion_details types HelseID reads besides DetailTypeHelseID.
const (
	// DetailTypeSFMJournalID names the patient's journal in SFM (Sentral
	// forskrivningsmodul) a multi-tenant client acts on.
	DetailTypeSFMJournalID = "nhn:sfm:journal-id"
	// DetailTypeTrustFramework carries the trust framework
	// (tillitsrammeverk) parameters some national APIs require.
	DetailTypeTrustFramework = "nhn:tillitsrammeverk:parameters"
)

// ErrDetails is wrapped by ParseDetails for details that are not JSON
// objects with a type.
var ErrDetails = errors.New("assertion: bad assertion details")

// SFMJournalDetail is the nhn:sfm:journal-id entry of the
// assertion_details claim. It marshals to
//
//	{"type":"nhn:sfm:journal-id","value":{"journal_id":…}}
//
// as NorskHelsenett's HelseID.Library writes it.
type SFMJournalDetail struct {
	Type  string          `json:"type"`
	Value SFMJournalValue `json:"value"`
}

// SFMJournalValue holds the journal id of an SFMJournalDetail.
type SFMJournalValue struct {
	JournalID string `json:"journal_id"`
}

// SFMJournal returns the detail for journalID; an empty id gives nil (no
// detail).
func SFMJournal(journalID string) []any {
	if journalID == "" {
		return nil
	}
	return []any{SFMJournalDetail{Type: DetailTypeSFMJournalID, Value: SFMJournalValue{JournalID: journalID}}}
}

// ParseDetails reads assertion details written as JSON: one detail (an
// object) or several (an array of objects). Each must have a non-empty
// string "type"; the rest is passed on as written, since the API that
// reads it (not HelseID's token endpoint) defines its shape. Every detail
// comes back as a json.RawMessage. The error names the bad entry and
// never quotes the content.
func ParseDetails(b []byte) ([]any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty; write a JSON object with a \"type\", or an array of them", ErrDetails)
	}
	var raws []json.RawMessage
	array := b[0] == '['
	if array {
		if err := json.Unmarshal(b, &raws); err != nil {
			return nil, fmt.Errorf("%w: not a JSON array of objects (%s)", ErrDetails, jsonProblem(err))
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("%w: the array is empty", ErrDetails)
		}
	} else {
		raws = []json.RawMessage{b}
	}
	out := make([]any, 0, len(raws))
	for i, r := range raws {
		where := "the detail"
		if array {
			where = fmt.Sprintf("detail %d", i+1)
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(r, &d); err != nil || d == nil {
			if !array && err != nil && !isTypeError(err) {
				return nil, fmt.Errorf("%w: not valid JSON (%s)", ErrDetails, jsonProblem(err))
			}
			return nil, fmt.Errorf("%w: %s is not a JSON object", ErrDetails, where)
		}
		var typ string
		if t, ok := d["type"]; !ok || json.Unmarshal(t, &typ) != nil || typ == "" {
			return nil, fmt.Errorf("%w: %s has no \"type\" string (such as %q)", ErrDetails, where, DetailTypeTrustFramework)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, r); err != nil {
			return nil, fmt.Errorf("%w: %s: %s", ErrDetails, where, jsonProblem(err))
		}
		out = append(out, json.RawMessage(compact.Bytes()))
	}
	return out, nil
}

func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// jsonProblem describes a JSON error by its position only: the messages
// of encoding/json may quote the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s where an object was expected", te.Value)
	}
	return "not valid JSON"
}
