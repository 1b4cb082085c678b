package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// TestServeSuppressionStopsTheNextMatchingAlert runs `sessionmon serve`
// (embedded NATS, real ClickHouse, a webhook, the dashboard; no demo
// traffic), signs in to the dashboard as a configured admin, makes an API
// token, and shows that a suppression rule posted to /api/v1/suppressions
// while serve runs silences the next matching alert within 10 s, without a
// restart: the alert is stored marked with the rule and reaches no webhook,
// while an alert of another app, raised at the same time, is delivered
// unmarked.
func TestServeSuppressionStopsTheNextMatchingAlert(t *testing.T) {
	t.Parallel()
	hook := newAlertHook(t)
	p := startServeWithAdmin(t, fmt.Sprintf(`notify:
  webhooks:
    - name: siem
      url: %s
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
      min_severity: low
      allow_http: true
      allow_private: true
`, hook.url), "ingest", "detect", "notify", "dashboard")
	base, natsAddr, dataDir, api := p.base, p.natsAddr, p.dataDir, p.api

	// Apps publish with the credentials serve wrote for them.
	creds := natsauth.CredsFile(natsauth.Dir(dataDir), natsauth.AppUser)
	connect := func(app string) *sdk.Client {
		c, err := sdk.Connect("nats://"+natsAddr, sdk.WithApp(app), sdk.WithCredentialsFile(creds), sdk.WithInboxPrefix(natsauth.AppInboxPrefix))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	shop, blog := connect("shop"), connect("blog")
	pseudo, err := sdk.NewPseudonymizer("k1", []byte("serve-suppression-test-key-0123456789"))
	require.NoError(t, err)
	// burst publishes 12 failed logins for one subject from one network:
	// one brute_force alert (threshold 10 within 10 minutes).
	burst := func(c *sdk.Client, who, network string) string {
		t.Helper()
		subject := pseudo.Subject(who)
		for range 12 {
			require.NoError(t, c.Publish(t.Context(), &sdk.Event{Type: schemas.LoginFailed, Subject: subject, Reason: "bad_password",
				Client: &sdk.ClientInfo{IPPrefix: netip.MustParsePrefix(network), ASN: 64500, Country: "DE"}}))
		}
		return subject.String()
	}

	// Before any rule: shop's brute force reaches the webhook unmarked.
	subjectA := burst(shop, "alice", "198.51.100.0/24")
	alertA := hook.wait(t, 30*time.Second, "shop", subjectA)
	require.Nil(t, alertA.Suppression)

	posted := time.Now()
	status, body := api(http.MethodPost, "/api/v1/suppressions", map[string]any{"detector": "brute_force", "app": "shop", "action": "silence",
		"reason": "load test of the shop's login", "expires_at": posted.Add(24 * time.Hour).UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, status, string(body))
	var rule struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &rule))
	require.NotEmpty(t, rule.ID)

	// At once: the same attack on another subject of shop, and on a
	// subject of blog, which the rule does not name.
	subjectB := burst(shop, "bob", "192.0.2.0/24")
	subjectC := burst(blog, "carol", "203.0.113.0/24")

	// Within 10 s of the POST, B's alert is stored marked with the rule.
	var silenced storedAlert
	poll.CheckFor(t, time.Until(posted.Add(10*time.Second)), 100*time.Millisecond, func() error {
		var err error
		silenced, err = findStoredAlert(api, "suppressed=true&app=shop&subject="+url.QueryEscape(subjectB))
		return err
	})
	require.Less(t, time.Since(posted), 10*time.Second, "the next matching alert is marked within 10 s of the rule")
	t.Logf("B's alert stored marked %s after the rule was posted", time.Since(posted).Round(time.Millisecond))
	require.Equal(t, &schemas.AlertSuppression{Rule: rule.ID, Action: schemas.SuppressSilence}, silenced.Suppression)
	require.Equal(t, "medium", silenced.Severity, "silence keeps the severity")

	// Blog's alert is delivered and stored unmarked.
	alertC := hook.wait(t, 20*time.Second, "blog", subjectC)
	require.Nil(t, alertC.Suppression)
	var other storedAlert
	poll.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		var err error
		other, err = findStoredAlert(api, "suppressed=false&app=blog&subject="+url.QueryEscape(subjectC))
		return err
	})
	require.Equal(t, alertC.ID, other.ID)

	// The notifier settled B's alert without sending it: it counts one
	// silenced alert, and the receiver never saw B.
	poll.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		n, err := metricValue(base, `sessionmon_notify_silenced_total{webhook="siem"}`)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%v alerts silenced by the notifier", n)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	_, delivered := hook.byID(silenced.ID)
	require.False(t, delivered, "the silenced alert reached the webhook")
	require.Empty(t, hook.about("shop", subjectB), "no brute_force alert of subject B reached the webhook")
	require.Len(t, hook.about("shop", subjectA), 1, "A's alert was delivered once")
}

