package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBodyLimits posts bodies over each route class's limit: 413 with a
// message naming the limit, before the form (or the password) is read,
// with or without a Content-Length.
func TestBodyLimits(t *testing.T) {
	env := newAuthEnv(t)
	f := newLoginForm(t, env.s)
	now := env.clock.now().UTC()
	bearer, _, err := env.s.h.auth.tokens.create(t.Context(), apiToken{Name: "siem", Role: RoleAdmin, Created: now,
		Expires: now.Add(time.Hour), CreatedBy: "alice"})
	require.NoError(t, err)

	// A sign-in form with a valid CSRF token and the right password,
	// padded past the form limit.
	bigLogin := url.Values{"csrf_token": {f.token}, "username": {"alice"}, "password": {testPassword},
		"pad": {strings.Repeat("x", maxFormBody)}}.Encode()
	cases := []struct {
		name, method, path, body, contentType string
		chunked, api                          bool
	}{
		{name: "sign-in form", method: http.MethodPost, path: "/login", body: bigLogin, contentType: "application/x-www-form-urlencoded"},
		{name: "sign-in form without Content-Length", method: http.MethodPost, path: "/login", body: bigLogin,
			contentType: "application/x-www-form-urlencoded", chunked: true},
		{name: "API JSON", method: http.MethodPost, path: "/api/v1/alerts/x/status",
			body: `{"status":"acknowledged","note":"` + strings.Repeat("x", maxAPIBody) + `"}`, contentType: "application/json", api: true},
		{name: "API JSON without Content-Length", method: http.MethodPost, path: "/api/v1/legal-holds",
			body: `{"reason":"` + strings.Repeat("x", maxAPIBody) + `"}`, contentType: "application/json", chunked: true, api: true},
		{name: "GET with a body", method: http.MethodGet, path: "/login", body: strings.Repeat("x", maxNoBody+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length
			}
			req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, body)
			if tc.chunked {
				req.ContentLength = -1
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.AddCookie(&http.Cookie{Name: env.s.h.auth.loginCookieName, Value: f.token})
			if tc.api {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			rec := httptest.NewRecorder()
			env.s.Handler().ServeHTTP(rec, req)
			require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), "request body too large: at most")
			require.Empty(t, sessionSet(env.s, rec), "no sign-in")
			if tc.api {
				require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
			}
		})
	}

	// Under the limit, the same form signs in.
	rec := f.post(t.Context(), "192.0.2.1:1234", "", "alice", testPassword)
	require.Equal(t, http.StatusSeeOther, rec.Code)
}
