package dashboard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// openAPIResourceURL names openapi.yaml inside the schema compiler; nothing
// is fetched from it.
const openAPIResourceURL = "https://sessionmon.invalid/dashboard/openapi.json"

// openAPISchemas validates response bodies against the response schemas of
// openapi.yaml. The whole document is one JSON Schema 2020-12 resource
// (OpenAPI 3.1's dialect), so "#/components/schemas/..." refs resolve.
type openAPISchemas struct {
	tree     map[string]any
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

func newOpenAPISchemas(t *testing.T) *openAPISchemas {
	t.Helper()
	var y any
	require.NoError(t, yaml.Unmarshal(openAPISpec, &y), "openapi.yaml")
	// JSON text is the common ground: YAML's ints and maps become what the
	// validator expects (json.Number, map[string]any).
	j, err := json.Marshal(y)
	require.NoError(t, err, "openapi.yaml as JSON (a mapping with a non-string key?)")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	require.NoError(t, err)
	tree, ok := doc.(map[string]any)
	require.True(t, ok, "openapi.yaml: not a mapping")
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource(openAPIResourceURL, doc))
	return &openAPISchemas{tree: tree, compiler: c, compiled: map[string]*jsonschema.Schema{}}
}

// pointerToken escapes one JSON Pointer token (RFC 6901).
func pointerToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// lookup returns the value at a JSON Pointer of the document.
func (o *openAPISchemas) lookup(t *testing.T, ptr string) any {
	t.Helper()
	var cur any = o.tree
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		require.True(t, ok, "openapi.yaml %s: %q is not under a mapping", ptr, tok)
		cur, ok = m[tok]
		require.True(t, ok, "openapi.yaml %s: no %q", ptr, tok)
	}
	return cur
}

// response returns the pointer and value of the response an operation
// documents for status, following a $ref to #/components/responses.
func (o *openAPISchemas) response(t *testing.T, method, path string, status int) (string, map[string]any) {
	t.Helper()
	ptr := "/paths/" + pointerToken(path) + "/" + strings.ToLower(method) + "/responses"
	responses, ok := o.lookup(t, ptr).(map[string]any)
	require.True(t, ok, "%s %s: responses is not a mapping", method, path)
	r, ok := responses[strconv.Itoa(status)]
	require.True(t, ok, "%s %s answered %d, which openapi.yaml does not document", method, path, status)
	ptr += "/" + strconv.Itoa(status)
	m, ok := r.(map[string]any)
	require.True(t, ok, "openapi.yaml %s: not a mapping", ptr)
	if ref, isRef := m["$ref"].(string); isRef {
		ptr = strings.TrimPrefix(ref, "#")
		m, ok = o.lookup(t, ptr).(map[string]any)
		require.True(t, ok, "openapi.yaml %s: not a mapping", ptr)
	}
	return ptr, m
}

// schema compiles the schema at a pointer of the document (cached).
func (o *openAPISchemas) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := o.compiled[ptr]; ok {
		return s
	}
	s, err := o.compiler.Compile(openAPIResourceURL + "#" + ptr)
	require.NoError(t, err, "compile the schema at openapi.yaml#%s", ptr)
	o.compiled[ptr] = s
	return s
}

// check validates a response against what openapi.yaml says the operation
// answers with its status: no body for a response without content,
// otherwise the documented media type and a body valid against its
// schema (each line for NDJSON, against the x-line-schema).
func (o *openAPISchemas) check(t *testing.T, method, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	where := method + " " + path + " " + strconv.Itoa(rec.Code)
	ptr, resp := o.response(t, method, path, rec.Code)
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		require.Empty(t, rec.Body.String(), "%s: openapi.yaml documents no body", where)
		return
	}
	mediaType, _, _ := strings.Cut(rec.Header().Get("Content-Type"), ";")
	mediaType = strings.TrimSpace(mediaType)
	require.Contains(t, content, mediaType, "%s: Content-Type %q is not documented", where, mediaType)
	ptr += "/content/" + pointerToken(mediaType)
	switch mediaType {
	case "application/json":
		o.validate(t, where, ptr+"/schema", rec.Body.Bytes())
	case "application/x-ndjson":
		lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
		require.NotEmpty(t, lines[0], "%s: no lines", where)
		for i, line := range lines {
			o.validate(t, where+" line "+strconv.Itoa(i+1), ptr+"/x-line-schema", []byte(line))
		}
	case "application/yaml":
		require.NotEmpty(t, rec.Body.String(), "%s: empty document", where)
	default:
		t.Fatalf("%s: no check for media type %q", where, mediaType)
	}
}

