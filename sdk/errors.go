package sdk

import (
	"errors"
	"strconv"
)

// Sentinel errors of the SDK. Check them with errors.Is.
var (
	// ErrNoApp is returned by Connect and NewClient when WithApp is missing.
	ErrNoApp = errors.New("sessionmon sdk: WithApp is required")
	// ErrInvalidOption is returned by Connect and NewClient for an option
	// with a value out of range or that does not apply.
	ErrInvalidOption = errors.New("sessionmon sdk: invalid option")
	// ErrClosed is returned by every publishing call, Flush and Close once
	// Close has been called.
	ErrClosed = errors.New("sessionmon sdk: client closed")
	// ErrBufferFull is returned by PublishAsync when the async buffer is
	// full (immediately by default, or after the WithBlockOnFull timeout).
	// The event was not accepted; the caller may drop it or retry.
	ErrBufferFull = errors.New("sessionmon sdk: async buffer full")
	// ErrInvalidEvent matches (with errors.Is) every *ValidationError: an
	// event that breaks schema v1. sessionmon's own checks use the same
	// sentinel.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrNilEvent is returned when a nil *Event is published.
	ErrNilEvent = errors.New("sessionmon sdk: nil event")
	// ErrNotConfirmed is the cause given for an async event whose
	// acknowledgement had not arrived when Close gave up: the stream may
	// or may not hold it. Publishing it again with the same ID is safe
	// within the stream's duplicate window.
	ErrNotConfirmed = errors.New("sessionmon sdk: publish not confirmed before close")
	// ErrKey is returned by NewPseudonymizer for a key shorter than
	// MinKeyBytes or a malformed key id.
	ErrKey = errors.New("sessionmon sdk: invalid pseudonymization key")
)

// errAckTimeout is the cause of an async publish whose acknowledgement did
// not arrive within the publish timeout; it is retried.
var errAckTimeout = errors.New("sessionmon sdk: no acknowledgement within the publish timeout")

// PublishError reports async events that the SDK accepted but could not
// get stored: their publish failed for good (after retries for transient
// errors) or was not confirmed before Close gave up. Flush and Close return
// it; each failure is reported by exactly one of them, and to the OnError
// callback if one is set. Callers check it with errors.As.
type PublishError struct {
	// Failed is the number of events that failed since the previous report.
	Failed int
	// Err is the cause of the last of those failures.
	Err error
}

// Error returns "sessionmon sdk: N async events failed to publish (last: cause)".
func (e *PublishError) Error() string {
	msg := "sessionmon sdk: " + strconv.Itoa(e.Failed) + " async events failed to publish"
	if e.Err != nil {
		msg += " (last: " + e.Err.Error() + ")"
	}
	return msg
}

// Unwrap returns the cause of the last failure.
func (e *PublishError) Unwrap() error { return e.Err }
