package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// suppressionKV opens the rules bucket of env's NATS server.
func (env *pagesEnv) suppressionKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	kv, err := env.s.h.suppressionBucket(t.Context())
	require.NoError(t, err)
	return kv
}

// storedRules returns the rules in the bucket, by id.
func (env *pagesEnv) storedRules(t *testing.T) map[string]schemas.SuppressionRule {
	t.Helper()
	kv := env.suppressionKV(t)
	out := map[string]schemas.SuppressionRule{}
	keys, err := kv.ListKeys(t.Context())
	require.NoError(t, err)
	for k := range keys.Keys() {
		e, err := kv.Get(t.Context(), k)
		require.NoError(t, err)
		r, ok := decodeRule(k, e.Value())
		if ok {
			out[k] = r
		}
	}
	return out
}

// auditActions returns "action target outcome" of every audit row.
func (env *pagesEnv) auditActions(t *testing.T) []string {
	t.Helper()
	p, err := env.store.AuditLog(t.Context(), 100, "")
	require.NoError(t, err)
	var out []string
	for _, r := range p.Rows {
		out = append(out, r.Action+" "+r.Target+" "+r.Outcome+" "+r.Actor)
	}
	return out
}

func TestSuppressSimilarFromTheAlertPage(t *testing.T) {
	env := newPagesEnv(t)
	env.seed(t, 1)
	id := testAlertID(0) // impossible_travel, high, app shop

	page := env.get(t, "/alerts/"+id).Body.String()
	require.Contains(t, page, "Suppress similar")
	require.Contains(t, page, `name="app" value="shop" checked`)
	require.Contains(t, page, `<option value="medium">`, "lower offers the severities below the alert's")
	require.NotContains(t, page, `<option value="high">high</option></select></label>`)

	expires := env.now.Add(48 * time.Hour).UTC().Format("2006-01-02T15:04")
	form := url.Values{"detector": {"impossible_travel"}, "app": {"shop"}, "action": {"lower"}, "severity": {"low"},
		"reason": {"VPN exit nodes " + hostile}, "expires_at": {expires}}
	rec := env.send(t, http.MethodPost, "/suppressions", form)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, "/suppressions", rec.Header().Get("Location"))

	rules := env.storedRules(t)
	require.Len(t, rules, 1)
	var r schemas.SuppressionRule
	for _, v := range rules {
		r = v
	}
	require.Equal(t, "anna", r.Owner)
	require.Equal(t, schemas.SuppressLower, r.Action)
	require.Equal(t, schemas.SeverityLow, r.Severity)
	require.Equal(t, "shop", r.App)
	require.Empty(t, r.Subject)
	require.Equal(t, expires, r.ExpiresAt.UTC().Format("2006-01-02T15:04"))
	require.WithinDuration(t, env.now, r.CreatedAt.Time, time.Minute)

	list := env.get(t, "/suppressions").Body.String()
	require.Contains(t, list, "VPN exit nodes &lt;script&gt;")
	require.Contains(t, list, `/suppressions/`+r.ID+`/delete`)
	require.Contains(t, env.auditActions(t), "suppression.create suppression "+r.ID+" success anna")

	// Delete through the list's button.
	rec = env.send(t, http.MethodPost, "/suppressions/"+r.ID+"/delete", url.Values{})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Empty(t, env.storedRules(t))
	require.Contains(t, env.auditActions(t), "suppression.delete suppression "+r.ID+" success anna")
	rec = env.send(t, http.MethodPost, "/suppressions/"+r.ID+"/delete", url.Values{})
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestSuppressionValidationNamesTheField(t *testing.T) {
	env := newPagesEnv(t)
	ok := func() map[string]any {
		return map[string]any{"detector": "brute_force", "app": "shop", "action": "silence", "reason": "known scanner",
			"expires_at": env.now.Add(time.Hour).Format(time.RFC3339)}
	}
	for _, tc := range []struct {
		name  string
		mod   func(m map[string]any)
		field string
	}{
		{name: "detector/missing", mod: func(m map[string]any) { delete(m, "detector") }, field: "detector"},
		{name: "detector/unknown", mod: func(m map[string]any) { m["detector"] = "no_such_detector" }, field: "detector"},
		{name: "matchers/none", mod: func(m map[string]any) { delete(m, "app") }, field: "matchers"},
		{name: "ip_prefix/host bits", mod: func(m map[string]any) { m["ip_prefix"] = "203.0.113.9/24" }, field: "ip_prefix"},
		{name: "subject/not a pseudonym", mod: func(m map[string]any) { m["subject"] = "alice@example.com" }, field: "subject"},
		{name: "action/unknown", mod: func(m map[string]any) { m["action"] = "drop" }, field: "action"},
		{name: "severity/lower to critical", mod: func(m map[string]any) { m["action"], m["severity"] = "lower", "critical" }, field: "severity"},
		{name: "reason/missing", mod: func(m map[string]any) { m["reason"] = " " }, field: "reason"},
		{name: "reason/too long", mod: func(m map[string]any) { m["reason"] = strings.Repeat("x", 501) }, field: "reason"},
		{name: "expires_at/missing", mod: func(m map[string]any) { delete(m, "expires_at") }, field: "expires_at"},
		{name: "expires_at/past", mod: func(m map[string]any) { m["expires_at"] = env.now.Add(-time.Hour).Format(time.RFC3339) }, field: "expires_at"},
		{name: "expires_at/beyond 90 days", mod: func(m map[string]any) {
			m["expires_at"] = env.now.Add(91 * 24 * time.Hour).Format(time.RFC3339)
		}, field: "expires_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ok()
			tc.mod(m)
			rec := env.sendJSON(t, http.MethodPost, "/api/v1/suppressions", m)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			var e struct{ Field string }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			require.Equal(t, tc.field, e.Field, rec.Body.String())
		})
	}
	require.Empty(t, env.storedRules(t), "nothing invalid was stored")
	rec := env.sendJSON(t, http.MethodPost, "/api/v1/suppressions", ok())
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var out suppressionView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.True(t, strings.HasPrefix(out.Owner, "token:"), out.Owner)
	require.True(t, out.Active)
	require.Len(t, env.storedRules(t), 1)
}

