package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loginForm is a sign-in form ready to post: the pre-session CSRF token a
// GET /login gave out (a browser keeps it for an hour).
type loginForm struct {
	s     *Server
	token string
}

func newLoginForm(t *testing.T, s *Server) loginForm {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/login", nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	for _, c := range rec.Result().Cookies() {
		if c.Name == s.h.auth.loginCookieName {
			return loginForm{s: s, token: c.Value}
		}
	}
	t.Fatal("GET /login sets no CSRF cookie")
	return loginForm{}
}

// post signs in as user from remoteAddr, with an X-Forwarded-For header
// when xff is set. It is safe to call from several goroutines.
func (f loginForm) post(ctx context.Context, remoteAddr, xff, user, password string) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	form := url.Values{"csrf_token": {f.token}, "username": {user}, "password": {password}}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.RemoteAddr = remoteAddr
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	req.AddCookie(&http.Cookie{Name: f.s.h.auth.loginCookieName, Value: f.token})
	rec := httptest.NewRecorder()
	f.s.Handler().ServeHTTP(rec, req)
	return rec
}

// TestParallelGuessesGetNoExtraTries sends 40 guesses for one user from
// one source at once: no more passwords are checked than the limit
// allows, the rest are refused with 429.
func TestParallelGuessesGetNoExtraTries(t *testing.T) {
	env := newAuthEnv(t)
	f := newLoginForm(t, env.s)
	const guesses = 40
	codes := make([]int, guesses)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = f.post(t.Context(), "192.0.2.66:4000", "", "alice", "guess "+strconv.Itoa(i)).Code
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	require.Equal(t, map[int]int{http.StatusUnauthorized: loginFailsPerUser, http.StatusTooManyRequests: guesses - loginFailsPerUser}, count,
		"exactly %d passwords checked", loginFailsPerUser)
}

// TestPasswordChecksAreBounded takes every password-check slot: a sign-in
// waits briefly, then gets 503 with Retry-After, and it is not counted as
// a failure.
func TestPasswordChecksAreBounded(t *testing.T) {
	env := newAuthEnv(t)
	a := env.s.h.auth
	require.Equal(t, maxPasswordChecks, cap(a.checks))
	a.checkWait = 50 * time.Millisecond
	for range cap(a.checks) {
		a.checks <- struct{}{}
	}
	f := newLoginForm(t, env.s)
	for range loginFailsPerUser + 1 {
		rec := f.post(t.Context(), "192.0.2.67:4000", "", "alice", testPassword)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		require.Contains(t, rec.Body.String(), msgBusy)
		require.Empty(t, sessionSet(env.s, rec))
	}
	// A slot frees up while one waits: it goes through.
	a.checkWait = 5 * time.Second
	go func() {
		time.Sleep(100 * time.Millisecond)
		<-a.checks
	}()
	rec := f.post(t.Context(), "192.0.2.67:4000", "", "alice", testPassword)
	require.Equal(t, http.StatusSeeOther, rec.Code, "the refused attempts were not counted as failures")
	require.NotEmpty(t, sessionSet(env.s, rec))
}

// TestForwardedForOnlyFromTrustedProxies: behind a configured proxy each
// client has its own limits; X-Forwarded-For from anyone else is ignored.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	env := newAuthEnv(t, func(c *Config, _ *Deps) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	f := newLoginForm(t, env.s)
	ctx := t.Context()
	const proxy = "10.1.2.3:443"

	// A client behind the proxy runs out of its source budget...
	for i := range loginFailsPerIP {
		rec := f.post(ctx, proxy, "203.0.113.7", fmt.Sprintf("user%02d", i), "guess")
		require.Equal(t, http.StatusUnauthorized, rec.Code, "guess %d", i+1)
	}
	require.Equal(t, http.StatusTooManyRequests, f.post(ctx, proxy, "203.0.113.7", "alice", testPassword).Code)
	// ...and cannot get out of it by writing its own X-Forwarded-For: the
	// proxy appends the real address, read right to left.
	require.Equal(t, http.StatusTooManyRequests, f.post(ctx, proxy, "198.51.100.1, 203.0.113.7", "alice", testPassword).Code)
	// Another client behind the same proxy is not locked out.
	require.Equal(t, http.StatusSeeOther, f.post(ctx, proxy, "203.0.113.8", "alice", testPassword).Code)

	// From an address that is not a trusted proxy, the header is ignored:
	// a new made-up address per guess does not escape the limit.
	for i := range loginFailsPerIP {
		rec := f.post(ctx, "192.0.2.200:5000", fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("name%02d", i), "guess")
		require.Equal(t, http.StatusUnauthorized, rec.Code, "guess %d", i+1)
	}
	require.Equal(t, http.StatusTooManyRequests, f.post(ctx, "192.0.2.200:5000", "198.51.100.250", "bob", testPassword).Code)
}

// TestNoLockoutFromAnotherSource: guesses against alice slow the sources
// that make them down, but never keep alice out from a source without
// failures.
func TestNoLockoutFromAnotherSource(t *testing.T) {
	env := newAuthEnv(t)
	f := newLoginForm(t, env.s)
	ctx := t.Context()

	// Five wrong passwords from an attacker lock alice out there only.
	for i := range loginFailsPerUser {
		require.Equal(t, http.StatusUnauthorized, f.post(ctx, "203.0.113.5:1000", "", "alice", "guess "+strconv.Itoa(i)).Code)
	}
	require.Equal(t, http.StatusTooManyRequests, f.post(ctx, "203.0.113.5:1000", "", "alice", "guess").Code)
	require.Equal(t, http.StatusSeeOther, f.post(ctx, "198.51.100.20:1000", "", "alice", testPassword).Code, "alice signs in from her own address")

	// Guesses from many addresses, one each: past the limit of alice's
	// failures from all sources, the addresses that failed are refused...
	for i := range loginFailsPerUserAll {
		rec := f.post(ctx, fmt.Sprintf("203.0.113.%d:1000", 100+i), "", "alice", "guess")
		require.Equal(t, http.StatusUnauthorized, rec.Code, "source %d", i+1)
	}
	rec := f.post(ctx, "203.0.113.100:1000", "", "alice", testPassword)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "a source with failures waits, even with the right password")
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	// ...a new address gets one try (slowed down, not locked out)...
	require.Equal(t, http.StatusUnauthorized, f.post(ctx, "203.0.113.200:1000", "", "alice", "guess").Code)
	require.Equal(t, http.StatusTooManyRequests, f.post(ctx, "203.0.113.200:1000", "", "alice", "guess").Code)
	// ...and alice, from an address without failures, signs in.
	require.Equal(t, http.StatusSeeOther, f.post(ctx, "198.51.100.21:1000", "", "alice", testPassword).Code)
	// The window passes: everyone may try again.
	env.clock.advance(loginWindow)
	require.Equal(t, http.StatusSeeOther, f.post(ctx, "203.0.113.100:1000", "", "alice", testPassword).Code)
}
