package retention

import "errors"

// Sentinel errors of this package; match them with errors.Is.
var (
	// ErrInvalidConfig rejects a retention: section that does not parse or
	// breaks a rule; the message names every field at fault.
	ErrInvalidConfig = errors.New("invalid retention config")
)
