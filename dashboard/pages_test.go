package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

const hostile = `<script>alert(1)</script>`

// pagesEnv is a dashboard on real ClickHouse and NATS with a signed-in
// analyst session and an admin API token.
type pagesEnv struct {
	s      *Server
	store  *chstore.Store
	js     jetstream.JetStream
	cookie string
	csrf   string
	bearer string
	now    time.Time
}

func newPagesEnv(t *testing.T) *pagesEnv {
	t.Helper()
	return newPagesEnvAt(t, time.Now)
}

// newPagesEnvAt is newPagesEnv whose dashboard reads the time from clock;
// env.now is the clock's time at the start.
func newPagesEnvAt(t *testing.T, clock func() time.Time) *pagesEnv {
	t.Helper()
	store := chtest.New(t)
	_, js := natstest.Connect(t, natstest.RunServer(t))
	_, err := natsconn.EnsureAlertStream(t.Context(), js, natsconn.AlertStreamConfig{MaxAge: time.Hour, Duplicates: time.Minute})
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Users = []User{
		{Name: "anna", Role: RoleAnalyst, PasswordHash: hashPasswordWith("unused-anna", 8, 1, 1)},
		{Name: "adam", Role: RoleAdmin, PasswordHash: hashPasswordWith("unused-adam", 8, 1, 1)},
	}
	s, err := New(t.Context(), cfg, Deps{Store: store, JS: js, Retention: retention.DefaultConfig(),
		Eraser: retention.NewEraser(store, nil, nil), Now: clock})
	require.NoError(t, err)
	env := &pagesEnv{s: s, store: store, js: js, now: clock().UTC()}
	env.csrf = newRandomString(32)
	env.cookie, err = s.h.auth.sessions.create(t.Context(), session{User: "anna", CSRF: env.csrf,
		Created: env.now, LastSeen: env.now, AuthAt: env.now})
	require.NoError(t, err)
	env.bearer, _, err = s.h.auth.tokens.create(t.Context(), apiToken{Name: "pages-admin", Role: RoleAdmin,
		Created: env.now, Expires: env.now.Add(time.Hour), CreatedBy: "adam"})
	require.NoError(t, err)
	return env
}

// get sends a GET as the signed-in analyst (paths under /api/ with the
// admin token).
func (env *pagesEnv) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	return env.send(t, http.MethodGet, path, nil)
}