func (o *openAPISchemas) validate(t *testing.T, where, ptr string, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	require.NoError(t, err, "%s: body is not JSON: %.300s", where, body)
	if err := o.schema(t, ptr).Validate(v); err != nil {
		t.Fatalf("%s: the body does not match openapi.yaml#%s:\n%v\nbody: %.2000s", where, ptr, err, body)
	}
}

// Pseudonyms of the seeded data, in the SDK's "<key id>:<base64url>" form.
const (
	oaSubject     = "k1:T3BlbkFQSVN1YmplY3QtMDAx"
	oaErased      = "k1:T3BlbkFQSVN1YmplY3QtMDAy"
	oaHeld        = "k1:T3BlbkFQSVN1YmplY3QtMDAz"
	oaSession     = "k1:T3BlbkFQSVNlc3Npb24tMDAx"
	oaPrevSession = "k1:T3BlbkFQSVNlc3Npb24tMDAw"
	oaDevice      = "k1:T3BlbkFQSURldmljZS0wMDEx"
	oaToken       = "k1:T3BlbkFQSVRva2VuLTAwMDAx"
	oaTokenParent = "k1:T3BlbkFQSVRva2VuLTAwMDAw"
	oaFamily      = "k1:T3BlbkFQSUZhbWlseS0wMDAx"
	oaWebhook     = "siem"
)

// openAPIEnv is a dashboard on real ClickHouse and NATS, with a webhook
// notifier and API tokens of an admin and a viewer.
type openAPIEnv struct {
	s      *Server
	store  *chstore.Store
	js     jetstream.JetStream
	admin  string
	viewer string
	now    time.Time
}

func newOpenAPIEnv(t *testing.T) *openAPIEnv {
	t.Helper()
	store := chtest.New(t)
	_, js := natstest.Connect(t, natstest.RunServer(t))
	_, err := natsconn.EnsureAlertStream(t.Context(), js, natsconn.AlertStreamConfig{MaxAge: time.Hour, Duplicates: time.Minute})
	require.NoError(t, err)

	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	ncfg := notify.DefaultConfig()
	ncfg.Webhooks = []notify.Webhook{{Name: oaWebhook, URL: "https://siem.example.com/hook", Secret: secret}}
	ncfg.ApplyDefaults()
	notifier, err := notify.New(js, ncfg)
	require.NoError(t, err)

	rcfg := retention.DefaultConfig()
	rcfg.EventTypes[schemas.LoginFailed] = retention.Period(30 * 24 * time.Hour)
	rcfg.Apps["shop"] = retention.Period(60 * 24 * time.Hour)

	cfg := DefaultConfig()
	// A cheap hash: nobody signs in with it (the reauth check makes a session).
	cfg.Users = []User{{Name: "adam", Role: RoleAdmin, PasswordHash: hashPasswordWith("unused-adam", 8, 1, 1)}}
	s, err := New(t.Context(), cfg, Deps{Store: store, JS: js, Retention: rcfg, Notifier: notifier,
		Eraser: retention.NewEraser(store, nil, nil)})
	require.NoError(t, err)
	env := &openAPIEnv{s: s, store: store, js: js, now: time.Now().UTC()}
	for _, tok := range []struct {
		role Role
		dst  *string
	}{{RoleAdmin, &env.admin}, {RoleViewer, &env.viewer}} {
		*tok.dst, _, err = s.h.auth.tokens.create(t.Context(), apiToken{Name: "openapi-" + tok.role.String(), Role: tok.role,
			Created: env.now, Expires: env.now.Add(time.Hour), CreatedBy: "adam"})
		require.NoError(t, err)
	}
	return env
}

