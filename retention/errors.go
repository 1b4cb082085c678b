package retention

import "errors"

// Sentinel errors of this package; match them with errors.Is.
var (
	// ErrInvalidConfig rejects a retention: section that does not parse or
	// breaks a rule; the message names every field at fault.
	ErrInvalidConfig = errors.New("invalid retention config")
	// ErrLegalHold refuses to erase a subject under legal hold; the
	// message says since when, why, and how to lift the hold.
	ErrLegalHold = errors.New("subject is under legal hold")
	// ErrInvalidRequest rejects an erasure request or hold change with a
	// missing or malformed field; the message names the field.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound is returned for an erasure request id that does not
	// exist.
	ErrNotFound = errors.New("not found")
)
