package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/retention"
)

// access is what a route needs, as the product defines it. This table is
// written by hand, not read from server.go: a route added there without a
// line here fails TestAuthorizationMatrix, and so does a route whose
// middleware differs from what is written here.
type access struct {
	// public routes need no principal.
	public bool
	need   Role
	// reauth routes also need a recent password entry (sessions only).
	reauth bool
}

var routeAccess = map[string]access{
	"GET /static/*":                 {public: true},
	"GET /login":                    {public: true},
	"POST /login":                   {public: true},
	"POST /logout":                  {public: true},
	"GET /reauth":                   {need: RoleViewer},
	"POST /reauth":                  {need: RoleViewer},
	"GET /":                         {need: RoleViewer},
	"GET /alerts":                   {need: RoleViewer},
	"GET /alerts/live":              {need: RoleViewer},
	"GET /alerts/:id":               {need: RoleViewer},
	"POST /alerts/:id/status":       {need: RoleAnalyst},
	"GET /suppressions":             {need: RoleViewer},
	"POST /suppressions":            {need: RoleAnalyst},
	"POST /suppressions/:id/delete": {need: RoleAnalyst},
	"GET /networks":                 {need: RoleViewer},
	"GET /subjects":                 {need: RoleViewer},
	"GET /subjects/:subject":        {need: RoleViewer},
	"GET /subjects/:subject/export": {need: RoleAnalyst},
	"GET /sessions/:session":        {need: RoleViewer},
	"GET /dead-letters":             {need: RoleViewer},
	"GET /webhooks":                 {need: RoleViewer},
	"POST /webhooks/redeliver":      {need: RoleAdmin},
	"GET /retention":                {need: RoleViewer},
	"POST /retention/erasures":      {need: RoleAdmin, reauth: true},
	"POST /retention/holds":         {need: RoleAdmin, reauth: true},
	"POST /retention/holds/lift":    {need: RoleAdmin, reauth: true},
	"GET /audit":                    {need: RoleAdmin},
	"GET /tokens":                   {need: RoleAdmin},
	"POST /tokens":                  {need: RoleAdmin, reauth: true},
	"POST /tokens/:id/revoke":       {need: RoleAdmin, reauth: true},

	"GET /api/v1/overview":                      {need: RoleViewer},
	"GET /api/v1/alerts":                        {need: RoleViewer},
	"GET /api/v1/alerts/:id":                    {need: RoleViewer},
	"POST /api/v1/alerts/:id/status":            {need: RoleAnalyst},
	"GET /api/v1/suppressions":                  {need: RoleViewer},
	"POST /api/v1/suppressions":                 {need: RoleAnalyst},
	"DELETE /api/v1/suppressions/:id":           {need: RoleAnalyst},
	"GET /api/v1/networks/shared":               {need: RoleViewer},
	"GET /api/v1/subjects/:subject/familiar":    {need: RoleViewer},
	"GET /api/v1/subjects/:subject":             {need: RoleViewer},
	"GET /api/v1/subjects/:subject/export":      {need: RoleAnalyst},
	"GET /api/v1/sessions/:session":             {need: RoleViewer},
	"GET /api/v1/dead-letters":                  {need: RoleViewer},
	"GET /api/v1/webhook-deliveries":            {need: RoleViewer},
	"POST /api/v1/webhook-deliveries/redeliver": {need: RoleAdmin},
	"GET /api/v1/retention":                     {need: RoleViewer},
	"GET /api/v1/erasure-requests":              {need: RoleViewer},
	"POST /api/v1/erasure-requests":             {need: RoleAdmin, reauth: true},
	"GET /api/v1/legal-holds":                   {need: RoleViewer},
	"POST /api/v1/legal-holds":                  {need: RoleAdmin, reauth: true},
	"DELETE /api/v1/legal-holds/:subject":       {need: RoleAdmin, reauth: true},
	"GET /api/v1/audit":                         {need: RoleAdmin},
	"GET /api/v1/openapi.yaml":                  {public: true},
}

// testSubject is a well-formed pseudonym no test data uses.
const testSubject = "k1:AAAAAAAAAAAAAAAAAAAAAA"

// concrete fills a route's path parameters with well-formed values.
func concrete(path string) string {
	r := strings.NewReplacer(
		"/*", "/app.css",
		":id", "no-such-id",
		":subject", url.PathEscape(testSubject),
		":session", url.PathEscape(testSubject),
	)
	return r.Replace(path)
}

