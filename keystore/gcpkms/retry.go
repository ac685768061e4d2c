package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultTimeout is how long one Cloud KMS operation may take, retries
// included, when keystore.Options.KMSTimeout is zero.
const DefaultTimeout = 30 * time.Second

// retryBackoff is the KMS client's own backoff for GetPublicKey and
// AsymmetricSign, with a lower ceiling so a short budget still sees
// several tries.
var retryBackoff = gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 1.3}

type retryerFunc func(error) (time.Duration, bool)

func (f retryerFunc) Retry(err error) (time.Duration, bool) { return f(err) }

// retrying runs one KMS call within timeout (DefaultTimeout if zero),
// retrying UNAVAILABLE (and a server-side DEADLINE_EXCEEDED) with backoff
// as the KMS client does by default, but noting what each try answered:
// when the budget runs out, the error says how long KMS was tried and
// what it last said, instead of a bare "context deadline exceeded".
// Other errors go through mapErr.
func retrying(ctx context.Context, timeout time.Duration, what, name, permission string, call func(context.Context, ...gax.CallOption) error) error {
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
	retry := gax.WithRetry(func() gax.Retryer {
		inner := gax.OnCodes([]codes.Code{codes.Unavailable, codes.DeadlineExceeded}, retryBackoff)
		return retryerFunc(func(err error) (time.Duration, bool) {
			tries++
			if last == nil || status.Code(err) != codes.DeadlineExceeded {
				last = err
			}
			return inner.Retry(err)
		})
	})
	err := call(ctx, retry)
	if err == nil {
		return nil
	}
	timedOut := errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
	if timedOut && last != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		st := status.Convert(last)
		return fmt.Errorf("gcpkms: %s %s: Cloud KMS unavailable for %v, %d tries (last: %v: %s); --kms-timeout sets how long to try: %w",
			what, name, tried, tries, st.Code(), st.Message(), context.DeadlineExceeded)
	}
	return mapErr(err, what, name, permission)
}
