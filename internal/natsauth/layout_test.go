package natsauth_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// appsFixture is a configured server with the events stream (partitions
// of it), a service connection, and the options of the two kinds of app
// credentials (the shared app.creds and per-app credentials for "shop").
type appsFixture struct {
	url  string
	svc  *nats.Conn
	js   jetstream.JetStream
	apps map[string][]nats.Option
}

func newAppsFixture(t *testing.T, partitions int) *appsFixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nats")
	_, err := natsauth.Init(dir)
	require.NoError(t, err)
	s := runConfigured(t, dir)
	svc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.ServiceUser)))
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	js, err := jetstream.New(svc)
	require.NoError(t, err)
	_, err = natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: partitions})
	require.NoError(t, err)
	a, err := natsauth.Load(dir)
	require.NoError(t, err)
	p, err := natsauth.NamedApp("shop")
	require.NoError(t, err)
	shopCreds := filepath.Join(t.TempDir(), "shop.creds")
	require.NoError(t, a.WriteCreds(shopCreds, p))
	return &appsFixture{url: s.ClientURL(), svc: svc, js: js, apps: map[string][]nats.Option{
		"shared": {nats.UserCredentials(natsauth.CredsFile(dir, natsauth.AppUser)), nats.CustomInboxPrefix(natsauth.AppInboxPrefix)},
		"named":  {nats.UserCredentials(shopCreds), nats.CustomInboxPrefix(natsauth.AppInbox("shop"))},
	}}
}

// Apps ask the events stream's layout with their own credentials, on
// their own inbox (the shared app.creds and per-app credentials), and the
// service user's responder can answer both.
func TestAppsCanRequestLayout(t *testing.T) {
	t.Parallel()
	f := newAppsFixture(t, 4)
	stop, err := natsconn.ServeLayout(t.Context(), f.svc, f.js, nil)
	require.NoError(t, err)
	t.Cleanup(stop)
	require.NoError(t, f.svc.Flush())

	for name, opts := range f.apps {
		app, err := nats.Connect(f.url, opts...)
		require.NoError(t, err, name)
		t.Cleanup(app.Close)
		for range 3 { // the service may answer each request once
			m, err := app.Request(schemas.LayoutSubject, nil, 5*time.Second)
			require.NoError(t, err, name)
			var l schemas.Layout
			require.NoError(t, json.Unmarshal(m.Data, &l), name)
			require.Equal(t, 4, l.Partitions, name)
		}
	}
}

// Apps may not publish on the subject of erasure's replacements, whose
// Sessionmon-Replaces header makes the detectors skip a message.
func TestAppsCannotPublishReplacements(t *testing.T) {
	t.Parallel()
	f := newAppsFixture(t, 0)
	ctx := t.Context()
	stream, err := f.js.Stream(ctx, schemas.EventStream)
	require.NoError(t, err)
	for name, opts := range f.apps {
		app, err := nats.Connect(f.url, opts...)
		require.NoError(t, err, name)
		t.Cleanup(app.Close)
		js, err := jetstream.New(app)
		require.NoError(t, err)
		m := schemas.NewBatchMsg("shop", 0, 0, []string{"e1"}, [][]byte{[]byte(`{}`)})
		m.Header.Set(schemas.ReplacesHeader, "1")
		m.Subject = schemas.EventSubject("shop", schemas.ReplacementToken)
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = js.PublishMsg(pctx, m)
		cancel()
		require.Error(t, err, "%s: publish on the replacement subject", name)
		// The same credentials may publish a batch.
		m.Subject = schemas.EventSubject("shop", schemas.BatchToken(0, 0))
		m.Header.Del(schemas.ReplacesHeader)
		_, err = js.PublishMsg(ctx, m)
		require.NoError(t, err, name)
	}
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs, "the two batches (one id) only")
}
