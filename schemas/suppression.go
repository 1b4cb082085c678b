package schemas

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Suppression rules tune detection without a restart: the dashboard writes
// them to the SuppressionBucket key-value bucket (key: the rule's id, value:
// the rule's JSON), and every detect process watches the bucket and marks
// the alerts a rule matches (Alert.Suppression). A marked alert is still
// published and stored; a silenced one is not sent to webhooks, a lowered
// one is sent with the rule's lower severity.

// SuppressionAction is what a suppression rule does to the alerts it
// matches.
type SuppressionAction string

// Suppression actions.
const (
	// SuppressSilence keeps the alert (stored, shown, marked) but sends it
	// to no webhook.
	SuppressSilence SuppressionAction = "silence"
	// SuppressLower lowers the alert's severity to the rule's and records
	// the original; it is delivered as usual at the lower severity.
	SuppressLower SuppressionAction = "lower"
)

// Suppression rule limits.
const (
	// MaxSuppressionLifetime is how far ahead of its creation a rule may
	// expire.
	MaxSuppressionLifetime = 90 * 24 * time.Hour
	// MaxSuppressionReason bounds a rule's reason, in characters.
	MaxSuppressionReason = 500
	// maxSuppressionOwner bounds the owner's name.
	maxSuppressionOwner = 200
	// SuppressAllDetectors is the detector of a rule that applies to
	// every detector.
	SuppressAllDetectors = "*"
)

// suppressionIDPattern is the form of rule ids: also a valid key of the
// bucket.
var suppressionIDPattern = regexp.MustCompile(`^[a-z0-9]{8,64}$`)

// ValidSuppressionID reports whether id has the form of a suppression
// rule id (8 to 64 characters of a-z 0-9).
func ValidSuppressionID(id string) bool { return suppressionIDPattern.MatchString(id) }

// SuppressionRule is one suppression rule. Its JSON form is the value
// stored in SuppressionBucket under its ID. A rule matches an alert of its
// detector (or of every detector, "*") when every matcher it sets equals
// the alert's: App, Subject (the pseudonym), IPPrefix (the alert's source
// prefix lies inside it) and ASN (the alert's source ASN). It applies from
// its creation until ExpiresAt, judged against the wall clock when the
// alert is raised (Alert.DetectedAt).
type SuppressionRule struct {
	ID       string `json:"id"`
	Detector string `json:"detector"`
	App      string `json:"app,omitempty"`
	Subject  string `json:"subject,omitempty"`
	IPPrefix string `json:"ip_prefix,omitempty"`
	ASN      uint32 `json:"asn,omitempty"`
	// Action is silence or lower; Severity is the target of lower (low,
	// medium or high) and empty for silence.
	Action   SuppressionAction `json:"action"`
	Severity Severity          `json:"severity,omitempty"`
	// Owner is the dashboard user (or API token) that made the rule,
	// Reason why.
	Owner     string `json:"owner"`
	Reason    string `json:"reason"`
	CreatedAt Time   `json:"created_at"`
	ExpiresAt Time   `json:"expires_at"`
}

// SuppressionError lists every rule a suppression rule breaks; each names
// its field (FieldError).
type SuppressionError struct {
	Errors []*FieldError
}

