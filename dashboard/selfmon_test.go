package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

func TestSelfMonitoringEvents(t *testing.T) {
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	stream, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{Duplicates: time.Minute})
	require.NoError(t, err)
	client, err := sdk.NewClient(nc, sdk.WithApp(MonitorApp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(context.Background()) })

	cfg := DefaultConfig()
	cfg.Users = []User{{Name: "alice", Role: RoleAdmin, PasswordHash: hashPasswordWith(testPassword, 8, 1, 1)}}
	s, err := New(t.Context(), cfg, Deps{JS: js, Monitor: client})
	require.NoError(t, err)
	env := &authEnv{s: s, clock: &testClock{}, js: js}

	b := env.browser(t)
	require.Equal(t, http.StatusUnauthorized, b.login("alice", "wrong password").Code)
	require.Equal(t, http.StatusSeeOther, b.login("alice", testPassword).Code)
	sid := b.sessionID()
	require.Equal(t, http.StatusCreated, b.do(http.MethodPost, "/tokens", url.Values{"csrf_token": {b.csrf()}, "name": {"siem"}, "role": {"viewer"}}).Code)
	require.Equal(t, http.StatusSeeOther, b.do(http.MethodPost, "/reauth", url.Values{"csrf_token": {b.csrf()}, "password": {testPassword}}).Code)
	require.Equal(t, http.StatusSeeOther, b.do(http.MethodPost, "/logout", url.Values{"csrf_token": {b.csrf()}}).Code)
	require.NoError(t, client.Flush(t.Context()))

	want := []schemas.Type{schemas.LoginFailed, schemas.LoginSucceeded, schemas.SessionStarted, schemas.ActionPerformed,
		schemas.TokenIssued, schemas.ReauthSucceeded, schemas.SessionEnded}
	var events []*schemas.Event
	var raws []string
	poll.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		events, raws = nil, nil
		cons, err := stream.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			ev, err := schemas.Decode(m.Data(), time.Now())
			require.NoError(t, err, "every event passes schema v1: %s", m.Data())
			events = append(events, ev)
			raws = append(raws, string(m.Data()))
		}
		if len(events) < len(want) {
			return &waitError{n: len(events)}
		}
		return nil
	})
	var types []schemas.Type
	for _, ev := range events {
		types = append(types, ev.Type)
		require.Equal(t, MonitorApp, ev.App)
	}
	require.ElementsMatch(t, want, types)
	for _, raw := range raws {
		require.NotContains(t, raw, "alice", "no raw user name")
		require.NotContains(t, raw, sid, "no raw session id")
		require.NotContains(t, raw, "192.0.2.1\"", "no address, only its network")
	}
	byType := map[schemas.Type]*schemas.Event{}
	for _, ev := range events {
		byType[ev.Type] = ev
	}
	started := byType[schemas.SessionStarted]
	require.True(t, strings.HasPrefix(started.Subject, pseudonymKeyID+":"))
	require.NotEmpty(t, started.PreviousSession)
	require.NotEqual(t, started.Session, started.PreviousSession, "the session id was rotated at sign-in")
	require.Equal(t, "__Host-sessionmon", started.Cookie.Name)
	require.True(t, *started.Cookie.Secure)
	require.True(t, *started.Cookie.HTTPOnly)
	require.Equal(t, schemas.SameSiteStrict, started.Cookie.SameSite)
	require.Equal(t, schemas.Policy{IdleTimeoutS: 900, AbsoluteTimeoutS: 28800, ReauthWindowS: 300}, *started.Policy)
	require.Equal(t, "192.0.2.0/24", started.Client.IPPrefix)
	require.Equal(t, started.Subject, byType[schemas.LoginFailed].Subject, "the same user, the same pseudonym")
	action := byType[schemas.ActionPerformed]
	require.Equal(t, schemas.Action{Name: "token.create", Sensitive: true}, *action.Action)
	require.Equal(t, started.Session, action.Session)
	require.NotNil(t, action.Auth.LastAuthAt, "the detector sees when the password was entered")
	require.Equal(t, "logout", byType[schemas.SessionEnded].Reason)
	require.Equal(t, schemas.TokenAPIKey, byType[schemas.TokenIssued].Token.Kind)
	require.True(t, slices.ContainsFunc(events, func(e *schemas.Event) bool { return e.Type == schemas.LoginFailed && e.Reason == "bad_credentials" }))
}

type waitError struct{ n int }

func (e *waitError) Error() string { return fmt.Sprintf("only %d events so far", e.n) }

func TestMonitorRefusesAnotherApp(t *testing.T) {
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	client, err := sdk.NewClient(nc, sdk.WithApp("shop"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	_, err = New(t.Context(), DefaultConfig(), Deps{JS: js, Monitor: client})
	require.ErrorContains(t, err, "Deps.Monitor: app must be \"sessionmon-dashboard\"")
}

func TestLoadPseudonymKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadPseudonymKey("", dir)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(k1), sdk.MinKeyBytes)
	fi, err := os.Stat(filepath.Join(dir, PseudonymKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	k2, err := LoadPseudonymKey("", dir)
	require.NoError(t, err)
	require.Equal(t, k1, k2, "made once, then reused")

	k3, err := LoadPseudonymKey(strings.Repeat("s", 32), dir)
	require.NoError(t, err)
	require.Equal(t, []byte(strings.Repeat("s", 32)), k3)
	_, err = LoadPseudonymKey("short", dir)
	require.ErrorContains(t, err, "dashboard-pseudonym-key")
}