// send makes one request with bearer (none when ""); a non-nil body is
// sent as JSON.
func (env *openAPIEnv) send(t *testing.T, bearer, method, target string, body any) *httptest.ResponseRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var r io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(ctx, method, target, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	env.s.Handler().ServeHTTP(rec, req)
	return rec
}

// oaAlertID is the id of the n-th seeded alert.
func oaAlertID(n int) string { return strings.Repeat("0", 31) + strconv.Itoa(n) }

// seed stores data of every kind the API shows, with the optional fields
// set, so that every array has items and most optional fields appear.
func (env *openAPIEnv) seed(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	at := func(ago time.Duration) time.Time { return env.now.Add(-ago).Truncate(time.Millisecond) }
	event := func(id string, typ schemas.Type, ago time.Duration) chstore.EventRow {
		tm := at(ago)
		return chstore.EventRow{ID: id, Type: string(typ), Time: tm.Truncate(time.Second), TimeMS: tm.UnixMilli(), App: "shop",
			Subject: oaSubject, Session: oaSession, AuthMFA: chstore.TriUnknown, CookieSecure: chstore.TriUnknown,
			CookieHTTPOnly: chstore.TriUnknown, IngestedAt: env.now.Truncate(time.Second)}
	}
	login := event("ev-login", schemas.LoginSucceeded, 50*time.Minute)
	login.PreviousSession, login.AuthMethod = oaPrevSession, "password"
	login.ClientDevice, login.ClientIPPrefix, login.ClientASN = oaDevice, "203.0.113.0/24", 64500
	login.ClientCountry, login.ClientCity, login.HasGeo, login.ClientLat, login.ClientLon = "DE", "Berlin", true, 52.52, 13.405
	login.GeoSource, login.UABrowser, login.UAOS, login.UADevice = chstore.GeoSourceGeoIP, "Firefox", "Linux", "desktop"
	login.AttrsKeys, login.AttrsValues = []string{"plan"}, []string{"pro"}
	issued := event("ev-token", schemas.TokenIssued, 49*time.Minute)
	issued.TokenID, issued.TokenKind, issued.TokenFamily, issued.TokenParent = oaToken, "refresh", oaFamily, oaTokenParent
	issued.TokenIssuedAtMS, issued.TokenExpiresAtMS = at(49*time.Minute).UnixMilli(), env.now.Add(time.Hour).UnixMilli()
	action := event("ev-action", schemas.ActionPerformed, 40*time.Minute)
	action.ActionName, action.ActionSensitive = "export_data", true
	ended := event("ev-end", schemas.SessionEnded, 30*time.Minute)
	ended.Reason = "logout"
	require.NoError(t, env.store.InsertEvents(ctx, []chstore.EventRow{login, issued, action, ended}))

	travel := chstore.AlertRow{ID: oaAlertID(1), Detector: "impossible_travel", Technique: "T1078", RuleVersion: 1,
		Severity: "high", SeverityRank: 3,
		Time: at(45 * time.Minute), DetectedAt: at(44 * time.Minute), App: "shop", Subject: oaSubject, Session: oaSession,
		SourceIPPrefix: "203.0.113.0/24", SourceASN: 64500, Title: "Impossible travel", Summary: "Berlin to Sydney in 15 minutes",
		Details: `{"distance_km":16095,"speed_kmh":64218}`, Evidence: []string{"ev-login"}}
	brute := chstore.AlertRow{ID: oaAlertID(2), Detector: "brute_force", Severity: "medium", SeverityRank: 2,
		Time: at(20 * time.Minute), DetectedAt: at(20 * time.Minute), App: "shop", Subject: oaSubject,
		Title: "Brute force", Summary: "12 failed logins", Details: "{}",
		SuppressedBy: "0123456789abcdef", SuppressionAction: "lower", OriginalSeverity: "high"}
	reuse := chstore.AlertRow{ID: oaAlertID(3), Detector: "token_reuse", Severity: "critical", SeverityRank: 4,
		Time: at(10 * time.Minute), DetectedAt: at(10 * time.Minute), App: "shop", Session: oaSession,
		Title: "Token reuse", Summary: "A rotated refresh token was used again", Details: "{}"}
	require.NoError(t, env.store.InsertAlerts(ctx, []chstore.AlertRow{travel, brute, reuse}))
	require.NoError(t, env.store.AppendAlertStatus(ctx,
		chstore.AlertStatusRow{ID: "st-1", AlertID: travel.ID, Status: string(schemas.StatusAcknowledged), Actor: "anna", Time: at(40 * time.Minute)},
		chstore.AlertStatusRow{ID: "st-2", AlertID: travel.ID, Status: string(schemas.StatusResolved), Actor: "anna",
			Comment: "the user was on a VPN", Time: at(35 * time.Minute)}))
	// The notifier reads an alert to redeliver back from the alert stream.
	require.NoError(t, alertbus.PublishAlert(ctx, env.js, schemas.Alert{ID: travel.ID, Detector: travel.Detector,
		Severity: schemas.SeverityHigh, Time: schemas.At(travel.Time), DetectedAt: schemas.At(travel.DetectedAt), App: "shop",
		Subject: oaSubject, Title: travel.Title, Summary: travel.Summary, Evidence: travel.Evidence}))

	require.NoError(t, env.store.InsertWebhookDeliveries(ctx, []chstore.WebhookDeliveryRow{
		{Webhook: oaWebhook, AlertID: travel.ID, Attempt: 1, Status: chstore.DeliveryFailed, HTTPStatus: 503,
			Error: "503 Service Unavailable", Latency: 120 * time.Millisecond, Time: at(43 * time.Minute)},
		{Webhook: oaWebhook, AlertID: travel.ID, Attempt: 2, Status: chstore.DeliveryUndeliverable,
			Error: "gave up", Latency: 80 * time.Millisecond, Time: at(42 * time.Minute)},
		{Webhook: "chat", AlertID: travel.ID, Attempt: 1, Status: chstore.DeliveryDelivered, HTTPStatus: 200,
			Latency: 40 * time.Millisecond, Time: at(43 * time.Minute)},
	}))
	kv, _, err := natsconn.EnsureNotifyState(ctx, env.js, 1)
	require.NoError(t, err)
	rec, err := json.Marshal(notify.Undeliverable{Webhook: oaWebhook, AlertID: travel.ID, Reason: notify.ReasonGaveUp,
		Attempts: 2, LastStatus: 503, LastError: "503 Service Unavailable", QueuedAt: at(44 * time.Minute), RecordedAt: at(42 * time.Minute)})
	require.NoError(t, err)
	_, err = kv.Put(ctx, oaWebhook+"."+travel.ID, rec)
	require.NoError(t, err)

	require.NoError(t, env.store.InsertDeletionLog(ctx, []chstore.DeletionLogRow{
		{ID: "dl-1", Job: "job-1", Policy: "events 90d", DataSet: "events", Action: chstore.ActionDropPartition, Target: "202601",
			RowsBefore: 1200, Started: at(5 * time.Hour), Finished: at(5*time.Hour - time.Second), Outcome: chstore.OutcomeOK},
		{ID: "dl-2", Job: "job-1", Policy: "alerts 365d", DataSet: "alerts", Action: chstore.ActionDeleteRows, Target: "time < '2025-01-01 00:00:00'",
			RowsBefore: 10, RowsAfter: 10, Started: at(5 * time.Hour), Finished: at(5*time.Hour - 2*time.Second), Outcome: chstore.OutcomeFailed,
			Error: "mutation timed out"},
		{ID: "dl-3", Job: "job-1", Policy: "all", DataSet: "all", Action: chstore.ActionRun, RowsBefore: 1210, RowsAfter: 10,
			Started: at(5 * time.Hour), Finished: at(5*time.Hour - 3*time.Second), Outcome: chstore.OutcomeOK},
	}))
	require.NoError(t, env.store.AppendErasureStatus(ctx, chstore.ErasureRequest{ID: "er-done", Seq: 1, Subject: oaErased,
		RequestedBy: "adam", Status: chstore.ErasurePending, Requested: at(3 * time.Hour), Updated: at(3 * time.Hour)}))
	require.NoError(t, env.store.AppendErasureStatus(ctx, chstore.ErasureRequest{ID: "er-done", Seq: 2, Subject: oaErased,
		RequestedBy: "adam", Status: chstore.ErasureDone, Rows: chstore.SubjectRows{"events": 4, "alerts": 1},
		Requested: at(3 * time.Hour), Updated: at(2 * time.Hour)}))
	require.NoError(t, env.store.InsertAudit(ctx, chstore.AuditRow{ID: "au-1", Time: at(time.Hour), Actor: "adam", Role: "admin",
		Action: "login", Outcome: chstore.AuditSuccess, RequestID: "req-1", SourceIPPrefix: "198.51.100.0/24"}))

	_, err = natsconn.EnsureDLQStream(ctx, env.js, 24*time.Hour, 1)
	require.NoError(t, err)
	// A dead letter as ingest writes it (ingest/dlq.go's headers).
	m := nats.NewMsg("sessionmon.dlq.schema")
	m.Header.Set("Sessionmon-Dlq-Reason", "schema")
	m.Header.Set("Sessionmon-Dlq-Error", "type: unknown event type")
	m.Header.Set("Sessionmon-Dlq-Fields", "type")
	m.Header.Set("Sessionmon-Dlq-Stream-Seq", "7")
	m.Header.Set("Sessionmon-Dlq-Time", at(time.Minute).Format(time.RFC3339Nano))
	m.Header.Set("Sessionmon-Dlq-Redacted", "false")
	m.Data = []byte(`{"type":"nope"}`)
	_, err = env.js.PublishMsg(ctx, m)
	require.NoError(t, err)
}

