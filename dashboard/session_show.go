package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// sessionData is the session page.
type sessionData struct {
	chstore.SessionView
	// Subject is the session's data subject, from its events.
	Subject string
}

// loadSession loads the session of the :session path parameter.
func (h *handler) loadSession(c echo.Context) (sessionData, error) {
	s, err := url.PathUnescape(c.Param("session"))
	if err != nil || !schemas.ValidPseudonym(s) {
		return sessionData{}, badParam("session", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	v, err := h.store.Session(c.Request().Context(), s)
	if err != nil {
		return sessionData{}, err
	}
	if v.Session == "" {
		v.Session = s
	}
	d := sessionData{SessionView: v}
	for _, e := range v.Events {
		if e.Subject != "" {
			d.Subject = e.Subject
			break
		}
	}
	return d, nil
}

// showSession renders one session: its events, tokens and alerts.
func (h *handler) showSession(c echo.Context) error {
	d, err := h.loadSession(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewSessionShow, d)
}

// tokenJSON is a token seen in a session, in the JSON API.
type tokenJSON struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind,omitempty"`
	Family    string     `json:"family,omitempty"`
	Parent    string     `json:"parent,omitempty"`
	IssuedAt  *time.Time `json:"issued_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	Uses      uint64     `json:"uses"`
	Revoked   bool       `json:"revoked"`
}

// optTime is nil for an unknown (zero) time.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// sessionJSON is the answer of GET /api/v1/sessions/{session}.
type sessionJSON struct {
	Session string             `json:"session"`
	Subject string             `json:"subject,omitempty"`
	Summary sessionSummaryJSON `json:"summary"`
	Events  []eventJSON        `json:"events"`
	Tokens  []tokenJSON        `json:"tokens"`
	Alerts  []alertJSON        `json:"alerts"`
}

// apiSession answers GET /api/v1/sessions/{session}.
//
// Path parameter session: a session pseudonym. Response 200: sessionJSON
// {session, subject, summary, events: [event] oldest first, tokens:
// [token], alerts: [alert]}; 400 for an invalid session; 404 when no event
// has that session.
func (h *handler) apiSession(c echo.Context) error {
	d, err := h.loadSession(c)
	if err != nil {
		return err
	}
	out := sessionJSON{Session: d.Session, Subject: d.Subject, Summary: newSessionSummaryJSON(d.Summary),
		Events: newEventsJSON(d.Events), Alerts: newAlertsJSON(d.Alerts), Tokens: make([]tokenJSON, len(d.Tokens))}
	for i, t := range d.Tokens {
		out.Tokens[i] = tokenJSON{ID: t.ID, Kind: t.Kind, Family: t.Family, Parent: t.Parent, IssuedAt: optTime(t.IssuedAt),
			ExpiresAt: optTime(t.ExpiresAt), LastSeen: optTime(t.LastSeen), Uses: t.Uses, Revoked: t.Revoked}
	}
	return c.JSON(http.StatusOK, out)
}
