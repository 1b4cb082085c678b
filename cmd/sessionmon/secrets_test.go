package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/sdk"
)

// rawDemoID matches the raw identifiers internal/demo pseudonymizes (user
// e-mails, device, session and token ids): none may reach a log.
var rawDemoID = regexp.MustCompile(`demo-(user|victim)-\d+@example\.com|demo-(access|anon|device|family|refresh|session|stuffed)-\d+|demo-key-admin`)

// randomSecret returns prefix and n random bytes, base64url.
func randomSecret(t *testing.T, prefix string, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// requireNoSecrets fails if logs hold any of secrets, or a raw demo id.
func requireNoSecrets(t *testing.T, logs string, secrets map[string]string) {
	t.Helper()
	for name, v := range secrets {
		require.NotEmpty(t, v, "secret %s", name)
		if i := strings.Index(logs, v); i >= 0 {
			line := logs[strings.LastIndex(logs[:i], "\n")+1:]
			line, _, _ = strings.Cut(line, "\n")
			t.Errorf("the logs hold %s: %s", name, strings.ReplaceAll(line, v, "<"+name+">"))
		}
	}
	if m := rawDemoID.FindString(logs); m != "" {
		t.Errorf("the logs hold the raw demo identifier %q", m)
	}
}

// dashboardClient is a browser on the dashboard: it keeps cookies and
// does not follow redirects.
type dashboardClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newDashboardClient(t *testing.T, base string) *dashboardClient {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &dashboardClient{t: t, base: base, c: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// csrfInput finds the CSRF token of a dashboard form.
var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// login loads the sign-in page and posts the form; it returns the status
// and the CSRF token of the form.
func (d *dashboardClient) login(user, password string) (int, string) {
	d.t.Helper()
	resp, err := d.c.Get(d.base + "/login")
	require.NoError(d.t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(d.t, err)
	require.Equal(d.t, http.StatusOK, resp.StatusCode, "GET /login")
	m := csrfInput.FindSubmatch(body)
	require.NotNil(d.t, m, "the sign-in form has a CSRF token")
	resp, err = d.c.PostForm(d.base+"/login", url.Values{"csrf_token": {string(m[1])}, "username": {user}, "password": {password}, "next": {"/alerts"}})
	require.NoError(d.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(m[1])
}

// cookies returns the values of the cookies the dashboard set.
func (d *dashboardClient) cookies() []string {
	u, err := url.Parse(d.base)
	require.NoError(d.t, err)
	var out []string
	for _, c := range d.c.Jar.Cookies(u) {
		out = append(out, c.Value)
	}
	return out
}

// waitDashboard waits until /readyz says the dashboard is up.
func waitDashboard(t *testing.T, httpAddr string) {
	t.Helper()
	poll.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"dashboard":"ok"`) {
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

// serveRun is sessionmon serve running in process.
type serveRun struct {
	cancel  context.CancelFunc
	done    chan int
	out     *syncBuffer
	errOut  *syncBuffer
	stopped bool
}

func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &serveRun{cancel: cancel, done: make(chan int, 1), out: &syncBuffer{}, errOut: &syncBuffer{}}
	go func() { r.done <- run(ctx, append([]string{"serve"}, args...), r.out, r.errOut) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels serve and waits for it; it returns everything it wrote.
func (r *serveRun) stop(t *testing.T) string {
	t.Helper()
	if !r.stopped {
		r.stopped = true
		r.cancel()
		select {
		case code := <-r.done:
			require.Equal(t, exitOK, code, "stderr:\n%s", r.errOut.String())
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop within 30 s of cancellation")
		}
	}
	return r.out.String() + r.errOut.String()
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newReceiver is a webhook receiver counting signed deliveries; it
// returns its URL.
func newReceiver(t *testing.T, delivered *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-signature") == "" {
			http.Error(w, "unsigned", http.StatusBadRequest)
			return
		}
		delivered.Add(1)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSecretsNeverLogged runs sessionmon serve --demo with debug logging
// and every secret it takes (webhook signing secret, a dashboard user's
// password, the dashboard's pseudonymization key, a NATS token), signs in
// to the dashboard, fails a sign-in with a wrong password that looks like
// a token, and waits for the demo's alerts to reach a webhook; then it
// scans everything serve wrote for the secrets, the session and CSRF
// cookies, the dashboard user's pseudonym and the demo's raw identifiers.
// A second run signs in as the demo admin (password made up in the data
// directory), and a migrate run with a wrong ClickHouse password checks
// that password stays out of error messages. A ClickHouse user with a
// password cannot be made on the 18.16 test server (no CREATE USER), so
// the serve runs use ClickHouse without one.
func TestSecretsNeverLogged(t *testing.T) {
	dsn := chtest.DSN(t)
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	webhookSecret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	password := randomSecret(t, "pw-", 18)
	wrongPassword := "ghp_" + hex.EncodeToString([]byte(randomSecret(t, "", 18)))[:36]
	pseudonymKey := randomSecret(t, "pk-", 32)
	natsToken := randomSecret(t, "nt-", 24)
	recordKey := randomSecret(t, "rk-", 32)
	t.Setenv("SESSIONMON_DASHBOARD_PSEUDONYM_KEY", pseudonymKey)
	t.Setenv("SESSIONMON_DASHBOARD_RECORD_KEY", recordKey)
	t.Setenv("SESSIONMON_NATS_TOKEN", natsToken)

	var delivered atomic.Int64
	receiver := newReceiver(t, &delivered)
	hash, err := dashboard.HashPassword(password)
	require.NoError(t, err)
	dataDir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "sessionmon.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`notify:
  webhooks:
    - name: siem
      url: %s
      secret: %s
      min_severity: high
      allow_http: true
      allow_private: true
dashboard:
  users:
    - {name: secops, role: admin, password_hash: %q}
`, receiver, webhookSecret, hash)), 0o600))

	httpAddr := freeAddr(t)
	srv := startServe(t, "--config", cfgFile, "--data-dir", dataDir, "--nats-listen", freeAddr(t), "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr,
		"--clickhouse-dsn", dsn, "--log-level", "debug", "--ingest-batch-age", "100ms",
		"--demo", "--demo-users", "20", "--demo-rate", "2000")
	waitDashboard(t, httpAddr)
	browser := newDashboardClient(t, "http://"+httpAddr)
	code, loginCSRF := browser.login("secops", password)
	require.Equal(t, http.StatusSeeOther, code, "sign-in with the right password")
	sessionCookies := browser.cookies()
	require.NotEmpty(t, sessionCookies, "a session cookie")
	resp, err := browser.c.Get(browser.base + "/alerts")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /alerts signed in")
	sessionCSRF := csrfInput.FindSubmatch(page)
	require.NotNil(t, sessionCSRF, "the signed-in page has the session's CSRF token")
	code, _ = newDashboardClient(t, "http://"+httpAddr).login("secops", wrongPassword)
	require.Equal(t, http.StatusUnauthorized, code, "sign-in with a wrong password")
	poll.CheckFor(t, 90*time.Second, 200*time.Millisecond, func() error {
		if n := delivered.Load(); n < 1 {
			return errors.New("no alert delivered to the webhook yet")
		}
		return nil
	})
	logs := srv.stop(t)
	require.Contains(t, logs, "signed in", "the run logged the sign-in")
	require.Contains(t, logs, "webhooks configured", "the run read the webhook")

	dashPZ, err := sdk.NewPseudonymizer("dashboard", []byte(pseudonymKey))
	require.NoError(t, err)
	secrets := map[string]string{
		"webhook secret":           webhookSecret,
		"webhook secret key":       strings.TrimPrefix(webhookSecret, "whsec_"),
		"dashboard password":       password,
		"wrong password":           wrongPassword,
		"dashboard pseudonym key":  pseudonymKey,
		"dashboard record key":     recordKey,
		"nats token":               natsToken,
		"password hash":            hash,
		"login csrf token":         loginCSRF,
		"session csrf token":       string(sessionCSRF[1]),
		"dashboard user pseudonym": dashPZ.Subject("secops").String(),
		"wrong password pseudonym": dashPZ.Subject(wrongPassword).String(),
	}
	for i, c := range sessionCookies {
		secrets[fmt.Sprintf("cookie %d", i)] = c
	}
	requireNoSecrets(t, logs, secrets)

	// The demo admin: its password is made up in the data directory when
	// no user is configured.
	httpAddr = freeAddr(t)
	srv = startServe(t, "--data-dir", dataDir, "--nats-listen", freeAddr(t), "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr,
		"--clickhouse-dsn", dsn, "--log-level", "debug", "--demo", "--demo-users", "20", "--demo-rate", "2000")
	waitDashboard(t, httpAddr)
	adminPassword, err := os.ReadFile(filepath.Join(dataDir, demoAdminPasswordFile))
	require.NoError(t, err)
	admin := newDashboardClient(t, "http://"+httpAddr)
	code, _ = admin.login(demoAdminUser, strings.TrimSpace(string(adminPassword)))
	require.Equal(t, http.StatusSeeOther, code, "sign-in as the demo admin")
	code, _ = newDashboardClient(t, "http://"+httpAddr).login(demoAdminUser, wrongPassword)
	require.Equal(t, http.StatusUnauthorized, code)
	logs = srv.stop(t)
	require.Contains(t, logs, demoAdminPasswordFile, "the run made the demo admin")
	secrets = map[string]string{
		"demo admin password":     strings.TrimSpace(string(adminPassword)),
		"wrong password":          wrongPassword,
		"dashboard pseudonym key": pseudonymKey,
		"dashboard record key":    recordKey,
		"nats token":              natsToken,
	}
	for i, c := range admin.cookies() {
		secrets[fmt.Sprintf("admin cookie %d", i)] = c
	}
	requireNoSecrets(t, logs, secrets)

	// A ClickHouse password the server refuses: the error says so without
	// the password (nor the DSN holding it).
	chPassword := randomSecret(t, "ch-", 18)
	t.Setenv("SESSIONMON_CLICKHOUSE_PASSWORD", chPassword)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	code, out, errOut := runCmd(t, ctx, "migrate", "--clickhouse-dsn", dsn, "--log-level", "debug")
	require.NotEqual(t, exitOK, code, "a wrong password must fail: %s%s", out, errOut)
	requireNoSecrets(t, out+errOut, map[string]string{"clickhouse password": chPassword, "escaped clickhouse password": url.QueryEscape(chPassword)})
}
