package detect

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const absoluteTimeoutName = "absolute_timeout_exceeded"

// AbsoluteTimeoutConfig configures the absolute_timeout_exceeded detector.
type AbsoluteTimeoutConfig struct {
	Common `yaml:",inline"`
	// StateTTL is how long after its last event a session is remembered
	// (default 24h). A session that stays quiet for longer and then resumes
	// is measured from its resumption.
	StateTTL Duration `yaml:"state_ttl"`
	// MaxSessions caps the sessions tracked; beyond it the least recently
	// active are forgotten (default 200000).
	MaxSessions int `yaml:"max_sessions"`
}

func defaultAbsoluteTimeoutConfig() AbsoluteTimeoutConfig {
	return AbsoluteTimeoutConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityMedium,
			DedupWindow: Duration(24 * time.Hour),
		},
		StateTTL:    Duration(defaultPolicyStateTTL),
		MaxSessions: defaultPolicyMaxSessions,
	}
}

// AbsoluteTimeout flags activity on a session later than the session's
// absolute timeout after it started: the app should have ended the session
// whatever its activity. It alerts once per session. A session whose
// session.started was not seen is measured from its first event seen, a
// lower bound of its age. See policy_state.go for what counts as activity
// and how the policy is chosen.
//
// Evidence is the triggering event; the start is in details.started_at
// (the start event's id is not kept, to keep per-session state small).
type AbsoluteTimeout struct {
	sharedKeys
	cfg      AbsoluteTimeoutConfig
	policy   PolicyDefaults
	sessions *hashTable[absoluteSession] // by session
}

var _ Detector = (*AbsoluteTimeout)(nil)

// absoluteSession is the state of one session (32 bytes).
type absoluteSession struct {
	subject   uint64 // hash
	start     int64  // Unix ms
	last      int64  // Unix ms of the last activity
	absS      int32  // declared absolute timeout in seconds, 0 if none
	startSeen bool
	alerted   bool
}

// NewAbsoluteTimeout returns the absolute_timeout_exceeded detector, or an
// error naming every invalid setting.
func NewAbsoluteTimeout(cfg AbsoluteTimeoutConfig, policy PolicyDefaults) (*AbsoluteTimeout, error) {
	errs := validateTracking(absoluteTimeoutName, cfg.StateTTL, cfg.MaxSessions)
	if err := errorsOf(cfg.Validate(absoluteTimeoutName), errs); err != nil {
		return nil, err
	}
	sessions := newHashTable(cfg.MaxSessions, func(s absoluteSession) int64 { return s.last })
	return &AbsoluteTimeout{cfg: cfg, policy: policy, sessions: sessions}, nil
}

// Name returns "absolute_timeout_exceeded".
func (d *AbsoluteTimeout) Name() string { return absoluteTimeoutName }

// Observe tracks session starts, ends and activity, and alerts on activity
// later than the session's absolute timeout after its start.
func (d *AbsoluteTimeout) Observe(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	switch {
	case e.Type == schemas.SessionStarted:
		if e.PreviousSession != "" && e.PreviousSession != e.Session {
			d.sessions.delete(pseudonymHash(e.PreviousSession))
		}
		var absS int32
		if e.Policy != nil {
			absS = declaredSeconds(e.Policy.AbsoluteTimeoutS)
		}
		d.sessions.put(d.sessionKey(e), absoluteSession{
			subject: d.subjectKey(e), start: at, last: at, absS: absS, startSeen: true,
		})
	case e.Type == schemas.SessionEnded:
		d.sessions.delete(d.sessionKey(e))
	case countsAsActivity(e):
		k := d.sessionKey(e)
		s, ok := d.sessions.get(k)
		if !ok {
			d.sessions.put(k, absoluteSession{subject: d.subjectKey(e), start: at, last: at})
			return
		}
		timeout, source := resolvePolicy(s.absS, d.policy.AbsoluteTimeout)
		if age := at - s.start; timeout > 0 && age > timeout && !s.alerted {
			s.alerted = true
			emit(d.alert(e, s, age, timeout, source))
		}
		s.last = max(s.last, at)
		d.sessions.update(k, s)
	}
}

func (d *AbsoluteTimeout) alert(e *schemas.Event, s absoluteSession, ageMS, timeoutMS int64, source string) schemas.Alert {
	age, timeout := time.Duration(ageMS)*time.Millisecond, time.Duration(timeoutMS)*time.Millisecond
	since := "it started"
	if !s.startSeen {
		since = "it was first seen"
	}
	return schemas.Alert{
		Detector: absoluteTimeoutName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Session outlived its absolute timeout",
		Summary: fmt.Sprintf("Session %s was active %s after %s; its absolute timeout is %s.",
			pseudonymHint(e.Session), durationText(age), since, durationText(timeout)),
		Details: map[string]any{
			"age_s":              ageMS / 1000,
			"absolute_timeout_s": timeoutMS / 1000,
			"policy_source":      source,
			"started_at":         msTime(s.start),
			"start_seen":         s.startSeen,
			"event_type":         string(e.Type),
		},
		Evidence: []string{e.ID},
		Key:      e.Session,
	}
}

// Expire forgets sessions without activity for longer than state_ttl.
func (d *AbsoluteTimeout) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.cfg.StateTTL.D().Milliseconds()
	d.sessions.dropOlder(cutoff, func(s absoluteSession) bool { return s.last < cutoff })
}

// Forget drops every session of subject.
func (d *AbsoluteTimeout) Forget(subject string) {
	h := pseudonymHash(subject)
	d.sessions.dropIf(func(s absoluteSession) bool { return s.subject == h })
}