func (env *pagesEnv) send(t *testing.T, method, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var body io.Reader = http.NoBody
	if form != nil {
		if !strings.HasPrefix(path, "/api/") {
			form.Set("csrf_token", env.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequestWithContext(ctx, method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if strings.HasPrefix(path, "/api/") {
		req.Header.Set("Authorization", "Bearer "+env.bearer)
	} else {
		req.AddCookie(&http.Cookie{Name: env.s.h.auth.cookieName, Value: env.cookie})
	}
	rec := httptest.NewRecorder()
	env.s.Handler().ServeHTTP(rec, req)
	return rec
}

// alertID makes a valid alert id from n.
func testAlertID(n int) string { return fmt.Sprintf("%032x", n+1) }

// seed stores n alerts, one a minute back from env.now, and one event (the
// evidence of the first). The first alert is an impossible travel with
// hostile text in its app-facing fields.
func (env *pagesEnv) seed(t *testing.T, n int) []chstore.AlertRow {
	t.Helper()
	ev := chstore.EventRow{
		ID: "ev-1", Type: "session.started", Time: env.now.Add(-time.Minute).Truncate(time.Second),
		TimeMS: env.now.Add(-time.Minute).UnixMilli(), App: "shop", Subject: "k1:SubjectAAAA", Session: "k1:SessionAAAA",
		ClientCountry: "DE", ClientCity: "Berlin", UABrowser: hostile,
		AttrsKeys: []string{"note"}, AttrsValues: []string{hostile},
		AuthMFA: chstore.TriUnknown, CookieSecure: chstore.TriUnknown, CookieHTTPOnly: chstore.TriUnknown,
		IngestedAt: env.now.Truncate(time.Second),
	}
	require.NoError(t, env.store.InsertEvents(t.Context(), []chstore.EventRow{ev}))
	var rows []chstore.AlertRow
	for i := range n {
		at := env.now.Add(-time.Duration(i+1) * time.Minute).Truncate(time.Millisecond)
		r := chstore.AlertRow{
			ID: testAlertID(i), Detector: "brute_force", Severity: "medium", SeverityRank: 2, Time: at, DetectedAt: at,
			App: "shop", Subject: "k1:SubjectAAAA", Title: "Brute force", Summary: fmt.Sprintf("alert %d", i), Details: "{}",
		}
		if i == 0 {
			r.Detector, r.Severity, r.SeverityRank, r.Title = "impossible_travel", "high", 3, "Impossible travel"
			r.Technique, r.RuleVersion = "T1078", 1
			r.Session, r.Evidence = "k1:SessionAAAA", []string{"ev-1"}
			r.Summary = "Seen in " + hostile
			r.Details = `{"from":{"lat":52.52,"lon":13.405,"city":"Berlin","country":"DE"},` +
				`"to":{"lat":-33.87,"lon":151.21,"city":"Sydney","country":"AU"},"distance_km":16095,"speed_kmh":64218,"elapsed_s":900}`
		}
		rows = append(rows, r)
	}
	require.NoError(t, env.store.InsertAlerts(t.Context(), rows))
	return rows
}

func TestPagesEscapeHostileData(t *testing.T) {
	env := newPagesEnv(t)
	env.seed(t, 3)
	escaped := "&lt;script&gt;alert(1)&lt;/script&gt;"
	for _, path := range []string{
		"/alerts",
		"/alerts/" + testAlertID(0),
		"/subjects/k1:SubjectAAAA",
		"/sessions/k1:SessionAAAA",
	} {
		t.Run(path, func(t *testing.T) {
			rec := env.get(t, path)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			body := rec.Body.String()
			require.NotContains(t, body, hostile)
			require.Contains(t, body, escaped)
			require.NotContains(t, body, "style=")
			require.NotContains(t, body, "<script>")
		})
	}
}

func TestOverviewPage(t *testing.T) {
	env := newPagesEnv(t)
	env.seed(t, 3)
	rec := env.get(t, "/")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	body := rec.Body.String()
	require.Contains(t, body, `<svg class="chart"`)
	require.Contains(t, body, "Events per minute, last 24 h")
	require.Contains(t, body, "brute_force")
	require.Contains(t, body, "Pipeline health")

	rec = env.get(t, "/api/v1/overview")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var o struct {
		EventsPerMinute []struct {
			Time  time.Time `json:"time"`
			Count uint64    `json:"count"`
		} `json:"events_per_minute"`
		OpenBySeverity []struct {
			Name  string `json:"name"`
			Count uint64 `json:"count"`
		} `json:"open_by_severity"`
		Health map[string]any `json:"health"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &o))
	require.GreaterOrEqual(t, len(o.EventsPerMinute), 24*60)
	var open uint64
	for _, s := range o.OpenBySeverity {
		open += s.Count
	}
	require.EqualValues(t, 3, open)
	require.Contains(t, o.Health, "dead_letters")
}

func TestAlertListFilterValidation(t *testing.T) {
	env := newPagesEnv(t)
	cases := []struct{ name, query, field string }{
		{"severity", "severity=urgent", "severity"},
		{"status", "status=closed", "status"},
		{"detector", "detector=Bad-Name!", "detector"},
		{"app", "app=" + url.QueryEscape(hostile), "app"},
		{"from", "from=yesterday", "from"},
		{"range", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"},
		{"limit", "limit=0", "limit"},
		{"cursor", "cursor=" + url.QueryEscape("not a cursor"), "cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := env.get(t, "/alerts?"+tc.query)
			require.Equal(t, http.StatusBadRequest, rec.Code)
			require.Contains(t, rec.Body.String(), "<code>"+tc.field+"</code>")
			require.NotContains(t, rec.Body.String(), hostile)

			rec = env.get(t, "/api/v1/alerts?"+tc.query)
			require.Equal(t, http.StatusBadRequest, rec.Code)
			var e apiError
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			require.Equal(t, tc.field, e.Field)
			require.NotEmpty(t, e.Error)
		})
	}
}

func TestAlertListPagination(t *testing.T) {
	env := newPagesEnv(t)
	rows := env.seed(t, 5)
	seen := map[string]bool{}
	q := "/api/v1/alerts?limit=2&severity=medium,high"
	for range 5 {
		rec := env.get(t, q)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var page alertListJSON
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		require.LessOrEqual(t, len(page.Alerts), 2)
		for _, a := range page.Alerts {
			require.False(t, seen[a.ID], "alert %s on two pages", a.ID)
			seen[a.ID] = true
			require.Equal(t, "open", a.Status)
		}
		if page.NextCursor == "" {
			break
		}
		q = "/api/v1/alerts?limit=2&severity=medium,high&cursor=" + url.QueryEscape(page.NextCursor) +
			"&to=" + url.QueryEscape(page.To.Format(time.RFC3339Nano))
	}
	require.Len(t, seen, len(rows))

	// The HTML list links the next page with the same filter.
	rec := env.get(t, "/alerts?limit=2&severity=medium")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `rel="next"`)
	require.Contains(t, rec.Body.String(), "alert 1")
	require.NotContains(t, rec.Body.String(), "alert 3")
}

func TestAlertDetailShowsMapAndJSON(t *testing.T) {
	env := newPagesEnv(t)
	env.seed(t, 1)
	rec := env.get(t, "/alerts/"+testAlertID(0))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	body := rec.Body.String()
	require.Contains(t, body, `<svg class="map"`)
	require.Contains(t, body, "/static/world.svg?v=")
	require.Contains(t, body, "16095 km")
	require.Contains(t, body, "64218 km/h")
	require.Contains(t, body, `name="csrf_token" value="`+env.csrf+`"`, "the analyst gets the triage form")

	rec = env.get(t, "/api/v1/alerts/"+testAlertID(0))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var d map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
	require.ElementsMatch(t, []string{"alert", "history", "evidence", "deliveries"}, keys(d))
	a := d["alert"].(map[string]any)
	require.Equal(t, "impossible_travel", a["detector"])
	_, err := time.Parse(time.RFC3339, a["time"].(string))
	require.NoError(t, err)
	require.Len(t, d["evidence"], 1)

	require.Equal(t, http.StatusNotFound, env.get(t, "/alerts/"+testAlertID(99)).Code)
	rec = env.get(t, "/api/v1/alerts/nothex")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"id"`)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTriageIsRecordedAsStatusChange(t *testing.T) {
	env := newPagesEnv(t)
	env.seed(t, 1)
	id := testAlertID(0)
	cons, err := env.js.OrderedConsumer(t.Context(), schemas.AlertStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.StatusSubjectPrefix + ">"},
	})
	require.NoError(t, err)

	rec := env.send(t, http.MethodPost, "/alerts/"+id+"/status", url.Values{"status": {"acknowledged"}, "comment": {"looking " + hostile}})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, "/alerts/"+id, rec.Header().Get("Location"))

	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	require.NoError(t, err)
	var sc schemas.StatusChange
	require.NoError(t, json.Unmarshal(msg.Data(), &sc))
	require.Equal(t, id, sc.AlertID)
	require.Equal(t, schemas.StatusAcknowledged, sc.Status)
	require.Equal(t, "anna", sc.Actor)
	require.Equal(t, "looking "+hostile, sc.Comment)

	// Once stored (detect's writer does it in production), the detail page
	// shows the change, escaped.
	require.NoError(t, env.store.AppendAlertStatus(t.Context(), chstore.AlertStatusRow{
		ID: sc.ID, AlertID: id, Status: string(sc.Status), Actor: sc.Actor, Comment: sc.Comment, Time: sc.Time.Time,
	}))
	rec = env.get(t, "/alerts/"+id)
	require.Contains(t, rec.Body.String(), "looking &lt;script&gt;")
	require.Contains(t, rec.Body.String(), `status-acknowledged`)

	// Invalid triage names the field.
	rec = env.send(t, http.MethodPost, "/api/v1/alerts/"+id+"/status", url.Values{"status": {"closed"}})
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"status"`)
	rec = env.send(t, http.MethodPost, "/api/v1/alerts/"+testAlertID(42)+"/status", url.Values{"status": {"resolved"}})
	require.Equal(t, http.StatusNotFound, rec.Code)

	rec = env.send(t, http.MethodPost, "/api/v1/alerts/"+id+"/status", url.Values{"status": {"resolved"}})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var out statusChangeJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.Equal(t, "resolved", out.Status)
	require.True(t, strings.HasPrefix(out.Actor, "token:"), "the actor is the API token: %s", out.Actor)
}

func TestLiveAlertsStreamsNewAlerts(t *testing.T) {
	env := newPagesEnv(t)
	srv := httptest.NewServer(env.s.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/alerts/live?severity=high", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: env.s.h.auth.cookieName, Value: env.cookie})
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
	r := bufio.NewReader(resp.Body)
	// The stream says it is connected once its consumer exists.
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, ": connected") {
			break
		}
	}
	publish := func(id, sev, app string) {
		a := schemas.Alert{ID: id, Detector: "brute_force", Severity: schemas.Severity(sev), Time: schemas.At(time.Now().UTC()),
			App: app, Title: "Brute force", Summary: "new " + hostile, Evidence: []string{}}
		b, err := json.Marshal(a)
		require.NoError(t, err)
		_, err = env.js.Publish(ctx, schemas.AlertSubject(&a), b)
		require.NoError(t, err)
	}
	publish(testAlertID(7), "low", "shop")  // filtered out: severity
	publish(testAlertID(8), "high", "shop") // delivered
	var data string
	poll.CheckFor(t, 15*time.Second, time.Millisecond, func() error {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil // fails below: data stays empty
		}
		if after, ok := strings.CutPrefix(line, "data: "); ok {
			data = after
			return nil
		}
		return fmt.Errorf("no data line yet (last %q)", line)
	})
	var la liveAlert
	require.NoError(t, json.Unmarshal([]byte(data), &la))
	require.Equal(t, testAlertID(8), la.ID, "the low alert is filtered out")
	require.Equal(t, "new "+hostile, la.Summary, "JSON carries the text; app.js writes it with textContent")
}

func TestSubjectExportAndAPIs(t *testing.T) {
	env := newPagesEnv(t)
	env.seed(t, 2)
	rec := env.get(t, "/subjects/k1:SubjectAAAA/export")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/x-ndjson", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Header().Get("Content-Disposition"), "attachment")
	require.NotContains(t, rec.Header().Get("Content-Disposition"), "SubjectAAAA")
	sets := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(rec.Body.String()), "\n") {
		var r retention.ExportRecord
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		sets[r.DataSet]++
		if r.DataSet == chstore.TableEvents {
			require.Equal(t, "k1:SubjectAAAA", r.Row["subject"])
			require.Contains(t, r.Row, "client_ip_prefix")
		}
	}
	require.Equal(t, map[string]int{"events": 1, "alerts": 2}, sets)

	rec = env.get(t, "/api/v1/subjects/k1:SubjectAAAA")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var s subjectJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &s))
	require.Len(t, s.Events, 1)
	require.Len(t, s.Alerts, 2)
	require.Equal(t, map[string]string{"note": hostile}, s.Events[0].Attrs)

	rec = env.get(t, "/api/v1/subjects/short")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"subject"`)

	rec = env.get(t, "/api/v1/sessions/k1:SessionAAAA")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var ss sessionJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ss))
	require.Equal(t, "k1:SubjectAAAA", ss.Subject)
	require.Len(t, ss.Events, 1)
	require.Equal(t, http.StatusNotFound, env.get(t, "/api/v1/sessions/k1:NoSuchSession").Code)
}

