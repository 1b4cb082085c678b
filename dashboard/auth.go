package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Principal is who makes a request: a signed-in user or an API token.
type Principal struct {
	Name string
	Role Role
	// Token is true for API token requests (no session, no CSRF).
	Token bool
}

// Cookie names. The __Host- prefix makes browsers refuse the cookie unless
// it is Secure, has Path=/ and no Domain, so no subdomain or plain-http
// page can plant or overwrite it. --insecure-dev-cookies (loopback only)
// drops the prefix and Secure for plain-http development.
const (
	sessionCookie         = "__Host-sessionmon"
	devSessionCookie      = "sessionmon"
	loginCSRFCookie       = "__Host-sessionmon-login"
	devLoginCSRFCookie    = "sessionmon-login"
	loginCSRFCookieMaxAge = 3600
)

// Keys of the values authenticate stores in the echo.Context.
const (
	ctxPrincipal = "dashboard.principal"
	ctxSession   = "dashboard.session"
	ctxLoginCSRF = "dashboard.login_csrf"
	ctxSensitive = "dashboard.sensitive"
	ctxRequestID = "dashboard.request_id"
)

// storeTimeout bounds one call to the session or token bucket.
const storeTimeout = 5 * time.Second

// userEntry is a configured user with their parsed password hash.
type userEntry struct {
	User
	hash argonParams
}

// authenticator holds the sign-in state: users, sessions, API tokens,
// login rate limits and the self-monitor.
type authenticator struct {
	cfg      Config
	users    map[string]userEntry
	dummy    argonParams
	sessions *sessionStore
	tokens   *tokenStore
	limits   *loginLimits
	mon      *monitor
	logger   *slog.Logger
	// checks bounds the password checks running at once (each takes the
	// memory its argon2id hash asks for); a check waits up to checkWait
	// for a slot.
	checks    chan struct{}
	checkWait time.Duration

	cookieName, loginCookieName string
	secure                      bool
}

// activeSession is the session of a request.
type activeSession struct {
	id string
	s  session
}

func newAuthenticator(ctx context.Context, cfg Config, deps Deps) (*authenticator, error) {
	if err := cfg.validateAuth(); err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("Deps.JS: required (sessions and API tokens live in JetStream key-value buckets)")
	}
	a := &authenticator{
		cfg:       cfg,
		users:     make(map[string]userEntry, len(cfg.Users)),
		limits:    newLoginLimits(),
		logger:    deps.Logger.With("component", "dashboard"),
		secure:    !cfg.InsecureDevCookies,
		checks:    make(chan struct{}, maxPasswordChecks),
		checkWait: passwordCheckWait,
	}
	a.cookieName, a.loginCookieName = sessionCookie, loginCSRFCookie
	if cfg.InsecureDevCookies {
		a.cookieName, a.loginCookieName = devSessionCookie, devLoginCSRFCookie
	}
	for i, u := range cfg.Users {
		p, err := parsePasswordHash(u.PasswordHash)
		if err != nil {
			return nil, fmt.Errorf("users[%d].password_hash: %w", i, err)
		}
		a.users[u.Name] = userEntry{User: u, hash: p}
	}
	// An unknown user name is checked against a hash of a random password
	// made with the parameters of the first user's hash, so it costs what
	// a known user's sign-in costs and its timing tells nothing.
	mem, passes, threads := uint32(argonMemoryKiB), uint32(argonTime), uint8(argonThreads)
	if len(cfg.Users) > 0 {
		p := a.users[cfg.Users[0].Name].hash
		mem, passes, threads = p.memory, p.time, p.threads
	}
	a.dummy, _ = parsePasswordHash(hashPasswordWith(newRandomString(16), mem, passes, threads))
	var err error
	if a.mon, err = newMonitor(cfg, deps.Monitor, deps.PseudonymKey, a.cookieName, a.secure, a.logger); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	mac := newRecordMAC(deps.RecordKey)
	if a.sessions, err = newSessionStore(sctx, deps.JS, cfg.AbsoluteTimeout, mac, a.logger); err != nil {
		return nil, err
	}
	if a.tokens, err = newTokenStore(sctx, deps.JS, mac, a.logger); err != nil {
		return nil, err
	}
	return a, nil
}

// close releases nothing today: the buckets outlive the process and the
// monitor's client belongs to the caller.
func (a *authenticator) close() {}

// validateAuth checks what sign-in depends on, naming each field.
func (cfg Config) validateAuth() error {
	var errs []error
	if cfg.IdleTimeout <= 0 {
		errs = append(errs, errors.New("dashboard.idle_timeout: must be positive"))
	}
	if cfg.AbsoluteTimeout <= 0 {
		errs = append(errs, errors.New("dashboard.absolute_timeout: must be positive"))
	} else if cfg.IdleTimeout > cfg.AbsoluteTimeout {
		errs = append(errs, errors.New("dashboard.idle_timeout: must not be longer than absolute_timeout"))
	}
	if cfg.ReauthWindow <= 0 {
		errs = append(errs, errors.New("dashboard.reauth_window: must be positive"))
	}
	if cfg.InsecureDevCookies && !isLoopbackAddr(cfg.Addr) {
		errs = append(errs, fmt.Errorf("insecure-dev-cookies (SESSIONMON_INSECURE_DEV_COOKIES): allowed only when dashboard-addr is a loopback address (got %q)", cfg.Addr))
	}
	if cfg.InsecureDevCookies && cfg.TLSCertFile != "" {
		errs = append(errs, errors.New("insecure-dev-cookies (SESSIONMON_INSECURE_DEV_COOKIES): not needed with TLS; remove it"))
	}
	return errors.Join(errs...)
}

