package dashboard

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
)

// testRecordKey is the record key of the dashboards of these tests.
var testRecordKey = []byte("the record key of these tests, 32+ bytes")

func withRecordKey(k []byte) envOption { return func(_ *Config, d *Deps) { d.RecordKey = k } }

func withUsers(users ...User) envOption { return func(c *Config, _ *Deps) { c.Users = users } }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withLogs(buf *syncBuffer) envOption {
	return func(_ *Config, d *Deps) { d.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}

// TestForgedSessionRecordsAreRefused writes session records straight into
// the session bucket, as anyone allowed to write to NATS can, without the
// record key: none opens the dashboard, and each is logged without the
// session id or its hash.
func TestForgedSessionRecordsAreRefused(t *testing.T) {
	var logs syncBuffer
	env := newAuthEnv(t, withRecordKey(testRecordKey), withLogs(&logs))
	kv := env.s.h.auth.sessions.kv
	ctx := t.Context()

	// A real session of bob (viewer), to copy and to edit.
	bob := env.browser(t)
	require.Equal(t, http.StatusSeeOther, bob.login("bob", testPassword).Code)
	bobKey := sessionKey(bob.sessionID())
	e, err := kv.Get(ctx, bobKey)
	require.NoError(t, err)
	bobRecord := e.Value()
	require.Equal(t, http.StatusOK, bob.do(http.MethodGet, "/reauth", nil).Code, "bob's own session works")

	now := env.clock.now()
	admin := session{User: "alice", CSRF: newRandomString(csrfTokenBytes), Created: now, LastSeen: now, AuthAt: now}
	otherKey := newRecordMAC([]byte("not the record key, but 32+ bytes long"))
	cases := []struct {
		name string
		// record returns the value to store under key.
		record func(key string) []byte
	}{
		{"admin session without a MAC (hand-written, or from before records had one)", func(string) []byte {
			b, err := json.Marshal(admin)
			require.NoError(t, err)
			return b
		}},
		{"admin session with a MAC made with another key", func(key string) []byte {
			s := admin
			s.MAC = otherKey.sum(sessionMACDomain, sessionMACFields(key, s)...)
			b, err := json.Marshal(s)
			require.NoError(t, err)
			return b
		}},
		{"bob's valid record moved to another key", func(string) []byte { return bobRecord }},
		{"bob's valid record made alice's", func(string) []byte {
			var s session
			require.NoError(t, json.Unmarshal(bobRecord, &s))
			s.User = "alice"
			b, err := json.Marshal(s)
			require.NoError(t, err)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newRandomString(sessionIDBytes)
			_, err := kv.Put(ctx, sessionKey(id), tc.record(sessionKey(id)))
			require.NoError(t, err)
			b := env.browser(t)
			b.cookies[env.s.h.auth.cookieName] = id

			rec := b.do(http.MethodGet, "/tokens", nil)
			require.Equal(t, http.StatusSeeOther, rec.Code, "no session: sent to sign in")
			require.True(t, strings.HasPrefix(rec.Header().Get("Location"), "/login"), rec.Header().Get("Location"))
			require.Empty(t, b.sessionID(), "the cookie is cleared")
			b.cookies[env.s.h.auth.cookieName] = id
			rec = b.do(http.MethodPost, "/tokens", url.Values{"csrf_token": {admin.CSRF}, "name": {"x"}, "role": {"admin"}})
			require.NotEqual(t, http.StatusCreated, rec.Code, "no API token minted")
			require.NotContains(t, rec.Body.String(), TokenPrefix)
			b.cookies[env.s.h.auth.cookieName] = id
			require.Equal(t, http.StatusUnauthorized, b.do(http.MethodGet, "/api/v1/audit", nil).Code)

			require.Contains(t, logs.String(), "session record refused")
			require.NotContains(t, logs.String(), id)
			require.NotContains(t, logs.String(), sessionKey(id))
		})
	}

	// An edited record under its own key is refused too: bob is signed out.
	var s session
	require.NoError(t, json.Unmarshal(bobRecord, &s))
	s.AuthAt = now.Add(time.Hour)
	edited, err := json.Marshal(s)
	require.NoError(t, err)
	_, err = kv.Put(ctx, bobKey, edited)
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, bob.do(http.MethodGet, "/reauth", nil).Code)
	require.Empty(t, bob.sessionID())

	// Nothing refused the real sessions: bob signs in again and works.
	require.Equal(t, http.StatusSeeOther, bob.login("bob", testPassword).Code)
	require.Equal(t, http.StatusOK, bob.do(http.MethodGet, "/reauth", nil).Code)
	require.Equal(t, http.StatusOK, bob.do(http.MethodGet, "/reauth", nil).Code, "a session stays valid across its updates")
}

