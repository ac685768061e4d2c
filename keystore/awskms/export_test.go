package awskms

import "time"

type noDelay struct{}

func (noDelay) BackoffDelay(int, error) (time.Duration, error) { return time.Millisecond, nil }

// Tests do not wait seconds between retries of a throttled call.
func init() { retryBackoff = noDelay{} }
