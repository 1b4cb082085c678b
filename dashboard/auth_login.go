package dashboard

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// loginView is the sign-in page's data.
type loginView struct {
	// Next is where to go after signing in (a local path).
	Next string
	// Error says why the last attempt failed, without saying whether the
	// user exists.
	Error string
}

// Messages of a failed sign-in. They never tell whether the user exists.
const (
	msgBadCredentials = "Invalid user name or password."
	msgRateLimited    = "Too many failed sign-ins. Wait a while and try again."
	msgBusy           = "Too many sign-ins at once. Try again in a moment."
)

// redirectPath is where to send the browser after a sign-in or
// re-authentication: next when localPath keeps it and its percent-decoded
// form is a local path too ("/%2F/evil.com" and "/%5Cevil.com" are not: a
// proxy that decodes paths would make them "//evil.com"), else "/".
func redirectPath(next string) string {
	p := localPath(next)
	if dec, err := url.PathUnescape(p); err != nil || localPath(dec) != dec {
		return "/"
	}
	return p
}

// showLogin shows the sign-in form with a fresh pre-session CSRF token in a
// cookie; a signed-in user goes straight on.
func (h *handler) showLogin(c echo.Context) error {
	next := redirectPath(c.QueryParam("next"))
	if currentPrincipal(c).Role != RoleNone && !currentPrincipal(c).Token {
		return c.Redirect(http.StatusSeeOther, next)
	}
	h.setLoginCSRF(c)
	return h.page(c, http.StatusOK, viewLogin, loginView{Next: next})
}

// setLoginCSRF makes the pre-session CSRF token of the sign-in form, or
// keeps the one the browser has, and puts it where csrfToken finds it.
func (h *handler) setLoginCSRF(c echo.Context) {
	a := h.auth
	if ck, err := c.Cookie(a.loginCookieName); err == nil && validSessionID(ck.Value) {
		c.Set(ctxLoginCSRF, ck.Value)
		return
	}
	t := newRandomString(csrfTokenBytes)
	c.SetCookie(&http.Cookie{Name: a.loginCookieName, Value: t, Path: "/", MaxAge: loginCSRFCookieMaxAge,
		Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.Set(ctxLoginCSRF, t)
}

// crossSite reports whether the browser says the request comes from
// another site (Sec-Fetch-Site); browsers that send nothing are judged by
// the CSRF token alone.
func crossSite(c echo.Context) bool {
	switch c.Request().Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return true
}

// login checks the user name and password. The pre-session CSRF token must
// match its cookie; attempts are counted before the password is checked
// and rate-limited (ratelimit.go); an unknown user costs what a known one
// does and gets the same answer. On success the session gets a new id (a
// session id the browser already had is ended, never adopted).
func (h *handler) login(c echo.Context) error {
	a := h.auth
	ck, err := c.Cookie(a.loginCookieName)
	if crossSite(c) || err != nil || !sameToken(c.FormValue(csrfField), ck.Value) {
		return echo.NewHTTPError(http.StatusForbidden, "csrf_token: missing or invalid; reload the sign-in page and try again")
	}
	c.Set(ctxLoginCSRF, ck.Value)
	name, password := c.FormValue("username"), c.FormValue("password")
	next := redirectPath(c.FormValue("next"))
	now := h.now()
	u, known := a.users[name]
	actor, role := "(unknown user)", RoleNone.String()
	if known {
		actor, role = u.Name, u.Role.String()
	}
	attempt, wait := a.limits.begin(userKey(name), a.sourceKey(c), now)
	if attempt == nil {
		c.Response().Header().Set(echo.HeaderRetryAfter, retryAfterSeconds(wait))
		h.writeAudit(c, actor, role, "login", "", auditDenied, "rate_limited")
		a.mon.loginFailed(c, name, "rate_limited", now)
		return h.page(c, http.StatusTooManyRequests, viewLogin, loginView{Next: next, Error: msgRateLimited})
	}
	params := a.dummy
	if known {
		params = u.hash
	}
	// Both run, in this order, so an unknown user costs the same.
	verified, checked := a.checkPassword(c, params, password)
	if !checked {
		attempt.cancel()
		return a.busy(c, h, viewLogin, loginView{Next: next, Error: msgBusy})
	}
	if !verified || !known {
		h.writeAudit(c, actor, role, "login", "", auditFailure, "bad_credentials")
		a.mon.loginFailed(c, name, "bad_credentials", now)
		return h.page(c, http.StatusUnauthorized, viewLogin, loginView{Next: next, Error: msgBadCredentials})
	}
	attempt.succeeded()

	ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
	defer cancel()
	previous := ck.Value
	if old := sessionOf(c); old != nil {
		if err := a.sessions.remove(ctx, old.id); err != nil {
			return err
		}
		a.mon.sessionEnded(c, old.s.User, old.id, "replaced", now)
		previous = old.id
	}
	sid, err := a.sessions.create(ctx, session{
		User: u.Name, CSRF: newRandomString(csrfTokenBytes), Created: now, LastSeen: now, AuthAt: now,
	})
	if err != nil {
		return err
	}
	a.setSessionCookie(c, sid)
	c.SetCookie(&http.Cookie{Name: a.loginCookieName, Value: "", Path: "/", MaxAge: -1,
		Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	a.mon.loginSucceeded(c, u.Name, sid, now)
	a.mon.sessionStarted(c, u.Name, sid, previous, now)
	h.writeAudit(c, u.Name, u.Role.String(), "login", "", auditSuccess, "")
	h.logger.Info("signed in", slog.String("role", u.Role.String()), slog.String("request_id", requestIDOf(c)))
	return c.Redirect(http.StatusSeeOther, next)
}

// logout ends the session (CSRF-checked like every POST of a session) and
// clears its cookie.
func (h *handler) logout(c echo.Context) error {
	a := h.auth
	if as := sessionOf(c); as != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
		defer cancel()
		if err := a.sessions.remove(ctx, as.id); err != nil {
			return err
		}
		now := h.now()
		a.mon.sessionEnded(c, as.s.User, as.id, "logout", now)
		p := currentPrincipal(c)
		h.writeAudit(c, p.Name, p.Role.String(), "logout", "", auditSuccess, "")
	}
	a.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/login")
}

// checkPassword checks password against p once a password-check slot is
// free. checked is false when no slot freed up within checkWait (or the
// request ended): the password was not checked.
func (a *authenticator) checkPassword(c echo.Context, p argonParams, password string) (verified, checked bool) {
	select {
	case a.checks <- struct{}{}:
	default:
		t := time.NewTimer(a.checkWait)
		defer t.Stop()
		select {
		case a.checks <- struct{}{}:
		case <-t.C:
			return false, false
		case <-c.Request().Context().Done():
			return false, false
		}
	}
	defer func() { <-a.checks }()
	return p.verify(password), true
}

// busy answers a sign-in or re-authentication whose password could not be
// checked (every slot taken): 503 with Retry-After, on the form's page.
func (a *authenticator) busy(c echo.Context, h *handler, v view, data any) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, retryAfterSeconds(a.checkWait))
	h.logger.Warn("password check refused: too many at once", slog.Int("max_password_checks", cap(a.checks)),
		slog.String("request_id", requestIDOf(c)))
	return h.page(c, http.StatusServiceUnavailable, v, data)
}

// retryAfterSeconds is a wait rounded up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