// The list separates active and expired rules and leaves out what detect
// would ignore (shown on the page as invalid).
func TestSuppressionListActiveExpiredInvalid(t *testing.T) {
	env := newPagesEnv(t)
	kv := env.suppressionKV(t)
	put := func(r schemas.SuppressionRule) {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		_, err = kv.Put(t.Context(), r.ID, b)
		require.NoError(t, err)
	}
	base := schemas.SuppressionRule{Detector: "*", ASN: 64500, Action: schemas.SuppressSilence, Owner: "adam", Reason: "scanner"}
	active, expired := base, base
	active.ID, active.CreatedAt, active.ExpiresAt = "active01", schemas.At(env.now.Add(-time.Hour)), schemas.At(env.now.Add(time.Hour))
	expired.ID, expired.CreatedAt, expired.ExpiresAt = "expired1", schemas.At(env.now.Add(-48*time.Hour)), schemas.At(env.now.Add(-time.Hour))
	put(active)
	put(expired)
	_, err := kv.Put(t.Context(), "forged01", []byte(`{"id":"forged01","detector":"*","action":"silence"}`))
	require.NoError(t, err)

	rec := env.get(t, "/api/v1/suppressions")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out struct{ Suppressions []suppressionView }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.Len(t, out.Suppressions, 2)
	require.Equal(t, "active01", out.Suppressions[0].ID)
	require.True(t, out.Suppressions[0].Active)
	require.Equal(t, "expired1", out.Suppressions[1].ID)
	require.False(t, out.Suppressions[1].Active)

	page := env.get(t, "/suppressions").Body.String()
	require.Contains(t, page, "Invalid values")
	require.Contains(t, page, "<code>forged01</code>")
	require.Less(t, strings.Index(page, "active01"), strings.Index(page, "<h2>Expired</h2>"))
	require.Greater(t, strings.Index(page, "expired1"), strings.Index(page, "<h2>Expired</h2>"))

	// The forged value can be deleted like a rule.
	rec = env.send(t, http.MethodDelete, "/api/v1/suppressions/forged01", nil)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.NotContains(t, env.get(t, "/suppressions").Body.String(), "forged01")
}

