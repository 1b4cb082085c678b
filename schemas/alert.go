package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
)

// Severity of an alert.
type Severity string

// Severities, lowest first.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: low 1 … critical 4, unknown 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// Source names the network a source-keyed finding came from.
type Source struct {
	IPPrefix string `json:"ip_prefix,omitempty"`
	ASN      uint32 `json:"asn,omitempty"`
}

// Alert is one finding. Its JSON form is part of sessionmon's interface
// (the SESSIONMON_ALERTS stream, webhooks, the dashboard's API) and is
// described by alert.v1.schema.json.
type Alert struct {
	// ID is derived from the detector, the dedup key and the triggering
	// event (AlertID), so a replay of the same events yields the same id.
	ID       string `json:"id"`
	Detector string `json:"detector"`
	// Technique is the MITRE ATT&CK technique id the finding is evidence
	// of ("T1110.001"; see TechniqueByID), empty for detectors that report
	// a policy violation rather than adversary behaviour. RuleVersion is
	// the version of the detector's logic that raised it, bumped whenever
	// that logic changes. The engine sets both from its registry; alerts
	// published before they existed have neither.
	Technique   string         `json:"technique,omitempty"`
	RuleVersion int            `json:"rule_version,omitempty"`
	Severity    Severity       `json:"severity"`
	Time        Time           `json:"time"`
	DetectedAt  Time           `json:"detected_at"`
	App         string         `json:"app"`
	Subject     string         `json:"subject,omitempty"`
	Session     string         `json:"session,omitempty"`
	Source      *Source        `json:"source,omitempty"`
	Title       string         `json:"title"`
	Summary     string         `json:"summary"`
	Details     map[string]any `json:"details,omitempty"`
	Evidence    []string       `json:"evidence"`
	// Suppression is set when a suppression rule matched the alert as it
	// was raised (SuppressionRule): silenced, or lowered from the
	// severity it records.
	Suppression *AlertSuppression `json:"suppression,omitempty"`

	// Key identifies the finding for deduplication within the detector
	// (e.g. the subject, the token family, the source prefix). The engine
	// drops a second alert with the same detector and Key within the
	// detector's dedup window. It is not part of the JSON form.
	Key string `json:"-"`
}

// Validate checks what every stored alert has: an id, a detector, a known
// severity and a time. Its errors wrap ErrInvalidAlert.
func (a *Alert) Validate() error {
	if a.ID == "" || a.Detector == "" || a.Severity.Rank() == 0 || a.Time.IsZero() {
		return fmt.Errorf("%w: alert needs an id, a detector, a severity and a time", ErrInvalidAlert)
	}
	return nil
}

// AlertID returns the id of the alert a detector raises for key on the
// event triggerID: the first 16 bytes of SHA-256 over the three, in hex. A
// replay of the same events gives the same ids.
func AlertID(detector, key, triggerID string) string {
	h := sha256.New()
	h.Write([]byte(detector))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(triggerID))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// alertIDPattern is the form of the ids AlertID makes.
var alertIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ValidAlertID reports whether id has the form of the ids AlertID makes
// (32 lowercase hex digits).
func ValidAlertID(id string) bool { return alertIDPattern.MatchString(id) }

// AlertStatus is the state of an alert as people triage it.
type AlertStatus string

// Alert statuses. Every alert starts open.
const (
	StatusOpen          AlertStatus = "open"
	StatusAcknowledged  AlertStatus = "acknowledged"
	StatusResolved      AlertStatus = "resolved"
	StatusFalsePositive AlertStatus = "false_positive"
)

// Valid reports whether s is one of the alert statuses.
func (s AlertStatus) Valid() bool {
	switch s {
	case StatusOpen, StatusAcknowledged, StatusResolved, StatusFalsePositive:
		return true
	}
	return false
}

// Status change limits.
const (
	maxActorLen   = 200
	maxCommentLen = 2000
)

// StatusChange is an event that changes an alert's status: who did it and
// why. Changes are appended (to the alerts stream, then the alert_status
// table), never applied in place; the latest one is the alert's status.
// Its JSON form is part of sessionmon's interface.
type StatusChange struct {
	// ID identifies the change; the publisher fills it when empty.
	ID      string      `json:"id"`
	AlertID string      `json:"alert_id"`
	Status  AlertStatus `json:"status"`
	Actor   string      `json:"actor"`
	Comment string      `json:"comment,omitempty"`
	Time    Time        `json:"time"`
}

// Validate checks every field and returns all problems joined, each
// wrapping ErrInvalidStatusChange.
func (c *StatusChange) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidStatusChange, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" || len(c.ID) > 64 {
		bad("id must have 1 to 64 characters")
	}
	if !ValidAlertID(c.AlertID) {
		bad("alert_id must be an alert id (32 hex digits)")
	}
	if !c.Status.Valid() {
		bad("status must be open, acknowledged, resolved or false_positive (got %q)", c.Status)
	}
	if c.Actor == "" || len(c.Actor) > maxActorLen {
		bad("actor must have 1 to %d characters", maxActorLen)
	}
	if len(c.Comment) > maxCommentLen {
		bad("comment must have at most %d characters", maxCommentLen)
	}
	if c.Time.IsZero() {
		bad("time must be set")
	}
	return errors.Join(errs...)
}
