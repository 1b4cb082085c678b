package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"reflect"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// Subject page defaults and limits.
const (
	defaultSubjectRange = 30 * 24 * time.Hour
	defaultSubjectLimit = 500
	maxSubjectLimit     = 5000
)

// subjectParam reads and checks the :subject path parameter.
func subjectParam(c echo.Context) (string, error) {
	s, err := url.PathUnescape(c.Param("subject"))
	if err != nil || !schemas.ValidPseudonym(s) {
		return "", badParam("subject", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	return s, nil
}

// subjectTarget names a data subject in the audit log: only the SHA-256 of
// its pseudonym.
func subjectTarget(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return "subject sha256:" + hex.EncodeToString(sum[:])
}

// subjectData is the subject page.
type subjectData struct {
	chstore.SubjectView
	Limit int
	// Chart is the subject's events per day (of those loaded).
	Chart template.HTML
}

// loadSubject loads the subject of the :subject path parameter between
// the from and to query parameters (default the last 30 days), at most
// limit events (default 500).
func (h *handler) loadSubject(c echo.Context) (subjectData, error) {
	subject, err := subjectParam(c)
	if err != nil {
		return subjectData{}, err
	}
	q := c.QueryParams()
	from, to, err := parseTimeRange(q, h.now().UTC(), defaultSubjectRange)
	if err != nil {
		return subjectData{}, err
	}
	limit, err := parseLimit(q, defaultSubjectLimit, maxSubjectLimit)
	if err != nil {
		return subjectData{}, err
	}
	v, err := h.store.Subject(c.Request().Context(), subject, from, to, limit)
	if err != nil {
		return subjectData{}, err
	}
	if v.Subject == "" {
		v.Subject = subject
	}
	if v.From.IsZero() || v.To.IsZero() {
		v.From, v.To = from, to
	}
	return subjectData{SubjectView: v, Limit: limit}, nil
}

// showSubject renders a subject's sessions, events and alerts over time.
func (h *handler) showSubject(c echo.Context) error {
	d, err := h.loadSubject(c)
	if err != nil {
		return err
	}
	d.Chart = barChart("Events per day (loaded events)", eventsPerDay(d.Events, d.From, d.To), 24*time.Hour)
	return h.page(c, http.StatusOK, viewSubjectShow, d)
}

// eventsPerDay counts events per UTC day from from to to, zeros included.
func eventsPerDay(events []chstore.EventRow, from, to time.Time) []chstore.TimeCount {
	start := from.UTC().Truncate(24 * time.Hour)
	var out []chstore.TimeCount
	idx := map[int64]int{}
	for t := start; t.Before(to); t = t.Add(24 * time.Hour) {
		idx[t.Unix()] = len(out)
		out = append(out, chstore.TimeCount{Time: t})
	}
	for _, e := range events {
		if i, ok := idx[e.Time.UTC().Truncate(24*time.Hour).Unix()]; ok {
			out[i].Count++
		}
	}
	return out
}

// showSubjectSearch is the subject search: a form, and a redirect to the
// subject's page once one is given (?subject=).
func (h *handler) showSubjectSearch(c echo.Context) error {
	s := c.QueryParam("subject")
	if s == "" {
		return h.page(c, http.StatusOK, viewSubjectSearch, nil)
	}
	if !schemas.ValidPseudonym(s) {
		return badParam("subject", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	return c.Redirect(http.StatusSeeOther, "/subjects/"+url.PathEscape(s))
}

// eventJSON is an event in the JSON API.
type eventJSON struct {
	ID              string            `json:"id"`
	Type            string            `json:"type"`
	Time            time.Time         `json:"time"`
	App             string            `json:"app"`
	Subject         string            `json:"subject,omitempty"`
	Session         string            `json:"session,omitempty"`
	PreviousSession string            `json:"previous_session,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	Client          *clientJSON       `json:"client,omitempty"`
	Token           *tokenRefJSON     `json:"token,omitempty"`
	AuthMethod      string            `json:"auth_method,omitempty"`
	Action          string            `json:"action,omitempty"`
	ActionSensitive bool              `json:"action_sensitive,omitempty"`
	Attrs           map[string]string `json:"attrs,omitempty"`
}

// clientJSON is where an event came from.
type clientJSON struct {
	Device    string   `json:"device,omitempty"`
	IPPrefix  string   `json:"ip_prefix,omitempty"`
	ASN       uint32   `json:"asn,omitempty"`
	ASOrg     string   `json:"as_org,omitempty"`
	Anonymity []string `json:"anonymity,omitempty"`
	Country   string   `json:"country,omitempty"`
	City      string   `json:"city,omitempty"`
	Lat       *float64 `json:"lat,omitempty"`
	Lon       *float64 `json:"lon,omitempty"`
	GeoSource string   `json:"geo_source,omitempty"`
	Browser   string   `json:"browser,omitempty"`
	OS        string   `json:"os,omitempty"`
	DeviceUA  string   `json:"device_class,omitempty"`
}

// tokenRefJSON is the token an event carried.
type tokenRefJSON struct {
	ID     string `json:"id"`
	Kind   string `json:"kind,omitempty"`
	Family string `json:"family,omitempty"`
	Parent string `json:"parent,omitempty"`
}

func newEventJSON(r chstore.EventRow) eventJSON {
	j := eventJSON{
		ID: r.ID, Type: r.Type, Time: time.UnixMilli(r.TimeMS).UTC(), App: r.App, Subject: r.Subject, Session: r.Session,
		PreviousSession: r.PreviousSession, Reason: r.Reason, AuthMethod: r.AuthMethod,
		Action: r.ActionName, ActionSensitive: r.ActionSensitive, Attrs: r.Attrs(),
	}
	if r.TimeMS == 0 {
		j.Time = r.Time.UTC()
	}
	cl := clientJSON{Device: r.ClientDevice, IPPrefix: r.ClientIPPrefix, ASN: r.ClientASN, ASOrg: r.ClientASOrg,
		Anonymity: r.ClientAnonymity, Country: r.ClientCountry, City: r.ClientCity, GeoSource: r.GeoSource,
		Browser: r.UABrowser, OS: r.UAOS, DeviceUA: r.UADevice}
	if r.HasGeo {
		lat, lon := r.ClientLat, r.ClientLon
		cl.Lat, cl.Lon = &lat, &lon
	}
	if !reflect.ValueOf(cl).IsZero() {
		j.Client = &cl
	}
	if r.TokenID != "" {
		j.Token = &tokenRefJSON{ID: r.TokenID, Kind: r.TokenKind, Family: r.TokenFamily, Parent: r.TokenParent}
	}
	return j
}

func newEventsJSON(rows []chstore.EventRow) []eventJSON {
	out := make([]eventJSON, len(rows))
	for i, r := range rows {
		out[i] = newEventJSON(r)
	}
	return out
}

// sessionSummaryJSON is one session of a subject in the JSON API.
type sessionSummaryJSON struct {
	Session         string    `json:"session"`
	App             string    `json:"app"`
	First           time.Time `json:"first"`
	Last            time.Time `json:"last"`
	Events          uint64    `json:"events"`
	Countries       []string  `json:"countries"`
	Cities          []string  `json:"cities"`
	Devices         []string  `json:"devices"`
	Browsers        []string  `json:"browsers"`
	IPPrefixes      []string  `json:"ip_prefixes"`
	Alerts          uint64    `json:"alerts"`
	Ended           bool      `json:"ended"`
	PreviousSession string    `json:"previous_session,omitempty"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newSessionSummaryJSON(s chstore.SessionSummary) sessionSummaryJSON {
	return sessionSummaryJSON{Session: s.Session, App: s.App, First: s.First.UTC(), Last: s.Last.UTC(), Events: s.Events,
		Countries: nonNil(s.Countries), Cities: nonNil(s.Cities), Devices: nonNil(s.Devices), Browsers: nonNil(s.Browsers),
		IPPrefixes: nonNil(s.IPPrefixes), Alerts: s.Alerts, Ended: s.Ended, PreviousSession: s.PreviousSession}
}

// subjectJSON is the answer of GET /api/v1/subjects/{subject}.
type subjectJSON struct {
	Subject  string               `json:"subject"`
	From     time.Time            `json:"from"`
	To       time.Time            `json:"to"`
	Sessions []sessionSummaryJSON `json:"sessions"`
	Events   []eventJSON          `json:"events"`
	Alerts   []alertJSON          `json:"alerts"`
}

// apiSubject answers GET /api/v1/subjects/{subject}.
//
// Path parameter subject: a pseudonym. Query parameters: from, to (RFC
// 3339; default the last 30 days), limit (events, 1-5000, default 500).
// Response 200: subjectJSON {subject, from, to, sessions: [session
// summary], events: [event] newest first, alerts: [alert]}; 400 naming an
// invalid parameter.
func (h *handler) apiSubject(c echo.Context) error {
	d, err := h.loadSubject(c)
	if err != nil {
		return err
	}
	out := subjectJSON{Subject: d.Subject, From: d.From.UTC(), To: d.To.UTC(), Events: newEventsJSON(d.Events), Alerts: newAlertsJSON(d.Alerts)}
	out.Sessions = make([]sessionSummaryJSON, len(d.Sessions))
	for i, s := range d.Sessions {
		out.Sessions[i] = newSessionSummaryJSON(s)
	}
	return c.JSON(http.StatusOK, out)
}