// TestForgedTokenRecordsAreRefused writes API token records straight into
// the token bucket without the record key: none authenticates on /api/v1,
// none is listed, and each is logged by its id only.
func TestForgedTokenRecordsAreRefused(t *testing.T) {
	var logs syncBuffer
	env := newAuthEnv(t, withRecordKey(testRecordKey), withLogs(&logs))
	ts := env.s.h.auth.tokens
	ctx := t.Context()
	now := env.clock.now().UTC()

	// A real viewer token of alice, to copy and to edit.
	realRaw, _, err := ts.create(ctx, apiToken{Name: "siem", Role: RoleViewer, Created: now, Expires: now.Add(24 * time.Hour), CreatedBy: "alice"})
	require.NoError(t, err)
	e, err := ts.kv.Get(ctx, tokenKey(realRaw))
	require.NoError(t, err)
	realRecord := e.Value()
	call := func(raw, path string) int {
		b := env.browser(t)
		b.header.Set("Authorization", "Bearer "+raw)
		return b.do(http.MethodGet, path, nil).Code
	}
	require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, call(realRaw, "/api/v1/alerts/x"), "the real token works")

	tenYears := apiToken{Name: "backdoor", Role: RoleAdmin, Created: now, Expires: now.Add(10 * 365 * 24 * time.Hour), CreatedBy: "alice"}
	cases := []struct {
		name   string
		record func(key string) []byte
	}{
		{"admin token for ten years without a MAC", func(string) []byte {
			b, err := json.Marshal(tenYears)
			require.NoError(t, err)
			return b
		}},
		{"admin token with a MAC made with another key", func(key string) []byte {
			tok := tenYears
			tok.MAC = newRecordMAC([]byte("not the record key, but 32+ bytes long")).sum(tokenMACDomain, tokenMACFields(key, tok)...)
			b, err := json.Marshal(tok)
			require.NoError(t, err)
			return b
		}},
		{"the real token's record moved to another key", func(string) []byte { return realRecord }},
		{"the real token's record made admin", func(string) []byte {
			var tok apiToken
			require.NoError(t, json.Unmarshal(realRecord, &tok))
			tok.Role = RoleAdmin
			b, err := json.Marshal(tok)
			require.NoError(t, err)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := TokenPrefix + newRandomString(tokenBytes)
			_, err := ts.kv.Put(ctx, tokenKey(raw), tc.record(tokenKey(raw)))
			require.NoError(t, err)
			require.Equal(t, http.StatusUnauthorized, call(raw, "/api/v1/audit"))
			require.Equal(t, http.StatusUnauthorized, call(raw, "/api/v1/alerts/x"))
			require.Contains(t, logs.String(), "API token record refused")
			require.Contains(t, logs.String(), tokenKey(raw)[:tokenIDLen], "logged by its id")
			require.NotContains(t, logs.String(), raw)
			require.NotContains(t, logs.String(), tokenKey(raw))
		})
	}
	list, err := ts.list(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1+len(cases))
	require.Equal(t, "siem", list[0].Name, "the real token first")
	require.False(t, list[0].Refused)
	for _, tok := range list[1:] {
		require.True(t, tok.Refused)
		require.Equal(t, apiToken{ID: tok.ID, Refused: true}, tok, "nothing of a refused record but its id")
	}
	// An admin sees the refused records and deletes them.
	admin := env.browser(t)
	require.Equal(t, http.StatusSeeOther, admin.login("alice", testPassword).Code)
	page := admin.do(http.MethodGet, "/tokens", nil)
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body.String(), "Refused: not made with this server")
	require.NotContains(t, page.Body.String(), "backdoor")
	rec := admin.do(http.MethodPost, "/tokens/"+list[1].ID+"/revoke", url.Values{"csrf_token": {admin.csrf()}})
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	list, err = ts.list(ctx)
	require.NoError(t, err)
	require.Len(t, list, len(cases))
	require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, call(realRaw, "/api/v1/alerts/x"), "the real token still works")
}

