package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

func TestAuditRowsAreWritten(t *testing.T) {
	store := chtest.New(t)
	env := newAuthEnv(t, withStore(store))
	b := env.browser(t)
	require.Equal(t, http.StatusUnauthorized, b.login("mallory", "guess").Code)
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
	rec := b.do(http.MethodPost, "/tokens", url.Values{"csrf_token": {b.csrf()}, "name": {"siem"}, "role": {"viewer"}})
	require.Equal(t, http.StatusCreated, rec.Code)
	requestID := rec.Header().Get("X-Request-Id")
	require.Equal(t, http.StatusSeeOther, b.do(http.MethodPost, "/logout", url.Values{"csrf_token": {b.csrf()}}).Code)

	page, err := store.AuditLog(t.Context(), 10, "")
	require.NoError(t, err)
	var got []string
	for _, r := range page.Rows {
		got = append(got, r.Actor+" "+r.Role+" "+r.Action+" "+r.Outcome)
		require.Equal(t, "192.0.2.0/24", r.SourceIPPrefix, "httptest's client, as a /24")
		require.Len(t, r.RequestID, 24)
		require.NotContains(t, r.Detail, "guess")
	}
	require.Equal(t, []string{
		"alice admin logout success",
		"alice admin token.create success",
		"alice admin login success",
		"(unknown user) anonymous login failure",
	}, got, "newest first")
	require.Equal(t, requestID, page.Rows[1].RequestID)
	require.True(t, strings.HasPrefix(page.Rows[1].Target, "token:"), page.Rows[1].Target)
	require.NotContains(t, page.Rows[3].Actor+page.Rows[3].Detail, "mallory", "an unknown name is not recorded: it may be a mistyped password")

	// Pages: two at a time, then the rest.
	first, err := store.AuditLog(t.Context(), 3, "")
	require.NoError(t, err)
	require.Len(t, first.Rows, 3)
	require.NotEmpty(t, first.Next)
	rest, err := store.AuditLog(t.Context(), 3, first.Next)
	require.NoError(t, err)
	require.Len(t, rest.Rows, 1)
	require.Empty(t, rest.Next)
	require.Equal(t, page.Rows[3].ID, rest.Rows[0].ID)

	// The page and the API, for admins.
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
	rec = b.do(http.MethodGet, "/audit?limit=3", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "token.create")
	rec = b.do(http.MethodGet, "/api/v1/audit?limit=2", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var body auditPageJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Entries, 2)
	require.Equal(t, "login", body.Entries[0].Action)
	require.NotEmpty(t, body.Next)
	rec = b.do(http.MethodGet, "/api/v1/audit?cursor=garbage", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"cursor"`)
	rec = b.do(http.MethodGet, "/api/v1/audit?limit=0", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `"field":"limit"`)
}

func TestAuditSubjectIsHashed(t *testing.T) {
	t.Parallel()
	got := auditSubject("k1:AAAAAAAAAAAAAAAAAAAAAA")
	require.True(t, strings.HasPrefix(got, "subject sha256:"), got)
	require.Len(t, got, len("subject sha256:")+64)
	require.NotContains(t, got, "k1:")
}
