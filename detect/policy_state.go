package detect

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// This file holds what the session-management policy detectors
// (idle_timeout_exceeded, absolute_timeout_exceeded, missing_reauth) have in
// common: the "activity" rule, policy resolution, settings checks and the
// text helpers their alerts use. Each detector instance keeps its own
// per-session hashTable (engine.go), keyed by pseudonymHash of the session,
// with the subject as a hash too; nothing is shared between instances.
//
// Activity. An event is activity on its session when it is one of
// session.activity, token.used, token.refreshed or action.performed and it
// names a session. session.started (re)starts tracking of its session and
// ends tracking of its previous_session (the id it replaced); session.ended
// ends tracking, so activity after the end is left to the token_reuse
// detector. reauth.succeeded and login.succeeded are authentication, not
// activity: they move missing_reauth's clock but no timeout clock.
//
// Policy. A session uses the timeouts it declared on session.started
// (a positive policy.*_s field); for a field it did not declare, or for a
// session whose start was not seen, the configured PolicyDefaults apply.
// A zero default turns the check off for sessions that declared nothing.

// Defaults of the per-session bookkeeping of the policy detectors.
const (
	// defaultPolicyStateTTL is how long after its last event a session is
	// remembered. Longer gaps are not seen.
	defaultPolicyStateTTL = 24 * time.Hour
	// defaultPolicyMaxSessions caps the sessions one detector tracks.
	defaultPolicyMaxSessions = 200_000
)

// update stores v under k, which t already holds: unlike put, it needs no
// check for eviction, so an update costs one lookup.
func (t *table[K, V]) update(k K, v V) {
	t.m[k] = v
	t.floor = min(t.floor, t.last(v))
}

// countsAsActivity reports whether e is activity on its session (see the
// file comment).
func countsAsActivity(e *schemas.Event) bool {
	if e.Session == "" {
		return false
	}
	switch e.Type {
	case schemas.SessionActivity, schemas.TokenUsed, schemas.TokenRefreshed, schemas.ActionPerformed:
		return true
	}
	return false
}

// declaredSeconds stores a declared policy duration compactly. Schema v1
// caps declared durations at ten years, which fits an int32.
func declaredSeconds(s int64) int32 {
	if s <= 0 {
		return 0
	}
	return int32(min(s, math.MaxInt32))
}

// Policy sources, as reported in alert details.
const (
	policyDeclared = "declared"
	policyDefault  = "default"
)

// resolvePolicy returns a session's limit in milliseconds: what it declared,
// else the default (0 when neither is set), and where it came from.
func resolvePolicy(declaredS int32, def Duration) (int64, string) {
	if declaredS > 0 {
		return int64(declaredS) * 1000, policyDeclared
	}
	return def.D().Milliseconds(), policyDefault
}

// validateTracking checks the per-session bookkeeping settings of a policy
// detector.
func validateTracking(name string, stateTTL Duration, maxSessions int) []error {
	var errs []error
	if stateTTL <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.state_ttl: must be positive (got %s)", name, stateTTL.D()))
	}
	if maxSessions <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_sessions: must be positive (got %d)", name, maxSessions))
	}
	return errs
}

// errorsOf joins the common settings' problems and the detector's own.
func errorsOf(common error, rest []error) error {
	return errors.Join(append([]error{common}, rest...)...)
}

// msTime formats Unix milliseconds like schema v1 times.
func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// durationText writes d for people: "45s", "4m10s", "30m", "2h05m", "12h",
// "3d", "30d04h": rounded to the second, then cut to its two largest
// units. Other detectors' summaries use it too.
func durationText(d time.Duration) string {
	if d < 0 {
		return "-" + durationText(-d)
	}
	s := int64(d.Round(time.Second) / time.Second)
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days >= 2 && h == 0:
		return strconv.FormatInt(days, 10) + "d"
	case days >= 2:
		return fmt.Sprintf("%dd%02dh", days, h)
	case s >= 3600 && m == 0:
		return strconv.FormatInt(s/3600, 10) + "h"
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", s/3600, m)
	case m > 0 && sec == 0:
		return strconv.FormatInt(m, 10) + "m"
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, sec)
	}
	return strconv.FormatInt(sec, 10) + "s"
}

// pseudonymHint shortens a pseudonym for an alert summary ("k1:AbCdE…");
// the alert's own fields carry it in full.
func pseudonymHint(p string) string {
	const keep = 8
	if len(p) <= keep+1 {
		return p
	}
	return p[:keep] + "…"
}
