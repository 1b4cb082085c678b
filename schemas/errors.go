package schemas

import (
	"errors"
	"strings"
)

// ErrInvalidEvent matches (with errors.Is) every error that rejects an event
// for breaking schema v1.
var ErrInvalidEvent = errors.New("invalid event")

// FieldError is one broken rule: the JSON path of the field ("client.ip_prefix",
// "attrs.plan") and the rule it breaks, in words.
type FieldError struct {
	Field string
	Rule  string
}

// Error returns "field: rule".
func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

// ValidationError lists every rule an event breaks, in field order.
type ValidationError struct {
	Errors []*FieldError
}

// Error returns "invalid event: field: rule; field: rule".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid event: ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidEvent) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidEvent }

// Fields returns the paths of the broken fields.
func (e *ValidationError) Fields() []string {
	out := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe.Field
	}
	return out
}

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
