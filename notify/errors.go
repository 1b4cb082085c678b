package notify

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of this package; match them with errors.Is.
var (
	// ErrInvalidConfig rejects a notifier or webhook configuration.
	ErrInvalidConfig = errors.New("invalid notify config")
	// ErrInvalidSecret rejects a signing secret that is not whsec_ followed
	// by the base64 of 24 to 64 bytes. An empty secret is always refused.
	ErrInvalidSecret = errors.New("invalid webhook secret")
	// ErrForbiddenAddress refuses a connection to a loopback, private,
	// link-local, reserved or otherwise not globally reachable address
	// (by the IANA special-purpose registries) for a webhook that does not
	// allow them (allow_private).
	ErrForbiddenAddress = errors.New("webhook address not allowed")
	// ErrNotFound says that an alert, a webhook or an undeliverable record
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidAlert rejects a message on the alerts stream that is not an
	// alert. It is not retried.
	ErrInvalidAlert = errors.New("invalid alert")
)

// DeliveryError is a failed delivery attempt. Callers act on it with
// errors.As: Permanent attempts are not retried, RetryAfter is the delay
// the receiver asked for (Retry-After on 429 or 503), zero when none.
type DeliveryError struct {
	// StatusCode is the receiver's HTTP status, 0 when there was no
	// response (a network error, a timeout, a refused address).
	StatusCode int
	// Permanent is true for failures a retry cannot fix: a 4xx other than
	// 408 and 429, a redirect, a refused address, a payload that cannot be
	// formatted.
	Permanent bool
	// RetryAfter is the receiver's Retry-After, or 0.
	RetryAfter time.Duration
	// Err is the cause, when there is one besides the status.
	Err error
}

func (e *DeliveryError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	switch {
	case e.StatusCode != 0 && e.Err != nil:
		return fmt.Sprintf("webhook delivery failed (%s): status %d: %v", kind, e.StatusCode, e.Err)
	case e.StatusCode != 0:
		return fmt.Sprintf("webhook delivery failed (%s): status %d", kind, e.StatusCode)
	default:
		return fmt.Sprintf("webhook delivery failed (%s): %v", kind, e.Err)
	}
}

func (e *DeliveryError) Unwrap() error { return e.Err }
