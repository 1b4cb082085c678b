package detect

import "errors"

// Sentinel errors of this package; match them with errors.Is.
var (
	// ErrInvalidAlert rejects a message on the alerts stream that is not
	// an alert (missing id, detector, severity or time).
	ErrInvalidAlert = errors.New("invalid alert")
	// ErrInvalidStatusChange rejects a status change with a missing or
	// malformed field.
	ErrInvalidStatusChange = errors.New("invalid status change")
)
