package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAPITokens(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
	rec := b.do(http.MethodPost, "/tokens", url.Values{"csrf_token": {b.csrf()}, "name": {"siem"}, "role": {"admin"}, "expires_days": {"1"}})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	const shown = `<code class="secret">`
	i := strings.Index(rec.Body.String(), shown)
	require.GreaterOrEqual(t, i, 0, "the new token is shown")
	i += len(shown)
	raw := rec.Body.String()[i : i+len(TokenPrefix)+sessionIDLen]
	require.True(t, validTokenShape(raw), raw)

	// The token is stored hashed only.
	keys, err := env.s.h.auth.tokens.kv.Keys(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{tokenKey(raw)}, keys)
	e, err := env.s.h.auth.tokens.kv.Get(t.Context(), keys[0])
	require.NoError(t, err)
	require.NotContains(t, string(e.Value()), raw)
	require.NotContains(t, b.do(http.MethodGet, "/tokens", nil).Body.String(), raw, "shown once")

	api := env.browser(t)
	api.header.Set("Authorization", "Bearer "+raw)
	// Reaches the API (404: no such alert, past authentication and role)...
	rec = api.do(http.MethodGet, "/api/v1/alerts/no-such-alert", nil)
	require.NotEqual(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
	require.NotEqual(t, http.StatusForbidden, rec.Code, rec.Body.String())
	// ...a sensitive API action without CSRF token or re-authentication...
	rec = api.do(http.MethodDelete, "/api/v1/legal-holds/k1:AAAAAAAAAAAAAAAAAAAAAA", nil)
	require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, rec.Code, rec.Body.String())
	// ...but no page.
	for _, path := range []string{"/tokens", "/alerts", "/login"} {
		require.Equal(t, http.StatusForbidden, api.do(http.MethodGet, path, nil).Code, path)
	}

	t.Run("malformed and unknown", func(t *testing.T) {
		for _, h := range []string{"Bearer smt_nope", "Bearer " + TokenPrefix + newRandomString(32), "Basic YWxpY2U6eA==", raw} {
			c := env.browser(t)
			c.header.Set("Authorization", h)
			rec := c.do(http.MethodGet, "/api/v1/alerts", nil)
			require.Equal(t, http.StatusUnauthorized, rec.Code, h)
			require.Contains(t, rec.Body.String(), `"error"`)
		}
	})
	t.Run("expired", func(t *testing.T) {
		defer env.clock.set(0)
		env.clock.advance(24 * time.Hour)
		require.Equal(t, http.StatusUnauthorized, api.do(http.MethodGet, "/api/v1/alerts/x", nil).Code)
	})
	t.Run("revoked", func(t *testing.T) {
		id := tokenKey(raw)[:tokenIDLen]
		rec := b.do(http.MethodPost, "/tokens/"+id+"/revoke", url.Values{"csrf_token": {b.csrf()}})
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Equal(t, http.StatusUnauthorized, api.do(http.MethodGet, "/api/v1/alerts/x", nil).Code)
		require.Equal(t, http.StatusNotFound, b.do(http.MethodPost, "/tokens/"+id+"/revoke", url.Values{"csrf_token": {b.csrf()}}).Code)
	})
}

func TestTokenFormErrorsNameTheField(t *testing.T) {
	env := newAuthEnv(t)
	b := env.browser(t)
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
	for field, form := range map[string]url.Values{
		"name":         {"name": {""}, "role": {"viewer"}},
		"role":         {"name": {"x"}, "role": {"root"}},
		"expires_days": {"name": {"x"}, "role": {"viewer"}, "expires_days": {"400"}},
	} {
		form.Set("csrf_token", b.csrf())
		rec := b.do(http.MethodPost, "/tokens", form)
		require.Equal(t, http.StatusBadRequest, rec.Code, field)
		require.Contains(t, rec.Body.String(), field)
	}
}
