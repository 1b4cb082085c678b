package detect

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const sessionFixationName = "session_fixation"

// SessionFixationConfig configures the session_fixation detector. It has
// only the common settings.
type SessionFixationConfig struct {
	Common `yaml:",inline"`
}

func defaultSessionFixationConfig() SessionFixationConfig {
	return SessionFixationConfig{Common: Common{
		Enabled:     true,
		Severity:    schemas.SeverityHigh,
		DedupWindow: Duration(24 * time.Hour),
	}}
}

// SessionFixation flags a session.started whose previous_session equals its
// session: the app kept the pre-login session id instead of issuing a new
// one at login, so whoever planted or learned the old id now holds an
// authenticated session. A session.started without previous_session says
// nothing about rotation and is not judged. It keeps no state.
type SessionFixation struct {
	cfg SessionFixationConfig
}

var _ Detector = (*SessionFixation)(nil)

// NewSessionFixation returns the session_fixation detector, or an error
// naming every invalid setting.
func NewSessionFixation(cfg SessionFixationConfig) (*SessionFixation, error) {
	if err := cfg.Validate(sessionFixationName); err != nil {
		return nil, err
	}
	return &SessionFixation{cfg: cfg}, nil
}

// Name returns "session_fixation".
func (d *SessionFixation) Name() string { return sessionFixationName }

// Observe alerts on a session.started that did not rotate the session id.
func (d *SessionFixation) Observe(e *schemas.Event, emit Emit) {
	if e.Type != schemas.SessionStarted || e.PreviousSession == "" || e.PreviousSession != e.Session {
		return
	}
	emit(schemas.Alert{
		Detector: sessionFixationName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Session id not rotated at login",
		Summary: fmt.Sprintf("Session %s of app %s kept its pre-login session id at login; the id must be replaced when the user authenticates.",
			pseudonymHint(e.Session), e.App),
		Details: map[string]any{
			"previous_session": e.PreviousSession,
		},
		Evidence: []string{e.ID},
		Key:      e.Session,
	})
}

// Expire does nothing: the detector keeps no state.
func (d *SessionFixation) Expire(time.Time) {}

// Forget does nothing: the detector keeps no state.
func (d *SessionFixation) Forget(string) {}
