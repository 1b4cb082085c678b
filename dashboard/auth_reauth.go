package dashboard

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Re-authentication: before sensitive actions (erasure, legal holds, API
// tokens) a signed-in user must have entered their password within
// Config.ReauthWindow. API tokens skip it: the token is the credential and
// there is no password behind it to enter again.

// reauthView is the re-authentication page's data.
type reauthView struct {
	Next  string
	Error string
}

// reauthRequired is the JSON answer of an API call that needs a recent
// re-authentication.
type reauthRequired struct {
	Error          string `json:"error"`
	ReauthRequired bool   `json:"reauth_required"`
}

// requireReauth lets a session through only if its user entered their
// password within the re-authentication window; it marks the request as a
// sensitive action for the audit log and self-monitoring.
func (h *handler) requireReauth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := currentPrincipal(c)
		c.Set(ctxSensitive, true)
		if p.Token {
			return next(c)
		}
		as := sessionOf(c)
		if as != nil && h.now().Sub(as.s.AuthAt) <= h.cfg.ReauthWindow {
			return next(c)
		}
		if isAPI(c) {
			return c.JSON(http.StatusUnauthorized, reauthRequired{
				Error:          "re-authentication needed: this action needs your password entered within the last " + h.cfg.ReauthWindow.String() + " (POST /reauth)",
				ReauthRequired: true,
			})
		}
		return c.Redirect(http.StatusSeeOther, "/reauth"+nextQuery(c))
	}
}

// showReauth asks the signed-in user for their password again.
func (h *handler) showReauth(c echo.Context) error {
	return h.page(c, http.StatusOK, viewReauth, reauthView{Next: redirectPath(c.QueryParam("next"))})
}

// reauth checks the signed-in user's password (rate-limited like a
// sign-in) and records the time in the session.
func (h *handler) reauth(c echo.Context) error {
	a := h.auth
	as := sessionOf(c)
	if as == nil {
		// A token principal never gets here (pages refuse tokens).
		return echo.NewHTTPError(http.StatusForbidden, "re-authentication needs a signed-in session")
	}
	next := redirectPath(c.FormValue("next"))
	now := h.now()
	u := a.users[as.s.User]
	attempt, wait := a.limits.begin(userKey(u.Name), a.sourceKey(c), now)
	if attempt == nil {
		c.Response().Header().Set(echo.HeaderRetryAfter, retryAfterSeconds(wait))
		h.writeAudit(c, u.Name, u.Role.String(), "reauth", "", auditDenied, "rate_limited")
		return h.page(c, http.StatusTooManyRequests, viewReauth, reauthView{Next: next, Error: msgRateLimited})
	}
	verified, checked := a.checkPassword(c, u.hash, c.FormValue("password"))
	if !checked {
		attempt.cancel()
		return a.busy(c, h, viewReauth, reauthView{Next: next, Error: msgBusy})
	}
	if !verified {
		h.writeAudit(c, u.Name, u.Role.String(), "reauth", "", auditFailure, "bad_password")
		// 400, not 401: the session is still valid; the form field was wrong.
		return h.page(c, http.StatusBadRequest, viewReauth, reauthView{Next: next, Error: "password: wrong password."})
	}
	attempt.succeeded()
	as.s.AuthAt = now
	ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
	defer cancel()
	if err := a.sessions.update(ctx, as.id, as.s); err != nil {
		return err
	}
	a.mon.reauthSucceeded(c, u.Name, as.id, now)
	h.writeAudit(c, u.Name, u.Role.String(), "reauth", "", auditSuccess, "")
	return c.Redirect(http.StatusSeeOther, next)
}
