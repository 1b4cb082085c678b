package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
)

// The password of every user of authEnv; their hashes are cheap argon2id
// so the tests stay fast (production parameters are tested in
// password_test.go).
const testPassword = "correct horse battery staple"

// authEnv is a dashboard on a real embedded NATS server, optionally with
// a ClickHouse store, and a clock the test moves.
type authEnv struct {
	s     *Server
	clock *testClock
	js    jetstream.JetStream
}

type envOption func(*Config, *Deps)

func withStore(s *chstore.Store) envOption { return func(_ *Config, d *Deps) { d.Store = s } }

func newAuthEnv(t *testing.T, opts ...envOption) *authEnv {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	return newAuthEnvOn(t, js, opts...)
}

// newAuthEnvOn is newAuthEnv on js: several dashboards sharing one NATS.
func newAuthEnvOn(t *testing.T, js jetstream.JetStream, opts ...envOption) *authEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Users = []User{
		{Name: "alice", Role: RoleAdmin, PasswordHash: hashPasswordWith(testPassword, 8, 1, 1)},
		{Name: "bob", Role: RoleViewer, PasswordHash: hashPasswordWith(testPassword, 8, 1, 1)},
	}
	clock := &testClock{}
	deps := Deps{JS: js, Now: clock.nowFunc()}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	s, err := New(t.Context(), cfg, deps)
	require.NoError(t, err)
	return &authEnv{s: s, clock: clock, js: js}
}

// browser sends requests with the cookies the dashboard set, as a browser
// does (an http.CookieJar would not send Secure cookies over http).
type browser struct {
	t       *testing.T
	env     *authEnv
	cookies map[string]string
	// header is added to every request.
	header http.Header
}

func (env *authEnv) browser(t *testing.T) *browser {
	return &browser{t: t, env: env, cookies: map[string]string{}, header: http.Header{}}
}

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(b.t.Context(), 5*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	for n, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	rec := httptest.NewRecorder()
	b.env.s.Handler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return rec
}

// login signs in through the form and returns the answer to the POST.
func (b *browser) login(user, password string) *httptest.ResponseRecorder {
	b.t.Helper()
	rec := b.do(http.MethodGet, "/login", nil)
	require.Equal(b.t, http.StatusOK, rec.Code, rec.Body.String())
	token := b.cookies[b.env.s.h.auth.loginCookieName]
	require.NotEmpty(b.t, token, "GET /login sets the pre-session CSRF cookie")
	require.Contains(b.t, rec.Body.String(), `value="`+token+`"`, "the form carries the pre-session CSRF token")
	return b.do(http.MethodPost, "/login", url.Values{"csrf_token": {token}, "username": {user}, "password": {password}, "next": {"/alerts"}})
}

func (b *browser) sessionID() string { return b.cookies[b.env.s.h.auth.cookieName] }

// csrf returns the session's CSRF token from the store.
func (b *browser) csrf() string {
	b.t.Helper()
	s, err := b.env.s.h.auth.sessions.get(b.t.Context(), b.sessionID())
	require.NoError(b.t, err)
	return s.CSRF
}

func TestLoginIssuesANewSessionID(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	// A session id the server never issued, planted by an attacker.
	planted := newRandomString(sessionIDBytes)
	b.cookies[env.s.h.auth.cookieName] = planted

	rec := b.login("alice", testPassword)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	require.Equal(t, "/alerts", rec.Header().Get("Location"))
	first := b.sessionID()
	require.NotEmpty(t, first)
	require.NotEqual(t, planted, first, "a planted session id is never adopted")
	require.Len(t, first, sessionIDLen)
	_, err := env.s.h.auth.sessions.get(t.Context(), planted)
	require.ErrorIs(t, err, errNoSession)

	// Signing in again from a signed-in browser (a sign-in form opened
	// before) ends the old session.
	delete(b.cookies, env.s.h.auth.cookieName)
	b.do(http.MethodGet, "/login", nil)
	b.cookies[env.s.h.auth.cookieName] = first
	rec = b.do(http.MethodPost, "/login", url.Values{"csrf_token": {b.cookies[env.s.h.auth.loginCookieName]},
		"username": {"alice"}, "password": {testPassword}})
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.NotEqual(t, first, b.sessionID())
	_, err = env.s.h.auth.sessions.get(t.Context(), first)
	require.ErrorIs(t, err, errNoSession, "the previous session was ended")

	// The bucket holds the SHA-256 of the id, never the id.
	keys, err := env.s.h.auth.sessions.kv.Keys(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{sessionKey(b.sessionID())}, keys)
	require.NotContains(t, keys, b.sessionID())
}

