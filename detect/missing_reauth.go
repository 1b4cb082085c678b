package detect

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const missingReauthName = "missing_reauth"

// MissingReauthConfig configures the missing_reauth detector.
type MissingReauthConfig struct {
	Common `yaml:",inline"`
	// StateTTL is how long after its last event a session's last
	// authentication is remembered (default 24h). A sensitive action after
	// a longer quiet spell is judged by its own auth.last_auth_at only.
	StateTTL Duration `yaml:"state_ttl"`
	// MaxSessions caps the sessions tracked; beyond it the least recently
	// active are forgotten (default 200000).
	MaxSessions int `yaml:"max_sessions"`
}

func defaultMissingReauthConfig() MissingReauthConfig {
	return MissingReauthConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(time.Hour),
		},
		StateTTL:    Duration(defaultPolicyStateTTL),
		MaxSessions: defaultPolicyMaxSessions,
	}
}

// MissingReauth flags a sensitive action.performed whose last
// authentication is older than the session's re-authentication window.
//
// The last authentication is the latest of: the action's own
// auth.last_auth_at, and what the detector saw for the session —
// session.started (its auth.last_auth_at, else its time), login.succeeded
// and reauth.succeeded naming the session (their auth.last_auth_at, else
// their time), and auth.last_auth_at reported on any other event of the
// session. Taking the latest means a re-authentication the detector saw is
// never contradicted by a stale value on the action. An action with no known
// authentication at all is not judged. The dedup key is the session and the
// action name, so each sensitive action kind is reported per session.
//
// Evidence is the action; details say when and how (auth_source) the
// session last authenticated (the authenticating event's id is not kept,
// to keep per-session state small).
type MissingReauth struct {
	sharedKeys
	cfg      MissingReauthConfig
	policy   PolicyDefaults
	sessions *hashTable[reauthSession] // by session
}

var _ Detector = (*MissingReauth)(nil)

// authSource says where a session's last authentication time came from.
type authSource uint8

const (
	authUnknown authSource = iota
	authSessionStart
	authLogin
	authReauth
	authReported // auth.last_auth_at on another event
)

func (a authSource) String() string {
	switch a {
	case authSessionStart:
		return "session_start"
	case authLogin:
		return "login"
	case authReauth:
		return "reauth"
	case authReported:
		return "reported"
	}
	return "unknown"
}

// reauthSession is the state of one session (32 bytes).
type reauthSession struct {
	subject uint64 // hash
	auth    int64  // last authentication, Unix ms
	last    int64  // last event of the session, Unix ms
	windowS int32  // declared re-authentication window in seconds, 0 if none
	src     authSource
}

// NewMissingReauth returns the missing_reauth detector, or an error naming
// every invalid setting.
func NewMissingReauth(cfg MissingReauthConfig, policy PolicyDefaults) (*MissingReauth, error) {
	errs := validateTracking(missingReauthName, cfg.StateTTL, cfg.MaxSessions)
	if err := errorsOf(cfg.Validate(missingReauthName), errs); err != nil {
		return nil, err
	}
	sessions := newHashTable(cfg.MaxSessions, func(s reauthSession) int64 { return s.last })
	return &MissingReauth{cfg: cfg, policy: policy, sessions: sessions}, nil
}

// Name returns "missing_reauth".
func (d *MissingReauth) Name() string { return missingReauthName }

// Observe tracks each session's last authentication and alerts on a
// sensitive action outside the re-authentication window.
func (d *MissingReauth) Observe(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	switch e.Type {
	case schemas.SessionStarted:
		if e.PreviousSession != "" && e.PreviousSession != e.Session {
			d.sessions.delete(pseudonymHash(e.PreviousSession))
		}
		s := reauthSession{subject: d.subjectKey(e), auth: at, last: at, src: authSessionStart}
		if e.Auth != nil && e.Auth.LastAuthAt != nil {
			s.auth = e.Auth.LastAuthAt.UnixMilli()
		}
		if e.Policy != nil {
			s.windowS = declaredSeconds(e.Policy.ReauthWindowS)
		}
		d.sessions.put(d.sessionKey(e), s)
		return
	case schemas.SessionEnded:
		d.sessions.delete(d.sessionKey(e))
		return
	}

	// An event without a session is judged on its own; one with a session
	// folds its authentication, if any, into the session's state.
	var (
		s       reauthSession
		k       uint64
		tracked bool
	)
	if e.Session != "" {
		k = d.sessionKey(e)
		s, tracked = d.sessions.get(k)
	}
	// On a tie the source already known stays: an action echoing the
	// session's login time is not relabelled "reported".
	changed := false
	if t, src := authOf(e); src != authUnknown && (s.src == authUnknown || t > s.auth) {
		s.auth, s.src = t, src
		changed = true
	}
	switch {
	case tracked:
		s.last = max(s.last, at)
		d.sessions.update(k, s)
	case e.Session != "" && changed:
		s.subject, s.last = d.subjectKey(e), max(s.last, at)
		d.sessions.put(k, s)
	}

	if e.Type != schemas.ActionPerformed || e.Action == nil || !e.Action.Sensitive || s.src == authUnknown {
		return
	}
	window, source := resolvePolicy(s.windowS, d.policy.ReauthWindow)
	if age := at - s.auth; window > 0 && age > window {
		emit(d.alert(e, s, age, window, source))
	}
}

// authOf returns the authentication time an event reports, if any.
func authOf(e *schemas.Event) (int64, authSource) {
	var src authSource
	switch {
	case e.Type == schemas.ReauthSucceeded:
		src = authReauth
	case e.Type == schemas.LoginSucceeded:
		src = authLogin
	case e.Auth != nil && e.Auth.LastAuthAt != nil:
		src = authReported
	default:
		return 0, authUnknown
	}
	if e.Auth != nil && e.Auth.LastAuthAt != nil {
		return e.Auth.LastAuthAt.UnixMilli(), src
	}
	return e.Time.UnixMilli(), src
}

func (d *MissingReauth) alert(e *schemas.Event, s reauthSession, ageMS, windowMS int64, source string) schemas.Alert {
	age, window := time.Duration(ageMS)*time.Millisecond, time.Duration(windowMS)*time.Millisecond
	where, key := "", e.Subject+"|"+e.Action.Name
	if e.Session != "" {
		where, key = " in session "+pseudonymHint(e.Session), e.Session+"|"+e.Action.Name
	}
	return schemas.Alert{
		Detector: missingReauthName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Sensitive action without recent re-authentication",
		Summary: fmt.Sprintf("Sensitive action %q%s came %s after the last authentication; the re-authentication window is %s.",
			e.Action.Name, where, durationText(age), durationText(window)),
		Details: map[string]any{
			"action":          e.Action.Name,
			"auth_age_s":      ageMS / 1000,
			"reauth_window_s": windowMS / 1000,
			"last_auth_at":    msTime(s.auth),
			"auth_source":     s.src.String(),
			"policy_source":   source,
		},
		Evidence: []string{e.ID},
		Key:      key,
	}
}

// Expire forgets sessions without events for longer than state_ttl.
func (d *MissingReauth) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.cfg.StateTTL.D().Milliseconds()
	d.sessions.dropOlder(cutoff, func(s reauthSession) bool { return s.last < cutoff })
}

// Forget drops every session of subject.
func (d *MissingReauth) Forget(subject string) {
	h := pseudonymHash(subject)
	d.sessions.dropIf(func(s reauthSession) bool { return s.subject == h })
}
