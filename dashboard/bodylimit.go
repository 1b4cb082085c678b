package dashboard

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Request body limits per route class. Every form and JSON body the
// dashboard takes is a few fields, so the limits are far above what a
// browser or a SIEM sends and far below what would cost memory. A request
// over its limit gets 413 before any handler (or the CSRF check) reads it.
const (
	// maxNoBody is the body a GET, HEAD, DELETE or OPTIONS request may
	// carry: none is expected.
	maxNoBody = 4 << 10
	// maxFormBody is the body of a page's form (sign-in, triage, tokens).
	maxFormBody = 64 << 10
	// maxAPIBody is the body of a JSON API call under /api/v1.
	maxAPIBody = 256 << 10
)

// bodyLimit returns the body limit of the request's route class.
func bodyLimit(r *http.Request) int64 {
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodDelete || r.Method == http.MethodOptions:
		return maxNoBody
	case r.URL.Path == "/api/v1" || strings.HasPrefix(r.URL.Path, "/api/v1/"):
		return maxAPIBody
	default:
		return maxFormBody
	}
}

// limitBody refuses a request whose body is over its route class's limit
// with 413. A body without a Content-Length is read up to the limit first,
// so a handler never sees a cut-off body it would take for a short one.
func (h *handler) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		limit := bodyLimit(r)
		tooLarge := func() error {
			// The rest of the body is not read: the connection closes.
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body too large: at most %d KiB for %s %s", limit>>10, r.Method, routeClass(r)))
		}
		if r.ContentLength > limit {
			return tooLarge()
		}
		if r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "request body: could not be read")
		}
		if int64(len(b)) > limit {
			return tooLarge()
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		return next(c)
	}
}

// routeClass names the request's route class in a 413 message.
func routeClass(r *http.Request) string {
	if r.URL.Path == "/api/v1" || strings.HasPrefix(r.URL.Path, "/api/v1/") {
		return "/api/v1"
	}
	return "pages"
}
