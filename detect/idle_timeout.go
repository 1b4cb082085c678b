package detect

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const idleTimeoutName = "idle_timeout_exceeded"

// IdleTimeoutConfig configures the idle_timeout_exceeded detector.
type IdleTimeoutConfig struct {
	Common `yaml:",inline"`
	// StateTTL is how long after its last event a session is remembered
	// (default 24h). A gap longer than StateTTL is not seen, so it must be
	// longer than the default idle timeout; a session that declared an idle
	// timeout of StateTTL or more is remembered for twice its timeout.
	StateTTL Duration `yaml:"state_ttl"`
	// MaxSessions caps the sessions tracked; beyond it the least recently
	// active are forgotten (default 200000).
	MaxSessions int `yaml:"max_sessions"`
}

func defaultIdleTimeoutConfig() IdleTimeoutConfig {
	return IdleTimeoutConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityMedium,
			DedupWindow: Duration(24 * time.Hour),
		},
		StateTTL:    Duration(defaultPolicyStateTTL),
		MaxSessions: defaultPolicyMaxSessions,
	}
}

// IdleTimeout flags activity on a session after a gap longer than the
// session's idle timeout, with no new session in between: the app should
// have expired the session and did not. It alerts once per session.
// See policy_state.go for what counts as activity and how the policy is
// chosen.
type IdleTimeout struct {
	sharedKeys
	cfg      IdleTimeoutConfig
	policy   PolicyDefaults
	sessions *hashTable[idleSession] // by session
}

var _ Detector = (*IdleTimeout)(nil)

// idleSession is the state of one session (40 bytes plus the event id,
// which is shared with the event it came from).
type idleSession struct {
	subject uint64 // hash
	lastID  string // the event of the last activity
	last    int64  // its time, Unix ms
	idleS   int32  // declared idle timeout in seconds, 0 if none
	alerted bool
}

// NewIdleTimeout returns the idle_timeout_exceeded detector, or an error
// naming every invalid setting.
func NewIdleTimeout(cfg IdleTimeoutConfig, policy PolicyDefaults) (*IdleTimeout, error) {
	errs := validateTracking(idleTimeoutName, cfg.StateTTL, cfg.MaxSessions)
	// The policy itself is validated with the engine's configuration.
	if cfg.StateTTL > 0 && cfg.StateTTL <= policy.IdleTimeout {
		errs = append(errs, fmt.Errorf("detectors.%s.state_ttl: must be longer than the default idle timeout policy.idle_timeout (%s), or no idle gap can be seen (got %s)",
			idleTimeoutName, policy.IdleTimeout.D(), cfg.StateTTL.D()))
	}
	if err := errorsOf(cfg.Validate(idleTimeoutName), errs); err != nil {
		return nil, err
	}
	sessions := newHashTable(cfg.MaxSessions, func(s idleSession) int64 { return s.last })
	return &IdleTimeout{cfg: cfg, policy: policy, sessions: sessions}, nil
}

// Name returns "idle_timeout_exceeded".
func (d *IdleTimeout) Name() string { return idleTimeoutName }

// Observe tracks session starts, ends and activity, and alerts on activity
// that follows a gap longer than the session's idle timeout.
func (d *IdleTimeout) Observe(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	switch {
	case e.Type == schemas.SessionStarted:
		if e.PreviousSession != "" && e.PreviousSession != e.Session {
			d.sessions.delete(pseudonymHash(e.PreviousSession))
		}
		var idleS int32
		if e.Policy != nil {
			idleS = declaredSeconds(e.Policy.IdleTimeoutS)
		}
		d.sessions.put(d.sessionKey(e), idleSession{subject: d.subjectKey(e), lastID: e.ID, last: at, idleS: idleS})
	case e.Type == schemas.SessionEnded:
		d.sessions.delete(d.sessionKey(e))
	case countsAsActivity(e):
		k := d.sessionKey(e)
		s, ok := d.sessions.get(k)
		if !ok {
			// Start not seen (before the state horizon, or never
			// published): the gap can be measured from now on.
			d.sessions.put(k, idleSession{subject: d.subjectKey(e), lastID: e.ID, last: at})
			return
		}
		timeout, source := resolvePolicy(s.idleS, d.policy.IdleTimeout)
		if gap := at - s.last; timeout > 0 && gap > timeout && !s.alerted {
			s.alerted = true
			emit(d.alert(e, s, gap, timeout, source))
		}
		if at >= s.last {
			s.last, s.lastID = at, e.ID
		}
		d.sessions.update(k, s)
	}
}

func (d *IdleTimeout) alert(e *schemas.Event, s idleSession, gapMS, timeoutMS int64, source string) schemas.Alert {
	gap, timeout := time.Duration(gapMS)*time.Millisecond, time.Duration(timeoutMS)*time.Millisecond
	return schemas.Alert{
		Detector: idleTimeoutName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Idle session was not expired",
		Summary: fmt.Sprintf("Session %s was active %s after its last activity; its idle timeout is %s.",
			pseudonymHint(e.Session), durationText(gap), durationText(timeout)),
		Details: map[string]any{
			"gap_s":            gapMS / 1000,
			"idle_timeout_s":   timeoutMS / 1000,
			"policy_source":    source,
			"last_activity_at": msTime(s.last),
			"event_type":       string(e.Type),
		},
		Evidence: []string{s.lastID, e.ID},
		Key:      e.Session,
	}
}

// Expire forgets sessions idle for longer than state_ttl (or twice their
// declared idle timeout, when that is longer).
func (d *IdleTimeout) Expire(watermark time.Time) {
	wm, ttl := watermark.UnixMilli(), d.cfg.StateTTL.D().Milliseconds()
	// max(ttl, ...) >= ttl: only sessions last seen before wm-ttl can go.
	d.sessions.dropOlder(wm-ttl, func(s idleSession) bool {
		return s.last < wm-max(ttl, 2*int64(s.idleS)*1000)
	})
}

// Forget drops every session of subject.
func (d *IdleTimeout) Forget(subject string) {
	h := pseudonymHash(subject)
	d.sessions.dropIf(func(s idleSession) bool { return s.subject == h })
}
