package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jwkctl/jwkctl/internal/ctxsleep"
)

// DefaultTimeout is how long one Cloud KMS operation may take, retries
// included, when keystore.Options.KMSTimeout is zero.
const DefaultTimeout = 30 * time.Second

// retryBackoff is the Cloud KMS client libraries' backoff for
// GetPublicKey and AsymmetricSign (each wait random up to a ceiling that
// starts at 100 ms and grows 1.3× a try), with a lower top so a short
// budget still sees several tries.
var retryBackoff = struct {
	Initial, Max time.Duration
	Multiplier   float64
}{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 1.3}

// retryable: the statuses the Cloud KMS client libraries retry for these
// calls. A request that got no answer counts as UNAVAILABLE.
func retryable(status string) bool { return status == "UNAVAILABLE" || status == "DEADLINE_EXCEEDED" }

// retrying runs one KMS call within timeout (DefaultTimeout if zero),
// retrying UNAVAILABLE (HTTP 503, or no answer) and a server-side
// DEADLINE_EXCEEDED (504) with backoff as the KMS client libraries do,
// noting what each try answered: when the budget runs out, the error says
// how long KMS was tried and what it last said, instead of a bare
// "context deadline exceeded". Other errors go through mapErr.
func retrying(ctx context.Context, timeout time.Duration, what, name, permission string, call func(context.Context) error) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// How long KMS is tried, as planned: the budget, or less when the
	// caller's own deadline comes first.
	deadline, _ := ctx.Deadline()
	tried := deadline.Sub(start).Round(100 * time.Millisecond)
	// The last answer, but not a DEADLINE_EXCEEDED after another one:
	// the try cut short by our own budget would hide the cause.
	var last error
	tries := 0
	ceiling := retryBackoff.Initial
	var err error
	for {
		err = call(ctx)
		if err == nil {
			return nil
		}
		tries++
		st := statusOf(err)
		if !retryable(st) {
			break
		}
		if last == nil || st != "DEADLINE_EXCEEDED" {
			last = err
		}
		wait := time.Duration(rand.Int64N(int64(ceiling)) + 1)
		ceiling = min(time.Duration(float64(ceiling)*retryBackoff.Multiplier), retryBackoff.Max)
		if serr := ctxsleep.Sleep(ctx, wait); serr != nil {
			err = serr
			break
		}
	}
	timedOut := errors.Is(err, context.DeadlineExceeded) || statusOf(err) == "DEADLINE_EXCEEDED"
	if timedOut && last != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("gcpkms: %s %s: Cloud KMS unavailable for %v, %d tries (last: %s: %s); --kms-timeout sets how long to try: %w",
			what, name, tried, tries, codeName(statusOf(last)), message(last), context.DeadlineExceeded)
	}
	return mapErr(err, what, name, permission)
}
