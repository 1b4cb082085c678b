package dashboard

import (
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"
)

// CSRF protection. A signed-in session has a synchronizer token, made at
// sign-in and kept in the server-side session: every POST, PUT, PATCH and
// DELETE of that session must carry it, in the form field csrf_token or
// the X-CSRF-Token header, or it is refused with 403. API tokens need none
// (browsers never attach them by themselves). The sign-in form, which has
// no session yet, is protected by a pre-session token in a __Host- cookie
// that the form must repeat (see login), and by Sec-Fetch-Site.

// csrfField and csrfHeader carry the token.
const (
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

// csrfTokenBytes is the entropy of a CSRF token: 256 bits.
const csrfTokenBytes = 32

// csrfToken returns the CSRF token the forms of c's page must carry in the
// field "csrf_token" (or the X-CSRF-Token header).
func csrfToken(c echo.Context) string {
	if as := sessionOf(c); as != nil {
		return as.s.CSRF
	}
	t, _ := c.Get(ctxLoginCSRF).(string)
	return t
}

// csrf refuses a state-changing request of a session without its token.
func (h *handler) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isSafeMethod(c.Request().Method) {
			return next(c)
		}
		as := sessionOf(c)
		// The sign-in form checks its own pre-session token: a browser
		// with a session may sign in again (and gets a new session).
		if as == nil || c.Path() == "/login" {
			return next(c)
		}
		if !sameToken(submittedCSRF(c), as.s.CSRF) {
			return echo.NewHTTPError(http.StatusForbidden, "csrf_token: missing or invalid; reload the page and try again")
		}
		return next(c)
	}
}

// submittedCSRF is the token a request carries: the header, else the form.
func submittedCSRF(c echo.Context) string {
	if t := c.Request().Header.Get(csrfHeader); t != "" {
		return t
	}
	return c.FormValue(csrfField)
}

// sameToken compares a submitted token with the expected one in constant
// time; an empty expected token never matches.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
