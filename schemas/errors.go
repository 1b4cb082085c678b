package schemas

import (
	"errors"

	"github.com/sessionmon/sessionmon/sdk"
)

// ErrInvalidEvent matches (with errors.Is) every error that rejects an event
// for breaking schema v1. It is the SDK's: an error of the SDK's checks and
// one of Validate match the same sentinel.
var ErrInvalidEvent = sdk.ErrInvalidEvent

// FieldError is one broken rule: the JSON path of the field ("client.ip_prefix",
// "attrs.plan") and the rule it breaks, in words. The SDK holds the type.
type FieldError = sdk.FieldError

// ValidationError lists every rule an event breaks, in field order. The SDK
// holds the type.
type ValidationError = sdk.ValidationError

func invalid(field, rule string) *ValidationError {
	return &ValidationError{Errors: []*FieldError{{Field: field, Rule: rule}}}
}

// Sentinel errors of the alert contract; match them with errors.Is.
var (
	// ErrInvalidAlert rejects a message on the alerts stream that is not
	// an alert (missing id, detector, severity or time).
	ErrInvalidAlert = errors.New("invalid alert")
	// ErrInvalidStatusChange rejects a status change with a missing or
	// malformed field.
	ErrInvalidStatusChange = errors.New("invalid status change")
	// ErrInvalidSuppression matches every error of
	// SuppressionRule.Validate (a *SuppressionError).
	ErrInvalidSuppression = errors.New("invalid suppression rule")
)