// TestTokensFollowTheirCreator: a token never does more than the user who
// made it may do now, and dies with that user. The dashboards share NATS
// and the record key, as processes restarted with a changed user list do.
func TestTokensFollowTheirCreator(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	hash := hashPasswordWith(testPassword, 8, 1, 1)
	before := newAuthEnvOn(t, js, withRecordKey(testRecordKey),
		withUsers(User{Name: "alice", Role: RoleAdmin, PasswordHash: hash}, User{Name: "bob", Role: RoleViewer, PasswordHash: hash}))
	now := before.clock.now().UTC()
	raw, _, err := before.s.h.auth.tokens.create(t.Context(), apiToken{Name: "siem", Role: RoleAdmin, Created: now,
		Expires: now.Add(MaxTokenTTL), CreatedBy: "alice"})
	require.NoError(t, err)
	call := func(env *authEnv, path string) int {
		b := env.browser(t)
		b.header.Set("Authorization", "Bearer "+raw)
		return b.do(http.MethodGet, path, nil).Code
	}
	const adminOnly, viewer = "/api/v1/audit", "/api/v1/alerts/x"
	require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, call(before, adminOnly), "alice is admin: so is her token")

	demoted := newAuthEnvOn(t, js, withRecordKey(testRecordKey),
		withUsers(User{Name: "alice", Role: RoleViewer, PasswordHash: hash}, User{Name: "bob", Role: RoleViewer, PasswordHash: hash}))
	require.Equal(t, http.StatusForbidden, call(demoted, adminOnly), "alice demoted to viewer: her admin token is capped at viewer")
	require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, call(demoted, viewer))

	removed := newAuthEnvOn(t, js, withRecordKey(testRecordKey),
		withUsers(User{Name: "bob", Role: RoleAdmin, PasswordHash: hash}))
	require.Equal(t, http.StatusUnauthorized, call(removed, viewer), "alice removed: her tokens stop working")
	require.Equal(t, http.StatusUnauthorized, call(removed, adminOnly))
}

func TestLoadRecordKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadRecordKey("", dir)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(k1), 32)
	path := filepath.Join(dir, RecordKeyFile)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	k2, err := LoadRecordKey("", dir)
	require.NoError(t, err)
	require.Equal(t, k1, k2, "made once, then shared by every process on this data-dir")
	pk, err := LoadPseudonymKey("", dir)
	require.NoError(t, err)
	require.NotEqual(t, k1, pk, "not the pseudonym key")

	k3, err := LoadRecordKey(strings.Repeat("s", 32), dir)
	require.NoError(t, err)
	require.Equal(t, []byte(strings.Repeat("s", 32)), k3)
	_, err = LoadRecordKey("short", dir)
	require.ErrorContains(t, err, "dashboard-record-key: must be at least 32 bytes")

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = LoadRecordKey("", dir)
	require.ErrorContains(t, err, "readable by others")
}