// alertHook is a webhook receiver that records the alerts it receives
// (the json format: the alert as published).
type alertHook struct {
	url string
	mu  sync.Mutex
	// alerts by id.
	alerts map[string]schemas.Alert
}

func newAlertHook(t *testing.T) *alertHook {
	t.Helper()
	h := &alertHook{alerts: map[string]schemas.Alert{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a schemas.Alert
		if r.Header.Get("webhook-signature") == "" || json.NewDecoder(r.Body).Decode(&a) != nil || a.ID == "" {
			http.Error(w, "want a signed alert", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.alerts[a.ID] = a
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *alertHook) byID(id string) (schemas.Alert, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.alerts[id]
	return a, ok
}

// about returns the brute_force alerts received about subject of app.
func (h *alertHook) about(app, subject string) []schemas.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []schemas.Alert
	for _, a := range h.alerts {
		if a.Detector == "brute_force" && a.App == app && a.Subject == subject {
			out = append(out, a)
		}
	}
	return out
}

// wait waits up to total for a brute_force alert about subject of app and
// returns it.
func (h *alertHook) wait(t *testing.T, total time.Duration, app, subject string) schemas.Alert {
	t.Helper()
	var a schemas.Alert
	poll.CheckFor(t, total, 50*time.Millisecond, func() error {
		got := h.about(app, subject)
		if len(got) == 0 {
			return fmt.Errorf("no brute_force alert of %s delivered", app)
		}
		a = got[0]
		return nil
	})
	return a
}

// apiFunc calls the dashboard API with a bearer token and returns the
// status and body.
type apiFunc func(method, path string, body any) (int, []byte)

// dashboardAPI signs in to the dashboard at base as user (the sign-in
// form, with its pre-session CSRF token), makes an API token on the tokens
// page, and returns a caller of /api/v1 with that token.
func dashboardAPI(t *testing.T, base, user, password string) apiFunc {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfField := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	page := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, body)
		require.NoError(t, err)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := browser.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	csrf := func(html string) string {
		t.Helper()
		m := csrfField.FindStringSubmatch(html)
		require.NotNil(t, m, "no csrf_token on the page")
		return m[1]
	}

	status, html := page(http.MethodGet, "/login", nil)
	require.Equal(t, http.StatusOK, status, html)
	status, html = page(http.MethodPost, "/login", url.Values{"csrf_token": {csrf(html)}, "username": {user}, "password": {password}, "next": {"/tokens"}})
	require.Equal(t, http.StatusSeeOther, status, html)
	status, html = page(http.MethodGet, "/tokens", nil)
	require.Equal(t, http.StatusOK, status, html)
	status, html = page(http.MethodPost, "/tokens", url.Values{"csrf_token": {csrf(html)}, "name": {"test"}, "role": {"analyst"}, "expires_days": {"1"}})
	require.Equal(t, http.StatusCreated, status, html)
	m := regexp.MustCompile(`<code class="secret">(` + regexp.QuoteMeta(dashboard.TokenPrefix) + `[^<]+)</code>`).FindStringSubmatch(html)
	require.NotNil(t, m, "the new token is shown")
	token := m[1]

	client := &http.Client{Timeout: 30 * time.Second}
	return func(method, path string, body any) (int, []byte) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			r = strings.NewReader(string(b))
		}
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, r)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
}

// storedAlert is an alert as GET /api/v1/alerts lists it.
type storedAlert struct {
	ID          string                    `json:"id"`
	Detector    string                    `json:"detector"`
	Severity    string                    `json:"severity"`
	App         string                    `json:"app"`
	Subject     string                    `json:"subject"`
	Suppression *schemas.AlertSuppression `json:"suppression"`
}

// findStoredAlert returns the one brute_force alert GET /api/v1/alerts
// lists with the query, or an error when there is none yet.
func findStoredAlert(api apiFunc, query string) (storedAlert, error) {
	status, body := api(http.MethodGet, "/api/v1/alerts?detector=brute_force&"+query, nil)
	if status != http.StatusOK {
		return storedAlert{}, fmt.Errorf("alerts: %d %s", status, body)
	}
	var page struct {
		Alerts []storedAlert `json:"alerts"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return storedAlert{}, err
	}
	switch len(page.Alerts) {
	case 0:
		return storedAlert{}, fmt.Errorf("no alert with %s stored yet", query)
	case 1:
		return page.Alerts[0], nil
	}
	return storedAlert{}, fmt.Errorf("%d alerts with %s", len(page.Alerts), query)
}

// metricValue reads the sample series (name and labels, as written) from
// /metrics at base; a series not yet written counts 0.
func metricValue(base, series string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, sc.Err()
}