func TestOperationalPages(t *testing.T) {
	env := newPagesEnv(t)
	for _, path := range []string{"/dead-letters", "/webhooks", "/retention", "/subjects"} {
		rec := env.get(t, path)
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", path, rec.Body.String())
	}
	rec := env.get(t, "/webhooks?status=lost")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "<code>status</code>")

	rec = env.get(t, "/api/v1/retention")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var r retentionJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
	require.NotEmpty(t, r.DataSets)
	require.Equal(t, "events", r.DataSets[0].Name)
	require.Contains(t, r.DataSets[0].Fields, "subject")

	rec = env.get(t, "/api/v1/dead-letters")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"dead_letters":[]}`, rec.Body.String())
}

func TestStaticAssets(t *testing.T) {
	env := newPagesEnv(t)
	u, err := env.s.h.render.assets.url("app.css")
	require.NoError(t, err)
	rec := env.get(t, u)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/css; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Header().Get("Cache-Control"), "immutable")
	etag := rec.Header().Get("ETag")
	require.NotEmpty(t, etag)

	rec = env.get(t, "/static/app.js")
	require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
	require.Contains(t, rec.Header().Get("Content-Type"), "text/javascript")
	require.NotContains(t, rec.Body.String(), "innerHTML")

	rec = env.get(t, "/static/world.svg")
	require.Equal(t, "image/svg+xml", rec.Header().Get("Content-Type"))
	require.Less(t, rec.Body.Len(), 150_000)
	require.Equal(t, http.StatusNotFound, env.get(t, "/static/nope.css").Code)
}

func TestLegalHoldAndErasureAPI(t *testing.T) {
	env := newPagesEnv(t)
	subject := "k1:SubjectHELD"
	rec := env.send(t, http.MethodPost, "/api/v1/legal-holds", url.Values{"subject": {subject}})
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"reason"`)

	rec = env.send(t, http.MethodPost, "/api/v1/legal-holds", url.Values{"subject": {subject}, "reason": {"litigation " + hostile}})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	rec = env.get(t, "/api/v1/legal-holds")
	require.Equal(t, http.StatusOK, rec.Code)
	var holds legalHoldsJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &holds))
	require.Len(t, holds.LegalHolds, 1)
	require.Equal(t, subject, holds.LegalHolds[0].Subject)

	rec = env.send(t, http.MethodPost, "/api/v1/erasure-requests", url.Values{"subject": {subject}})
	require.Equal(t, http.StatusConflict, rec.Code, "a held subject cannot be erased: %s", rec.Body.String())

	rec = env.get(t, "/retention")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "litigation &lt;script&gt;")

	rec = env.send(t, http.MethodDelete, "/api/v1/legal-holds/"+subject, nil)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())

	rec = env.send(t, http.MethodPost, "/api/v1/erasure-requests", url.Values{"subject": {subject}})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var filed erasureJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &filed))
	require.Equal(t, chstore.ErasurePending, filed.Status)

	require.NotContains(t, rec.Body.String(), subject, "the filed request names the subject by its hash only")

	rec = env.get(t, "/api/v1/erasure-requests")
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), subject, "viewers see the pseudonym's hash, not the pseudonym")
	var reqs erasuresJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &reqs))
	require.Len(t, reqs.ErasureRequests, 1)
	require.Equal(t, filed.ID, reqs.ErasureRequests[0].ID)
	require.Equal(t, schemas.SubjectHash(subject), reqs.ErasureRequests[0].SubjectHash)

	rec = env.get(t, "/retention")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), filed.ID)
	require.NotContains(t, rec.Body.String(), subject, "the erasure requests on the page show the hash, not the pseudonym")
	require.Contains(t, rec.Body.String(), schemas.SubjectHash(subject)[:23])

	rec = env.send(t, http.MethodPost, "/api/v1/erasure-requests", url.Values{"subject": {"bad subject"}})
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"subject"`)
}