// TestOpenAPIResponsesMatchHandlers calls every operation of the API on
// seeded data and validates each answer against the response schema
// openapi.yaml gives for its status: the spec describes what the
// handlers return, not what the store holds.
func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	env := newOpenAPIEnv(t)
	env.seed(t)
	spec := newOpenAPISchemas(t)
	checked := map[string]bool{}

	// call sends a request as the admin (or bearer), checks its status and
	// validates the answer; it returns the decoded body (nil without one).
	call := func(t *testing.T, bearer, method, path, target string, body any, want int) map[string]any {
		t.Helper()
		rec := env.send(t, bearer, method, "/api/v1"+target, body)
		require.Equal(t, want, rec.Code, "%s %s: %.1000s", method, target, rec.Body.String())
		spec.check(t, method, path, rec)
		checked[method+" "+path+" "+strconv.Itoa(want)] = true
		var out map[string]any
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		}
		return out
	}
	nonEmpty := func(t *testing.T, body map[string]any, key string) {
		t.Helper()
		list, ok := body[key].([]any)
		require.True(t, ok, "%s: not an array in %v", key, body)
		require.NotEmpty(t, list, "%s: the seed should make it non-empty", key)
	}
	admin := env.admin

	t.Run("reads", func(t *testing.T) {
		o := call(t, admin, "GET", "/overview", "/overview", nil, http.StatusOK)
		nonEmpty(t, o, "open_by_severity")
		nonEmpty(t, o, "top_apps")

		page := call(t, admin, "GET", "/alerts", "/alerts?limit=2", nil, http.StatusOK)
		nonEmpty(t, page, "alerts")
		next, _ := page["next_cursor"].(string)
		require.NotEmpty(t, next, "two of three alerts: a next page")
		call(t, admin, "GET", "/alerts", "/alerts?limit=2&cursor="+url.QueryEscape(next)+"&to="+url.QueryEscape(page["to"].(string)), nil, http.StatusOK)

		d := call(t, admin, "GET", "/alerts/{id}", "/alerts/"+oaAlertID(1), nil, http.StatusOK)
		for _, k := range []string{"history", "evidence", "deliveries"} {
			nonEmpty(t, d, k)
		}
		s := call(t, admin, "GET", "/subjects/{subject}", "/subjects/"+oaSubject, nil, http.StatusOK)
		for _, k := range []string{"sessions", "events", "alerts"} {
			nonEmpty(t, s, k)
		}
		call(t, admin, "GET", "/subjects/{subject}/export", "/subjects/"+oaSubject+"/export", nil, http.StatusOK)
		ss := call(t, admin, "GET", "/sessions/{session}", "/sessions/"+oaSession, nil, http.StatusOK)
		for _, k := range []string{"events", "tokens", "alerts"} {
			nonEmpty(t, ss, k)
		}
		nonEmpty(t, call(t, admin, "GET", "/dead-letters", "/dead-letters", nil, http.StatusOK), "dead_letters")
		w := call(t, admin, "GET", "/webhook-deliveries", "/webhook-deliveries?since="+url.QueryEscape(env.now.Add(-2*time.Hour).Format(time.RFC3339)), nil, http.StatusOK)
		nonEmpty(t, w, "deliveries")
		nonEmpty(t, w, "undeliverable")
		r := call(t, admin, "GET", "/retention", "/retention", nil, http.StatusOK)
		nonEmpty(t, r, "deletion_log")
		nonEmpty(t, r, "data_sets")
		require.Contains(t, r, "last_run")
		nonEmpty(t, call(t, admin, "GET", "/erasure-requests", "/erasure-requests", nil, http.StatusOK), "erasure_requests")

		// What detect learned: a published list, and an engine answering
		// for the owner of the familiarity fixture.
		seedGoldenNetworks(t, &pagesEnv{js: env.js, now: env.now})
		nonEmpty(t, call(t, admin, "GET", "/networks/shared", "/networks/shared", nil, http.StatusOK), "networks")
		call(t, env.viewer, "GET", "/networks/shared", "/networks/shared?app=shop", nil, http.StatusOK)
		call(t, admin, "GET", "/subjects/{subject}/familiar", "/subjects/"+netOwner+"/familiar", nil, http.StatusServiceUnavailable)
		answerFamiliarFrom(t, env.js.Conn(), netEvents(env.now.Add(-5*time.Hour)))
		f := call(t, env.viewer, "GET", "/subjects/{subject}/familiar", "/subjects/"+netOwner+"/familiar?app=shop", nil, http.StatusOK)
		nonEmpty(t, f["familiar"].(map[string]any), "networks")
		nonEmpty(t, f["familiar"].(map[string]any), "devices")
		call(t, "", "GET", "/openapi.yaml", "/openapi.yaml", nil, http.StatusOK)
	})

	t.Run("actions", func(t *testing.T) {
		call(t, admin, "POST", "/alerts/{id}/status", "/alerts/"+oaAlertID(2)+"/status",
			map[string]string{"status": "acknowledged", "comment": "looking"}, http.StatusAccepted)
		call(t, admin, "POST", "/webhook-deliveries/redeliver", "/webhook-deliveries/redeliver",
			map[string]string{"alert_id": oaAlertID(1)}, http.StatusAccepted)
		call(t, admin, "POST", "/legal-holds", "/legal-holds", map[string]string{"subject": oaHeld, "reason": "litigation"}, http.StatusCreated)
		nonEmpty(t, call(t, admin, "GET", "/legal-holds", "/legal-holds", nil, http.StatusOK), "legal_holds")
		call(t, admin, "POST", "/erasure-requests", "/erasure-requests", map[string]string{"subject": oaHeld}, http.StatusConflict)
		call(t, admin, "DELETE", "/legal-holds/{subject}", "/legal-holds/"+oaHeld, nil, http.StatusNoContent)
		call(t, admin, "POST", "/erasure-requests", "/erasure-requests", map[string]string{"subject": oaHeld}, http.StatusAccepted)

		rule := call(t, admin, "POST", "/suppressions", "/suppressions", map[string]any{"detector": "brute_force", "app": "shop",
			"asn": 64500, "action": "lower", "severity": "low", "reason": "office network",
			"expires_at": env.now.Add(24 * time.Hour).Format(time.RFC3339)}, http.StatusCreated)
		nonEmpty(t, call(t, admin, "GET", "/suppressions", "/suppressions", nil, http.StatusOK), "suppressions")
		call(t, admin, "DELETE", "/suppressions/{id}", "/suppressions/"+rule["id"].(string), nil, http.StatusNoContent)
		call(t, admin, "DELETE", "/suppressions/{id}", "/suppressions/"+rule["id"].(string), nil, http.StatusNotFound)
		suppressed := call(t, admin, "GET", "/alerts", "/alerts?suppressed=true", nil, http.StatusOK)
		nonEmpty(t, suppressed, "alerts")

		// The actions above are on record; two a page makes a next page.
		a := call(t, admin, "GET", "/audit", "/audit?limit=2", nil, http.StatusOK)
		nonEmpty(t, a, "entries")
		next, _ := a["next"].(string)
		require.NotEmpty(t, next)
		call(t, admin, "GET", "/audit", "/audit?limit=2&cursor="+url.QueryEscape(next), nil, http.StatusOK)
	})

	t.Run("errors", func(t *testing.T) {
		e := call(t, admin, "GET", "/alerts", "/alerts?severity=urgent", nil, http.StatusBadRequest)
		require.Equal(t, "severity", e["field"])
		e = call(t, admin, "POST", "/alerts/{id}/status", "/alerts/"+oaAlertID(2)+"/status", map[string]string{"status": "closed"}, http.StatusBadRequest)
		require.Equal(t, "status", e["field"])
		call(t, admin, "GET", "/alerts/{id}", "/alerts/"+oaAlertID(9), nil, http.StatusNotFound)
		e = call(t, admin, "POST", "/suppressions", "/suppressions", map[string]any{"detector": "brute_force", "app": "shop",
			"action": "silence", "expires_at": env.now.Add(24 * time.Hour).Format(time.RFC3339)}, http.StatusBadRequest)
		require.Equal(t, "reason", e["field"])
		call(t, "", "GET", "/alerts", "/alerts", nil, http.StatusUnauthorized)
		call(t, env.viewer, "GET", "/audit", "/audit", nil, http.StatusForbidden)

		// A session whose password entry is old may not set a hold.
		csrf := newRandomString(32)
		id, err := env.s.h.auth.sessions.create(t.Context(), session{User: "adam", CSRF: csrf, Created: env.now,
			LastSeen: env.now, AuthAt: env.now.Add(-time.Hour)})
		require.NoError(t, err)
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/legal-holds",
			strings.NewReader(`{"subject":"`+oaHeld+`","reason":"litigation"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(csrfHeader, csrf)
		req.AddCookie(&http.Cookie{Name: env.s.h.auth.cookieName, Value: id})
		rec := httptest.NewRecorder()
		env.s.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), `"reauth_required":true`)
		spec.check(t, "POST", "/legal-holds", rec)
	})
	if t.Failed() {
		return // the coverage below would only repeat the failure
	}

	// Every GET operation was called successfully.
	doc, _ := loadOpenAPI(t)
	var missing []string
	for path, ops := range doc.Paths {
		if _, ok := ops["get"]; ok && !checked["GET "+path+" 200"] {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "GET operations of openapi.yaml the test does not call")
}
