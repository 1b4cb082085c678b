package dashboard

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows nothing but this origin's own scripts,
// styles, images and fonts: no inline script or style, no third-party
// origin, no framing, no plugins, forms posting here only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// hstsMaxAge is two years, as browsers' preload lists ask.
const hstsHeader = "max-age=63072000; includeSubDomains"

// requestID gives every request a random id, in the X-Request-Id response
// header and in the logs. An id the client sends is ignored: it could be
// anything, including something that must not reach the logs.
func (h *handler) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		b := make([]byte, 12)
		// crypto/rand.Read never returns an error (it crashes the program instead).
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// requestIDOf returns the request's id.
func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// securityHeaders sets the security headers on every response, errors
// included, before anything else writes.
func (h *handler) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set(echo.HeaderXContentTypeOptions, "nosniff")
		hd.Set(echo.HeaderReferrerPolicy, "no-referrer")
		hd.Set(echo.HeaderXFrameOptions, "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			hd.Set(echo.HeaderCacheControl, "no-store")
		}
		if h.cfg.TLSCertFile != "" || c.IsTLS() {
			hd.Set(echo.HeaderStrictTransportSecurity, hstsHeader)
		}
		return next(c)
	}
}

// recoverPanic turns a panic in a handler into a 500, logged once with the
// request id and the stack; the process keeps serving.
func (h *handler) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			h.logger.Error("handler panicked",
				slog.String("request_id", requestIDOf(c)),
				slog.String("route", c.Path()),
				slog.String("panic", fmt.Sprintf("%T", r)),
				slog.String("stack", string(debug.Stack())))
			err = echo.NewHTTPError(http.StatusInternalServerError)
		}()
		return next(c)
	}
}