// testClock is the dashboard's clock in tests: the wall clock plus an offset.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time            { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration)   { c.offset.Add(int64(d)) }
func (c *testClock) set(offset time.Duration)  { c.offset.Store(int64(offset)) }
func (c *testClock) nowFunc() func() time.Time { return c.now }

// testUsers are one user of each role; the tests make sessions for them
// directly in the session store (sign-in itself is tested in auth_test.go
// and by the browser test).
var testUsers = map[Role]string{RoleViewer: "vera", RoleAnalyst: "anna", RoleAdmin: "adam"}

// authzEnv is a dashboard on real NATS (sessions, tokens) and ClickHouse.
type authzEnv struct {
	s     *Server
	clock *testClock
}

// newRouteServer is a dashboard on real NATS without ClickHouse, for tests
// that only look at its routes.
func newRouteServer(t *testing.T) *Server {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	s, err := New(t.Context(), DefaultConfig(), Deps{JS: js})
	require.NoError(t, err)
	return s
}

func newAuthzEnv(t *testing.T) *authzEnv {
	t.Helper()
	store := chtest.New(t)
	_, js := natstest.Connect(t, natstest.RunServer(t))
	// The live alert list reads the alerts stream, which serve declares.
	_, err := natsconn.EnsureAlertStream(t.Context(), js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)
	// A subject's familiar networks are asked of detect.
	answerFamiliarFrom(t, js.Conn(), nil)
	cfg := DefaultConfig()
	for role, name := range testUsers {
		// A cheap hash: these tests never sign in with a password.
		cfg.Users = append(cfg.Users, User{Name: name, Role: role, PasswordHash: hashPasswordWith("not-used-"+name, 8, 1, 1)})
	}
	clock := &testClock{}
	s, err := New(t.Context(), cfg, Deps{Store: store, JS: js, Now: clock.nowFunc(), Eraser: retention.NewEraser(store, nil, nil)})
	require.NoError(t, err)
	return &authzEnv{s: s, clock: clock}
}

// principal is who sends a request in the matrix.
type principal struct {
	name  string
	role  Role
	token bool
	// staleAuth sessions entered their password longer ago than the
	// re-authentication window.
	staleAuth bool
	cookie    string
	csrf      string
	bearer    string
}

// newSession stores a session for user and returns its cookie value and
// CSRF token; authAt is when the user last entered their password.
func (env *authzEnv) newSession(t *testing.T, user string, authAt time.Time) (id, csrf string) {
	t.Helper()
	now := env.clock.now()
	csrf = newRandomString(32)
	id, err := env.s.h.auth.sessions.create(t.Context(), session{User: user, CSRF: csrf, Created: now, LastSeen: now, AuthAt: authAt})
	require.NoError(t, err)
	return id, csrf
}

func (env *authzEnv) newToken(t *testing.T, role Role) string {
	t.Helper()
	raw, _, err := env.s.h.auth.tokens.create(t.Context(), apiToken{
		Name: "matrix-" + role.String(), Role: role, Created: env.clock.now(),
		Expires: env.clock.now().Add(time.Hour), CreatedBy: testUsers[RoleAdmin],
	})
	require.NoError(t, err)
	return raw
}

func (env *authzEnv) principals(t *testing.T) []principal {
	t.Helper()
	ps := []principal{{name: "anonymous", role: RoleNone}}
	for _, role := range []Role{RoleViewer, RoleAnalyst, RoleAdmin} {
		id, csrf := env.newSession(t, testUsers[role], env.clock.now())
		ps = append(ps, principal{name: role.String() + " session", role: role, cookie: id, csrf: csrf})
		ps = append(ps, principal{name: role.String() + " token", role: role, token: true, bearer: env.newToken(t, role)})
	}
	id, csrf := env.newSession(t, testUsers[RoleAdmin], env.clock.now().Add(-time.Hour))
	ps = append(ps, principal{name: "admin session without recent password", role: RoleAdmin, staleAuth: true, cookie: id, csrf: csrf})
	return ps
}