func TestSessionCookieAttributes(t *testing.T) {
	tests := []struct {
		name       string
		insecure   bool
		wantName   string
		wantSecure bool
	}{
		{name: "production", wantName: "__Host-sessionmon", wantSecure: true},
		{name: "insecure dev cookies", insecure: true, wantName: "sessionmon", wantSecure: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t, func(c *Config, _ *Deps) { c.InsecureDevCookies = tt.insecure })
			rec := env.browser(t).login("alice", testPassword)
			require.Equal(t, http.StatusSeeOther, rec.Code)
			var raw string
			for _, line := range rec.Header().Values("Set-Cookie") {
				if strings.HasPrefix(line, tt.wantName+"=") {
					raw = line
				}
			}
			require.NotEmpty(t, raw, "Set-Cookie of %s in %v", tt.wantName, rec.Header().Values("Set-Cookie"))
			c, err := http.ParseSetCookie(raw)
			require.NoError(t, err)
			require.Equal(t, tt.wantName, c.Name)
			require.Equal(t, tt.wantSecure, c.Secure)
			require.True(t, c.HttpOnly)
			require.Equal(t, http.SameSiteStrictMode, c.SameSite)
			require.Equal(t, "/", c.Path)
			require.Empty(t, c.Domain)
			require.NotContains(t, strings.ToLower(raw), "domain=")
		})
	}
}

func TestInsecureDevCookiesOnlyOnLoopback(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.0.2.10:8080", "[::]:8080"} {
		cfg := DefaultConfig()
		cfg.Addr, cfg.InsecureDevCookies = addr, true
		_, err := New(t.Context(), cfg, Deps{JS: js})
		require.ErrorContains(t, err, "insecure-dev-cookies", addr)
	}
	for _, addr := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		cfg := DefaultConfig()
		cfg.Addr, cfg.InsecureDevCookies = addr, true
		_, err := New(t.Context(), cfg, Deps{JS: js})
		require.NoError(t, err, addr)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	require.Equal(t, http.StatusSeeOther, b.login("bob", testPassword).Code)
	sid := b.sessionID()
	require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/reauth", nil).Code)

	// Without the CSRF token, logout is refused and the session lives on.
	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/logout", url.Values{}).Code)
	rec := b.do(http.MethodPost, "/logout", url.Values{"csrf_token": {b.csrf()}})
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, "/login", rec.Header().Get("Location"))
	require.Empty(t, b.sessionID(), "the cookie is cleared")

	// The old cookie, replayed, is refused: the session is gone.
	_, err := env.s.h.auth.sessions.get(t.Context(), sid)
	require.ErrorIs(t, err, errNoSession)
	b.cookies[env.s.h.auth.cookieName] = sid
	rec = b.do(http.MethodGet, "/reauth", nil)
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.True(t, strings.HasPrefix(rec.Header().Get("Location"), "/login"), rec.Header().Get("Location"))
}

func TestLoginCSRF(t *testing.T) {
	env := newAuthEnv(t)
	t.Run("no pre-session token", func(t *testing.T) {
		b := env.browser(t)
		rec := b.do(http.MethodPost, "/login", url.Values{"username": {"alice"}, "password": {testPassword}})
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Contains(t, rec.Body.String(), "csrf_token")
		require.Empty(t, b.sessionID())
	})
	t.Run("token not matching its cookie", func(t *testing.T) {
		b := env.browser(t)
		b.do(http.MethodGet, "/login", nil)
		rec := b.do(http.MethodPost, "/login", url.Values{"csrf_token": {newRandomString(32)}, "username": {"alice"}, "password": {testPassword}})
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Empty(t, b.sessionID())
	})
	t.Run("cross-site", func(t *testing.T) {
		b := env.browser(t)
		b.header.Set("Sec-Fetch-Site", "cross-site")
		rec := b.login("alice", testPassword)
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Empty(t, b.sessionID())
	})
}

func TestLoginRateLimit(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	// Failures for an existing and a missing user look the same.
	known := b.login("alice", "wrong password 1")
	unknown := b.login("mallory", "wrong password 1")
	require.Equal(t, http.StatusUnauthorized, known.Code)
	require.Equal(t, known.Code, unknown.Code)
	require.Contains(t, known.Body.String(), msgBadCredentials)
	require.Contains(t, unknown.Body.String(), msgBadCredentials)

	for i := 2; i <= loginFailsPerUser; i++ {
		require.Equal(t, http.StatusUnauthorized, b.login("alice", "wrong password "+strconv.Itoa(i)).Code)
	}
	// Over the limit: refused even with the right password.
	rec := b.login("alice", testPassword)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After: %q", rec.Header().Get("Retry-After"))
	require.Greater(t, secs, 0)
	require.LessOrEqual(t, secs, int(loginWindow/time.Second))
	require.Empty(t, b.sessionID())
	// Another user from the same source is not locked out by alice's failures.
	require.Equal(t, http.StatusSeeOther, b.login("bob", testPassword).Code)

	// The window passes: alice may sign in again.
	env.clock.advance(loginWindow)
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
}