// Error returns "invalid suppression rule: field: rule; ...".
func (e *SuppressionError) Error() string {
	var b strings.Builder
	b.WriteString("invalid suppression rule: ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidSuppression) true.
func (e *SuppressionError) Is(target error) bool { return target == ErrInvalidSuppression }

// Validate checks every field of r and returns a *SuppressionError that
// lists all problems, or nil. knownDetector reports whether a name is a
// registered detector (nil accepts any detector name of the alert
// contract's form).
func (r *SuppressionRule) Validate(knownDetector func(string) bool) error {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Rule: fmt.Sprintf(format, args...)})
	}
	if !ValidSuppressionID(r.ID) {
		bad("id", "must be 8 to 64 characters of a-z 0-9")
	}
	switch {
	case r.Detector == "":
		bad("detector", "is required: a detector name, or * for every detector")
	case r.Detector == SuppressAllDetectors:
	case !detectorNamePattern.MatchString(r.Detector) || (knownDetector != nil && !knownDetector(r.Detector)):
		bad("detector", "must be a registered detector name or * (got %q)", shortText(r.Detector))
	}
	if r.App == "" && r.Subject == "" && r.IPPrefix == "" && r.ASN == 0 {
		bad("matchers", "at least one of app, subject, ip_prefix and asn is required")
	}
	if r.App != "" && !ValidApp(r.App) {
		bad("app", "must be an app name: 1-64 characters of A-Z a-z 0-9 _ -")
	}
	if r.Subject != "" && !ValidPseudonym(r.Subject) {
		bad("subject", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	if r.IPPrefix != "" {
		if p, err := netip.ParsePrefix(r.IPPrefix); err != nil || p != p.Masked() {
			bad("ip_prefix", "must be a network in CIDR form with no host bits, such as 203.0.113.0/24 or 2001:db8::/48")
		}
	}
	switch r.Action {
	case SuppressSilence:
		if r.Severity != "" {
			bad("severity", "must be empty for action silence")
		}
	case SuppressLower:
		if rank := r.Severity.Rank(); rank == 0 || rank >= SeverityCritical.Rank() {
			bad("severity", "must be the severity to lower to: low, medium or high")
		}
	default:
		bad("action", "must be silence or lower")
	}
	if r.Owner == "" || len(r.Owner) > maxSuppressionOwner {
		bad("owner", "must have 1 to %d characters", maxSuppressionOwner)
	}
	if strings.TrimSpace(r.Reason) == "" {
		bad("reason", "is required")
	} else if !utf8.ValidString(r.Reason) || utf8.RuneCountInString(r.Reason) > MaxSuppressionReason {
		bad("reason", "must have at most %d characters", MaxSuppressionReason)
	}
	if r.CreatedAt.IsZero() {
		bad("created_at", "is required")
	}
	switch {
	case r.ExpiresAt.IsZero():
		bad("expires_at", "is required")
	case !r.CreatedAt.IsZero() && !r.ExpiresAt.After(r.CreatedAt.Time):
		bad("expires_at", "must be after created_at")
	case !r.CreatedAt.IsZero() && r.ExpiresAt.Sub(r.CreatedAt.Time) > MaxSuppressionLifetime:
		bad("expires_at", "must be at most 90 days after created_at")
	}
	if len(errs) > 0 {
		return &SuppressionError{Errors: errs}
	}
	return nil
}

// Active reports whether r applies at t: from its creation until it
// expires.
func (r *SuppressionRule) Active(t time.Time) bool {
	return !t.Before(r.CreatedAt.Time) && t.Before(r.ExpiresAt.Time)
}

// Matches reports whether r's detector and matchers match a. It does not
// look at the time (Active does). r must be valid.
func (r *SuppressionRule) Matches(a *Alert) bool {
	if r.Detector != SuppressAllDetectors && r.Detector != a.Detector {
		return false
	}
	if r.App != "" && r.App != a.App {
		return false
	}
	if r.Subject != "" && r.Subject != a.Subject {
		return false
	}
	if r.ASN != 0 && (a.Source == nil || a.Source.ASN != r.ASN) {
		return false
	}
	if r.IPPrefix != "" {
		if a.Source == nil || !PrefixWithin(a.Source.IPPrefix, r.IPPrefix) {
			return false
		}
	}
	return true
}

// PrefixWithin reports whether the network inner (CIDR, or a single
// address) lies inside the network outer (CIDR). Either failing to parse
// is no match.
func PrefixWithin(inner, outer string) bool {
	o, err := netip.ParsePrefix(outer)
	if err != nil {
		return false
	}
	i, err := netip.ParsePrefix(inner)
	if err != nil {
		addr, aerr := netip.ParseAddr(inner)
		if aerr != nil {
			return false
		}
		i = netip.PrefixFrom(addr, addr.BitLen())
	}
	// An IPv4 network inside ::ffff:0:0/96 and the like are different
	// families here: a rule names the family the alert carries.
	return i.Addr().Is4() == o.Addr().Is4() && i.Bits() >= o.Bits() && o.Contains(i.Addr())
}

// AlertSuppression marks an alert a suppression rule matched: the rule,
// what it did, and for lower, the severity the detector gave.
type AlertSuppression struct {
	Rule             string            `json:"rule"`
	Action           SuppressionAction `json:"action"`
	OriginalSeverity Severity          `json:"original_severity,omitempty"`
}

// Silenced reports whether a was silenced by a suppression rule (stored,
// but sent to no webhook).
func (a *Alert) Silenced() bool {
	return a.Suppression != nil && a.Suppression.Action == SuppressSilence
}

// detectorNamePattern is the form of detector names in the alert contract.
var detectorNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// shortText cuts s for an error message.
func shortText(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:40] + "…"
}