// send runs one request through the dashboard. withCSRF adds the
// session's CSRF token. The live alert stream never ends by itself: every
// request gets a deadline.
func (env *authzEnv) send(t *testing.T, p principal, method, path string, withCSRF bool) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{
		"status": {"acknowledged"}, "comment": {"matrix"}, "subject": {testSubject},
		"reason": {"matrix test"}, "alert_id": {"no-such-id"}, "name": {"matrix"}, "role": {"viewer"},
		"expires": {"24h"}, "password": {"not-the-password"},
	}
	var body *strings.Reader
	if method == http.MethodGet || method == http.MethodHead {
		body = strings.NewReader("")
	} else {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, path, body)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if p.cookie != "" {
		req.AddCookie(&http.Cookie{Name: env.s.h.auth.cookieName, Value: p.cookie})
		if withCSRF {
			req.Header.Set(csrfHeader, p.csrf)
		}
	}
	if p.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+p.bearer)
	}
	rec := httptest.NewRecorder()
	env.s.Handler().ServeHTTP(rec, req)
	return rec
}

// outcome names what a response means for authorization.
func outcome(rec *httptest.ResponseRecorder) string {
	loc := rec.Header().Get("Location")
	switch {
	case rec.Code == http.StatusUnauthorized:
		return "401"
	case rec.Code == http.StatusForbidden:
		return "403"
	case rec.Code == http.StatusSeeOther && strings.HasPrefix(loc, "/login"):
		return "to-login"
	case rec.Code == http.StatusSeeOther && strings.HasPrefix(loc, "/reauth"):
		return "to-reauth"
	default:
		return "allowed"
	}
}

// expected is the outcome a principal must get on a route.
func expected(a access, p principal, method string, api bool) string {
	switch {
	case p.token && !api:
		return "403" // a token is for /api/v1 only, even on public pages
	case a.public && method != http.MethodGet:
		// Signing in and out answer anyone, each in its own way (a
		// failed sign-in, a redirect to /login): auth_test.go checks them.
		return "any"
	case a.public:
		return "allowed"
	case p.role == RoleNone && api:
		return "401"
	case p.role == RoleNone:
		return "to-login"
	case !p.role.Allows(a.need):
		return "403"
	case a.reauth && p.staleAuth && api:
		return "401"
	case a.reauth && p.staleAuth:
		return "to-reauth"
	default:
		return "allowed"
	}
}

func routeKey(method, path string) string { return method + " " + path }

func TestAuthorizationMatrix(t *testing.T) {
	env := newAuthzEnv(t)
	routes := env.s.echo.Routes()
	registered := map[string]bool{}
	for _, r := range routes {
		registered[routeKey(r.Method, r.Path)] = true
	}
	var unlisted, gone []string
	for k := range registered {
		if _, ok := routeAccess[k]; !ok {
			unlisted = append(unlisted, k)
		}
	}
	for k := range routeAccess {
		if !registered[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(unlisted)
	sort.Strings(gone)
	require.Empty(t, unlisted, "routes registered in server.go without an expected role in routeAccess")
	require.Empty(t, gone, "routeAccess lists routes server.go does not register")

	principals := env.principals(t)
	sort.Slice(routes, func(i, j int) bool {
		return routeKey(routes[i].Method, routes[i].Path) < routeKey(routes[j].Method, routes[j].Path)
	})
	for _, r := range routes {
		a := routeAccess[routeKey(r.Method, r.Path)]
		api := strings.HasPrefix(r.Path, "/api/")
		for _, p := range principals {
			t.Run(fmt.Sprintf("%s %s/%s", r.Method, r.Path, p.name), func(t *testing.T) {
				if r.Path == "/logout" && p.cookie != "" {
					// Signing out ends the session: use one made for it.
					authAt := env.clock.now()
					if p.staleAuth {
						authAt = authAt.Add(-time.Hour)
					}
					p.cookie, p.csrf = env.newSession(t, testUsers[p.role], authAt)
				}
				rec := env.send(t, p, r.Method, concrete(r.Path), true)
				want := expected(a, p, r.Method, api)
				if want != "any" {
					require.Equal(t, want, outcome(rec), "status %d, Location %q, body %.300s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
				}
				if api && (want == "401" || want == "403") {
					require.Contains(t, rec.Header().Get("Content-Type"), "application/json", "API errors are JSON")
					require.Contains(t, rec.Body.String(), `"error"`)
				}
				if want == "allowed" || want == "any" {
					require.Less(t, rec.Code, 500, "the handler failed: %.300s", rec.Body.String())
				}
			})
		}
	}
}

// The API routes' roles in openapi.yaml are the ones the server enforces.
func TestOpenAPIRolesMatchTheMatrix(t *testing.T) {
	t.Parallel()
	doc, _ := loadOpenAPI(t)
	for path, ops := range doc.Paths {
		for method, op := range ops {
			echoPath := "/api/v1" + strings.NewReplacer("{", ":", "}", "").Replace(path)
			a, ok := routeAccess[routeKey(strings.ToUpper(method), echoPath)]
			require.True(t, ok, "%s %s: not in routeAccess", method, echoPath)
			if a.public {
				require.Empty(t, op.MinRole, "%s %s is public", method, path)
				continue
			}
			require.Equal(t, a.need.String(), op.MinRole, "%s %s: x-min-role", method, path)
			require.Equal(t, a.reauth, op.Reauth, "%s %s: x-reauth", method, path)
		}
	}
}

func TestStateChangingRequestsNeedTheCSRFToken(t *testing.T) {
	env := newAuthzEnv(t)
	id, csrf := env.newSession(t, testUsers[RoleAdmin], env.clock.now())
	admin := principal{name: "admin", role: RoleAdmin, cookie: id, csrf: csrf}
	forged := admin
	forged.csrf = newRandomString(32)
	n := 0
	for _, r := range env.s.echo.Routes() {
		// Sign-in has no session yet: it has its own pre-session CSRF
		// check (auth_test.go). Sign-out is included: a forged one would
		// end the session.
		if slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodOptions}, r.Method) || r.Path == "/login" {
			continue
		}
		n++
		path := concrete(r.Path)
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			rec := env.send(t, admin, r.Method, path, false)
			require.Equal(t, http.StatusForbidden, rec.Code, "no CSRF token: %.300s", rec.Body.String())
			require.Contains(t, rec.Body.String(), "csrf_token")
			rec = env.send(t, forged, r.Method, path, true)
			require.Equal(t, http.StatusForbidden, rec.Code, "a wrong CSRF token: %.300s", rec.Body.String())
		})
	}
	require.GreaterOrEqual(t, n, 14, "state-changing routes checked")
}