// isLoopbackAddr reports whether host:port listens on loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// currentPrincipal returns who makes the request (RoleNone: anonymous).
func currentPrincipal(c echo.Context) Principal {
	p, _ := c.Get(ctxPrincipal).(Principal)
	return p
}

func sessionOf(c echo.Context) *activeSession {
	as, _ := c.Get(ctxSession).(*activeSession)
	return as
}

// authenticate sets the request's principal from an API token
// (Authorization: Bearer, /api/v1 only) or the session cookie. A cookie of
// a session that ended or expired is cleared and the request goes on
// anonymously; the routes' requireRole decides what anonymous may do.
func (h *handler) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a := h.auth
		if authz := c.Request().Header.Get(echo.HeaderAuthorization); authz != "" {
			return h.authenticateToken(c, next, authz)
		}
		ck, err := c.Cookie(a.cookieName)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
		defer cancel()
		s, err := a.sessions.get(ctx, ck.Value)
		if errors.Is(err, errNoSession) {
			a.clearSessionCookie(c)
			return next(c)
		}
		if err != nil {
			return err
		}
		now := h.now()
		u, known := a.users[s.User]
		reason := s.expiry(now, a.cfg)
		if !known {
			reason = "user_removed"
		}
		if reason != "" {
			if err := a.sessions.remove(ctx, ck.Value); err != nil {
				return err
			}
			a.clearSessionCookie(c)
			a.mon.sessionEnded(c, s.User, ck.Value, reason, now)
			h.writeAudit(c, s.User, u.Role.String(), "session.end", "", auditSuccess, reason)
			return next(c)
		}
		s.LastSeen = now
		if err := a.sessions.update(ctx, ck.Value, s); errors.Is(err, errNoSession) {
			a.clearSessionCookie(c)
			return next(c)
		} else if err != nil {
			return err
		}
		c.Set(ctxPrincipal, Principal{Name: u.Name, Role: u.Role})
		c.Set(ctxSession, &activeSession{id: ck.Value, s: s})
		return next(c)
	}
}

// authenticateToken authenticates an API request by its bearer token.
func (h *handler) authenticateToken(c echo.Context, next echo.HandlerFunc, authz string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="sessionmon"`)
	if !isAPI(c) {
		return echo.NewHTTPError(http.StatusForbidden, "API tokens are accepted only under /api/v1; sign in to use the pages")
	}
	scheme, raw, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return c.JSON(http.StatusUnauthorized, apiError{Error: "Authorization: want Bearer smt_..."})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
	defer cancel()
	t, err := h.auth.tokens.lookup(ctx, strings.TrimSpace(raw))
	if err != nil && !errors.Is(err, errNoToken) {
		return err
	}
	// A token acts for the user who made it: it dies with that user and
	// never does more than that user may do now.
	creator, known := h.auth.users[t.CreatedBy]
	if err != nil || !h.now().Before(t.Expires) || !known {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="sessionmon", error="invalid_token"`)
		return c.JSON(http.StatusUnauthorized, apiError{Error: "Authorization: API token unknown, revoked or expired"})
	}
	c.Set(ctxPrincipal, Principal{Name: "token:" + t.ID, Role: min(t.Role, creator.Role), Token: true})
	return next(c)
}

// requireRole lets the request through when its principal has role need.
// Anonymous page requests are sent to /login (and back afterwards);
// anonymous API calls get 401; a role too low gets 403.
func (h *handler) requireRole(need Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := currentPrincipal(c)
			if p.Role == RoleNone {
				if isAPI(c) {
					c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="sessionmon"`)
					return c.JSON(http.StatusUnauthorized, apiError{Error: "authentication required: send an API token (Authorization: Bearer) or sign in"})
				}
				return c.Redirect(http.StatusSeeOther, "/login"+nextQuery(c))
			}
			if !p.Role.Allows(need) {
				if !isSafeMethod(c.Request().Method) {
					h.audit(c, "access.denied", c.Request().Method+" "+c.Path(), auditDenied, "needs "+need.String())
				}
				return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("forbidden: this needs the %s role; you are %s", need, p.Role))
			}
			return next(c)
		}
	}
}

// nextQuery is "?next=<this page>" for a GET, so sign-in comes back here;
// other methods come back to the first segment of the path (the page the
// form was on), since their form data is gone anyway.
func nextQuery(c echo.Context) string {
	r := c.Request()
	target := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		target = "/" + seg
	}
	if target == "/" {
		return ""
	}
	return "?next=" + url.QueryEscape(localPath(target))
}

// localPath returns next when it is a path on this site ("/alerts?x=1"),
// else "/": a next parameter must never send anyone to another origin.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (a *authenticator) setSessionCookie(c echo.Context, id string) {
	c.SetCookie(&http.Cookie{Name: a.cookieName, Value: id, Path: "/", Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (a *authenticator) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: a.cookieName, Value: "", Path: "/", MaxAge: -1, Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// sourceKey is the rate-limit key of the request's source: its address,
// or its /64 for IPv6 (one host usually has a whole /64).
func (a *authenticator) sourceKey(c echo.Context) string {
	addr, ok := a.mon.ri.ClientAddr(c.Request())
	if !ok {
		return "src:unknown"
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return "src:" + p.String()
	}
	return "src:" + addr.String()
}

func userKey(name string) string { return "user:" + strings.ToLower(name) }