// Suppressed alerts are marked on the list and the alert page, and the
// list and the API filter and count them.
func TestSuppressedAlertsAreMarkedAndFiltered(t *testing.T) {
	env := newPagesEnv(t)
	rows := env.seed(t, 3)
	rows[1].ID, rows[2].ID = testAlertID(10), testAlertID(11)
	rows[1].SuppressedBy, rows[1].SuppressionAction = "rule0001", "silence"
	rows[2].SuppressedBy, rows[2].SuppressionAction, rows[2].OriginalSeverity = "rule0002", "lower", "high"
	rows[2].Severity, rows[2].SeverityRank = "low", 1
	require.NoError(t, env.store.InsertAlerts(t.Context(), []chstore.AlertRow{rows[1], rows[2]}))

	ids := func(query string) []string {
		t.Helper()
		rec := env.get(t, "/api/v1/alerts?"+query)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var out alertListJSON
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
		var got []string
		for _, a := range out.Alerts {
			got = append(got, a.ID)
			if a.ID == testAlertID(11) {
				require.Equal(t, &schemas.AlertSuppression{Rule: "rule0002", Action: schemas.SuppressLower,
					OriginalSeverity: schemas.SeverityHigh}, a.Suppression)
			}
		}
		return got
	}
	require.ElementsMatch(t, []string{testAlertID(10), testAlertID(11)}, ids("suppressed=true"))
	require.ElementsMatch(t, []string{testAlertID(0), testAlertID(1), testAlertID(2)}, ids("suppressed=false"))
	require.Len(t, ids(""), 5)
	rec := env.get(t, "/api/v1/alerts?suppressed=maybe")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"suppressed"`)

	var o overviewJSON
	rec = env.get(t, "/api/v1/overview")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &o))
	require.Equal(t, uint64(2), o.SuppressedAlerts)
	require.Contains(t, env.get(t, "/").Body.String(), `<a href="/alerts?suppressed=true">2 suppressed</a>`)

	list := env.get(t, "/alerts?suppressed=true").Body.String()
	require.Contains(t, list, ">silenced</span>")
	require.Contains(t, list, ">lowered</span>")
	require.Contains(t, list, `<option value="true" selected>`)
	show := env.get(t, "/alerts/"+testAlertID(11)).Body.String()
	require.Contains(t, show, "lowered from")
	require.Contains(t, show, "rule0002")
}

// sendJSON sends body as JSON to an API path with the admin token.
func (env *pagesEnv) sendJSON(t *testing.T, method, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req := httptest.NewRequestWithContext(t.Context(), method, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+env.bearer)
	rec := httptest.NewRecorder()
	env.s.Handler().ServeHTTP(rec, req)
	return rec
}

// seedGoldenSuppressions stores an active and an expired rule for the
// golden suppressions page.
func seedGoldenSuppressions(t *testing.T, env *pagesEnv) {
	t.Helper()
	kv := env.suppressionKV(t)
	for _, r := range []schemas.SuppressionRule{
		{ID: "0000golden000001", Detector: "brute_force", App: "shop", IPPrefix: "203.0.113.0/24", Action: schemas.SuppressLower,
			Severity: schemas.SeverityLow, Owner: "anna", Reason: "office network " + hostile,
			CreatedAt: schemas.At(env.now.Add(-time.Hour)), ExpiresAt: schemas.At(env.now.Add(7 * 24 * time.Hour))},
		{ID: "0000golden000002", Detector: "*", Subject: "k1:SubjectAAAA", Action: schemas.SuppressSilence,
			Owner: "adam", Reason: "test account", CreatedAt: schemas.At(env.now.Add(-72 * time.Hour)),
			ExpiresAt: schemas.At(env.now.Add(-24 * time.Hour))},
	} {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		_, err = kv.Put(t.Context(), r.ID, b)
		require.NoError(t, err)
	}
}
