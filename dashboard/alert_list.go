package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// Limits and defaults of the alert list.
const (
	defaultAlertRange = 7 * 24 * time.Hour
	defaultPageSize   = 50
	maxPageSize       = 1000
)

// Times a query may name: from 1970 to the end of 2105, what ClickHouse's
// DateTime holds (the store's time conditions use it; a time outside would
// wrap around in ClickHouse or be refused by the store without naming the
// parameter).
var (
	minQueryTime = time.Unix(0, 0).UTC()
	maxQueryTime = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)
)

var (
	severities    = []string{"low", "medium", "high", "critical"}
	alertStatuses = []string{string(schemas.StatusOpen), string(schemas.StatusAcknowledged), string(schemas.StatusResolved), string(schemas.StatusFalsePositive)}

	detectorPattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	cursorPattern   = regexp.MustCompile(`^[A-Za-z0-9_=.:-]{1,512}$`)
)

// listValues returns the values of a repeatable query parameter; each
// value may also be a comma-separated list. Empty items are dropped.
func listValues(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" && !slices.Contains(out, item) {
				out = append(out, item)
			}
		}
	}
	return out
}

// parseTime reads a time parameter: RFC 3339, or the "2006-01-02T15:04"
// of an HTML datetime-local input (taken as UTC).
func parseTime(q url.Values, name string, def time.Time) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			if t.Before(minQueryTime) || !t.Before(maxQueryTime) {
				return time.Time{}, badParam(name, "must be between 1970-01-01 and 2105-12-31")
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, badParam(name, "must be an RFC 3339 time such as 2026-11-20T09:00:00Z")
}

