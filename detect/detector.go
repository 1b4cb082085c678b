// Package detect runs sessionmon's streaming detectors: it keeps bounded,
// expiring per-key state (per subject, session, token, source prefix) in
// memory, works in event time with a lateness window for out-of-order
// events, and emits alerts.
package detect

import (
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Emit receives the alerts a detector raises. It must not be retained.
type Emit func(schemas.Alert)

// Detector is one detection rule with its own state.
//
// Contract: the engine calls Observe with every event in event-time order
// (it has already reordered events that arrived late within the lateness
// window), and Expire with the engine's event-time watermark, from a single
// goroutine: a Detector needs no locking and must not start goroutines.
// Observe must use the event's time, never time.Now. It fills every Alert
// field except ID, DetectedAt, Technique and RuleVersion (set by the
// engine, the last two from the registry's Rule) and may leave Severity
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