func TestEndedSessionsCannotBeReused(t *testing.T) {
	env := newAuthzEnv(t)
	viewer := func(id, csrf string) principal {
		return principal{name: "viewer", role: RoleViewer, cookie: id, csrf: csrf}
	}
	mustBeAnonymous := func(t *testing.T, p principal) {
		t.Helper()
		require.Equal(t, "to-login", outcome(env.send(t, p, http.MethodGet, "/alerts", false)))
		require.Equal(t, "401", outcome(env.send(t, p, http.MethodGet, "/api/v1/alerts", false)))
	}

	t.Run("logged out", func(t *testing.T) {
		p := viewer(env.newSession(t, testUsers[RoleViewer], env.clock.now()))
		require.Equal(t, "allowed", outcome(env.send(t, p, http.MethodGet, "/alerts", false)))
		rec := env.send(t, p, http.MethodPost, "/logout", true)
		require.Less(t, rec.Code, 400, "logout: %.300s", rec.Body.String())
		mustBeAnonymous(t, p)
	})
	t.Run("idle timeout", func(t *testing.T) {
		defer env.clock.set(0)
		p := viewer(env.newSession(t, testUsers[RoleViewer], env.clock.now()))
		env.clock.advance(DefaultIdleTimeout - time.Minute)
		require.Equal(t, "allowed", outcome(env.send(t, p, http.MethodGet, "/alerts", false)), "active within the idle timeout")
		env.clock.advance(DefaultIdleTimeout + time.Minute)
		mustBeAnonymous(t, p)
		// The session is gone, not merely refused at this hour.
		env.clock.set(0)
		mustBeAnonymous(t, p)
	})
	t.Run("absolute timeout", func(t *testing.T) {
		defer env.clock.set(0)
		p := viewer(env.newSession(t, testUsers[RoleViewer], env.clock.now()))
		step := DefaultIdleTimeout - time.Minute
		for elapsed := step; elapsed < DefaultAbsoluteTimeout; elapsed += step {
			env.clock.advance(step)
			require.Equal(t, "allowed", outcome(env.send(t, p, http.MethodGet, "/alerts", false)), "active after %s", elapsed)
		}
		env.clock.advance(step)
		mustBeAnonymous(t, p)
	})
	t.Run("unknown session id", func(t *testing.T) {
		mustBeAnonymous(t, viewer(newRandomString(32), "x"))
	})
}
