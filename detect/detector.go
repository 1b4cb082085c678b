// Package detect runs sessionmon's streaming detectors: it keeps bounded,
// expiring per-key state (per subject, session, token, source prefix) in
// memory, works in event time with a lateness window for out-of-order
// events, and emits alerts.
package detect

import (
	"time"

	"github.com/sessionmon/sessionmon/schemas"
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
// (the SESSIONMON_ALERTS stream, webhooks, the dashboard's API).
type Alert struct {
	// ID is derived from the detector, the dedup key and the triggering
	// event, so a replay of the same events yields the same id.
	ID         string         `json:"id"`
	Detector   string         `json:"detector"`
	Severity   Severity       `json:"severity"`
	Time       schemas.Time   `json:"time"`
	DetectedAt schemas.Time   `json:"detected_at"`
	App        string         `json:"app"`
	Subject    string         `json:"subject,omitempty"`
	Session    string         `json:"session,omitempty"`
	Source     *Source        `json:"source,omitempty"`
	Title      string         `json:"title"`
	Summary    string         `json:"summary"`
	Details    map[string]any `json:"details,omitempty"`
	Evidence   []string       `json:"evidence"`

	// Key identifies the finding for deduplication within the detector
	// (e.g. the subject, the token family, the source prefix). The engine
	// drops a second alert with the same detector and Key within the
	// detector's dedup window.
	Key string `json:"-"`
}

// Emit receives the alerts a detector raises. It must not be retained.
type Emit func(Alert)

// Detector is one detection rule with its own state.
//
// Contract: the engine calls Observe with every event in event-time order
// (it has already reordered events that arrived late within the lateness
// window), and Expire with the engine's event-time watermark, from a single
// goroutine: a Detector needs no locking and must not start goroutines.
// Observe must use the event's time, never time.Now. It fills every Alert
// field except ID, DetectedAt (set by the engine) and may leave Severity
// empty to use its configured severity. State is bounded: Expire drops
// everything that can no longer matter at the watermark, and a detector
// caps its per-key state (e.g. the last N items) so one noisy key cannot
// grow without limit. A Detector is also rebuilt by replaying events, so
// Observe must be deterministic for the same input.
type Detector interface {
	// Name is the detector's stable name, e.g. "impossible_travel".
	Name() string
	// Observe inspects one event and emits zero or more alerts.
	Observe(e *schemas.Event, emit Emit)
	// Expire drops state that is older than watermark minus the
	// detector's longest window.
	Expire(watermark time.Time)
	// Forget drops every piece of state about subject (erasure requests).
	Forget(subject string)
}