func TestSourceRateLimit(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	// Credential stuffing: many names, one source.
	for i := range loginFailsPerIP {
		require.Equal(t, http.StatusUnauthorized, b.login("user"+strconv.Itoa(i), "guess").Code)
	}
	rec := b.login("bob", testPassword)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	cases := map[string]*httptest.ResponseRecorder{
		"login page":       b.do(http.MethodGet, "/login", nil),
		"redirect":         b.do(http.MethodGet, "/alerts", nil),
		"not found":        b.do(http.MethodGet, "/no-such-page", nil),
		"api 401":          b.do(http.MethodGet, "/api/v1/alerts", nil),
		"csrf 403":         b.do(http.MethodPost, "/login", url.Values{}),
		"static asset 404": b.do(http.MethodGet, "/static/no-such-file.css", nil),
	}
	for name, rec := range cases {
		h := rec.Header()
		require.Equal(t, contentSecurityPolicy, h.Get("Content-Security-Policy"), name)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), name)
		require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), name)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), name)
		require.Equal(t, "same-origin", h.Get("Cross-Origin-Opener-Policy"), name)
		require.Len(t, h.Get("X-Request-Id"), 24, name)
		require.Empty(t, h.Get("Strict-Transport-Security"), "%s: no HSTS without TLS", name)
		if name != "static asset 404" {
			require.Equal(t, "no-store", h.Get("Cache-Control"), name)
		}
	}
	require.NotEqual(t, cases["login page"].Header().Get("X-Request-Id"), cases["redirect"].Header().Get("X-Request-Id"))
	require.Equal(t, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", contentSecurityPolicy)

	tlsEnv := newAuthEnv(t, func(c *Config, _ *Deps) { c.TLSCertFile, c.TLSKeyFile = "cert.pem", "key.pem" })
	rec := tlsEnv.browser(t).do(http.MethodGet, "/login", nil)
	require.Equal(t, hstsHeader, rec.Header().Get("Strict-Transport-Security"))
}

func TestNextIsLocalOnly(t *testing.T) {
	for in, want := range map[string]string{
		"/alerts?severity=high":  "/alerts?severity=high",
		"https://evil.example/x": "/",
		"//evil.example/x":       "/",
		"/\\evil.example":        "/",
		"javascript:alert(1)":    "/",
		"":                       "/",
		"alerts":                 "/",
	} {
		require.Equal(t, want, localPath(in), in)
	}
	env := newAuthEnv(t)
	b := env.browser(t)
	b.do(http.MethodGet, "/login", nil)
	rec := b.do(http.MethodPost, "/login", url.Values{
		"csrf_token": {b.cookies[env.s.h.auth.loginCookieName]}, "username": {"bob"}, "password": {testPassword},
		"next": {"https://evil.example/"},
	})
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, "/", rec.Header().Get("Location"))
}

func TestReauthBeforeSensitiveActions(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
	form := func() url.Values {
		return url.Values{"csrf_token": {b.csrf()}, "name": {"siem"}, "role": {"viewer"}, "expires_days": {"30"}}
	}
	// Fresh from sign-in: allowed.
	rec := b.do(http.MethodPost, "/tokens", form())
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	env.clock.advance(DefaultReauthWindow + time.Second)
	rec = b.do(http.MethodPost, "/tokens", form())
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, "/reauth?next=%2Ftokens", rec.Header().Get("Location"))
	api := b.do(http.MethodPost, "/api/v1/legal-holds", url.Values{"csrf_token": {b.csrf()}})
	require.Equal(t, http.StatusUnauthorized, api.Code)
	require.JSONEq(t, `{"error": "re-authentication needed: this action needs your password entered within the last 5m0s (POST /reauth)", "reauth_required": true}`, api.Body.String())

	// A wrong password does not count as re-authentication.
	rec = b.do(http.MethodPost, "/reauth", url.Values{"csrf_token": {b.csrf()}, "password": {"not it"}, "next": {"/tokens"}})
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Equal(t, http.StatusSeeOther, b.do(http.MethodPost, "/tokens", form()).Code)

	rec = b.do(http.MethodPost, "/reauth", url.Values{"csrf_token": {b.csrf()}, "password": {testPassword}, "next": {"/tokens"}})
	require.Equal(t, http.StatusSeeOther, rec.Code)
	require.Equal(t, "/tokens", rec.Header().Get("Location"))
	require.Equal(t, http.StatusCreated, b.do(http.MethodPost, "/tokens", form()).Code)
}