// parseTimeRange reads from and to; to defaults to now, from to to minus
// def (but not before minQueryTime).
func parseTimeRange(q url.Values, now time.Time, def time.Duration) (from, to time.Time, err error) {
	to, err = parseTime(q, "to", now)
	if err != nil {
		return from, to, err
	}
	from, err = parseTime(q, "from", maxTime(to.Add(-def), minQueryTime))
	if err != nil {
		return from, to, err
	}
	if !from.Before(to) {
		return from, to, badParam("from", "must be before to")
	}
	return from, to, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// checkEach checks every value of a list parameter.
func checkEach(name string, vals []string, ok func(string) bool, want string) error {
	for _, v := range vals {
		if !ok(v) {
			return badParam(name, "%s (got %q)", want, shorten(v, 40))
		}
	}
	return nil
}

// parseLimit reads the page size.
func parseLimit(q url.Values, def, maxN int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxN {
		return 0, badParam("limit", "must be a whole number from 1 to %d", maxN)
	}
	return n, nil
}

// parseAlertFilter reads and validates the alert list's query parameters:
// from, to, severity, detector, app, status (each repeatable or
// comma-separated), subject, session, suppressed (true or false), limit
// and cursor.
func parseAlertFilter(q url.Values, now time.Time) (chstore.AlertFilter, error) {
	var f chstore.AlertFilter
	var err error
	if f.From, f.To, err = parseTimeRange(q, now, defaultAlertRange); err != nil {
		return f, err
	}
	f.Severities, f.Detectors, f.Apps, f.Statuses = listValues(q, "severity"), listValues(q, "detector"),
		listValues(q, "app"), listValues(q, "status")
	f.Subject, f.Session, f.Cursor = q.Get("subject"), q.Get("session"), q.Get("cursor")
	err = errors.Join(
		checkEach("severity", f.Severities, func(s string) bool { return slices.Contains(severities, s) }, "must be low, medium, high or critical"),
		checkEach("detector", f.Detectors, detectorPattern.MatchString, "must be a detector name: a-z 0-9 _"),
		checkEach("app", f.Apps, schemas.ValidApp, "must be an app name: 1-64 characters of A-Z a-z 0-9 _ -"),
		checkEach("status", f.Statuses, func(s string) bool { return slices.Contains(alertStatuses, s) }, "must be open, acknowledged, resolved or false_positive"),
	)
	if err != nil {
		return f, firstParamError(err)
	}
	if f.Subject != "" && !schemas.ValidPseudonym(f.Subject) {
		return f, badParam("subject", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	if f.Session != "" && !schemas.ValidPseudonym(f.Session) {
		return f, badParam("session", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	if f.Cursor != "" && !cursorPattern.MatchString(f.Cursor) {
		return f, badParam("cursor", "is not a cursor this server returned")
	}
	switch q.Get("suppressed") {
	case "":
	case "true":
		f.Suppressed = new(bool)
		*f.Suppressed = true
	case "false":
		f.Suppressed = new(bool)
	default:
		return f, badParam("suppressed", "must be true or false")
	}
	if f.Limit, err = parseLimit(q, defaultPageSize, maxPageSize); err != nil {
		return f, err
	}
	return f, nil
}

// firstParamError returns the first paramError of a joined error, so that
// the answer names one parameter.
func firstParamError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil {
				return e
			}
		}
	}
	return err
}

// alertListData is the alert list: the filter as read, one page of alerts
// and the link to the next page.
type alertListData struct {
	Filter chstore.AlertFilter
	Page   chstore.AlertPage
	// NextURL is the query string of the next page, "" on the last.
	NextURL string
	// Severities and Statuses are the choices of the filter form.
	Severities, Statuses []string
}

// SuppressedIs reports whether the filter keeps only suppressed alerts
// (v true) or only the others (v false), for the filter form.
func (d alertListData) SuppressedIs(v bool) bool {
	return d.Filter.Suppressed != nil && *d.Filter.Suppressed == v
}

// Has reports whether list holds v (for the filter form's checkboxes).
func (alertListData) Has(list []string, v string) bool { return slices.Contains(list, v) }

// loadAlertList reads the filter from the request and loads one page.
func (h *handler) loadAlertList(c echo.Context) (alertListData, error) {
	q := c.QueryParams()
	f, err := parseAlertFilter(q, h.now())
	if err != nil {
		return alertListData{}, err
	}
	p, err := h.store.Alerts(c.Request().Context(), f)
	if err != nil {
		if f.Cursor != "" && errors.Is(err, chstore.ErrInvalidArgument) {
			return alertListData{}, badParam("cursor", "is not a cursor this server returned")
		}
		return alertListData{}, err
	}
	d := alertListData{Filter: f, Page: p, Severities: severities, Statuses: alertStatuses}
	if p.Next != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("cursor", p.Next)
		// The next page keeps the same end even when "to" was left to now.
		next.Set("to", f.To.Format(time.RFC3339Nano))
		d.NextURL = "?" + next.Encode()
	}
	return d, nil
}

// showAlertList renders the filtered, paginated, live-updating alert list.
func (h *handler) showAlertList(c echo.Context) error {
	d, err := h.loadAlertList(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewAlertList, d)
}

// alertJSON is an alert in the JSON API.
type alertJSON struct {
	ID             string          `json:"id"`
	Detector       string          `json:"detector"`
	Technique      string          `json:"technique,omitempty"`
	RuleVersion    uint32          `json:"rule_version,omitempty"`
	Severity       string          `json:"severity"`
	Time           time.Time       `json:"time"`
	DetectedAt     time.Time       `json:"detected_at"`
	App            string          `json:"app"`
	Subject        string          `json:"subject,omitempty"`
	Session        string          `json:"session,omitempty"`
	SourceIPPrefix string          `json:"source_ip_prefix,omitempty"`
	SourceASN      uint32          `json:"source_asn,omitempty"`
	Title          string          `json:"title"`
	Summary        string          `json:"summary"`
	Details        json.RawMessage `json:"details"`
	Evidence       []string        `json:"evidence"`
	Status         string          `json:"status"`
	StatusActor    string          `json:"status_actor,omitempty"`
	StatusTime     *time.Time      `json:"status_time,omitempty"`
	// Suppression is set when a suppression rule marked the alert.
	Suppression *schemas.AlertSuppression `json:"suppression,omitempty"`
}

func newAlertJSON(a chstore.AlertView) alertJSON {
	j := alertJSON{
		ID: a.ID, Detector: a.Detector, Technique: a.Technique, RuleVersion: a.RuleVersion, Severity: a.Severity, Time: a.Time.UTC(), DetectedAt: a.DetectedAt.UTC(),
		App: a.App, Subject: a.Subject, Session: a.Session, SourceIPPrefix: a.SourceIPPrefix, SourceASN: a.SourceASN,
		Title: a.Title, Summary: a.Summary, Details: json.RawMessage("{}"), Evidence: a.Evidence,
		Status: a.Status, StatusActor: a.StatusActor,
	}
	if json.Valid([]byte(a.Details)) && a.Details != "" {
		j.Details = json.RawMessage(a.Details)
	}
	if j.Evidence == nil {
		j.Evidence = []string{}
	}
	if j.Status == "" {
		j.Status = string(schemas.StatusOpen)
	}
	if !a.StatusTime.IsZero() {
		t := a.StatusTime.UTC()
		j.StatusTime = &t
	}
	if a.SuppressedBy != "" {
		j.Suppression = &schemas.AlertSuppression{Rule: a.SuppressedBy, Action: schemas.SuppressionAction(a.SuppressionAction),
			OriginalSeverity: schemas.Severity(a.OriginalSeverity)}
	}
	return j
}

func newAlertsJSON(as []chstore.AlertView) []alertJSON {
	out := make([]alertJSON, len(as))
	for i, a := range as {
		out[i] = newAlertJSON(a)
	}
	return out
}

// alertListJSON is the answer of GET /api/v1/alerts.
type alertListJSON struct {
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	Alerts []alertJSON `json:"alerts"`
	// NextCursor continues the list (pass it as cursor, with the same to);
	// empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// apiAlertList answers GET /api/v1/alerts.
//
// Query parameters (each list parameter repeatable or comma-separated):
// from, to (RFC 3339; default the last 7 days), severity (low, medium,
// high, critical), detector, app, status (open, acknowledged, resolved,
// false_positive), subject, session, suppressed (true: only alerts a
// suppression rule marked; false: only the others), limit (1-1000,
// default 50), cursor
// (next_cursor of the previous page). Response 200: alertListJSON
// {from, to, alerts: [alert], next_cursor}, newest first; 400
// {error, field} naming an invalid parameter.
func (h *handler) apiAlertList(c echo.Context) error {
	d, err := h.loadAlertList(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, alertListJSON{From: d.Filter.From, To: d.Filter.To, Alerts: newAlertsJSON(d.Page.Alerts), NextCursor: d.Page.Next})
}
