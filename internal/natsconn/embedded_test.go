package natsconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/tlstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// startEmbedded starts sessionmon's embedded server on a free loopback
// port with its data in dir.
func startEmbedded(t *testing.T, dir string) *server.Server {
	t.Helper()
	s, err := natsconn.StartEmbedded(config.NATS{Listen: "127.0.0.1:0"}, dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// client is a connection that records the server's permission errors.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connectWith(t *testing.T, url string, opts ...nats.Option) (*client, error) {
	t.Helper()
	c := &client{errs: make(chan error, 64)}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, err = jetstream.New(nc)
	require.NoError(t, err)
	return c, nil
}

func connectCreds(t *testing.T, url, creds string, opts ...nats.Option) *client {
	t.Helper()
	c, err := connectWith(t, url, append(opts, nats.UserCredentials(creds))...)
	require.NoError(t, err, "connect with %s", creds)
	return c
}

// requireDenied waits for the server to refuse an operation on subject.
func (c *client) requireDenied(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			msg := strings.ToLower(err.Error())
			if (errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(msg, "permissions violation")) &&
				strings.Contains(msg, strings.ToLower(subject)) {
				return
			}
		case <-deadline:
			require.Failf(t, "not denied", "the server did not refuse %s", subject)
		}
	}
}

// shortCtx bounds a request the server is expected to refuse.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEmbeddedServerRequiresCredentials(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startEmbedded(t, dir)

	_, err := nats.Connect(s.ClientURL())
	require.ErrorIs(t, err, nats.ErrAuthorization, "a client without credentials is refused")
	_, err = nats.Connect(s.ClientURL(), nats.UserInfo("sessionmon", "sessionmon"))
	require.ErrorIs(t, err, nats.ErrAuthorization)

	// Credentials signed by other keys are refused too.
	other, err := natsauth.Init(t.TempDir())
	require.NoError(t, err)
	foreign := filepath.Join(t.TempDir(), "foreign.creds")
	require.NoError(t, other.WriteCreds(foreign, natsauth.Admin()))
	_, err = nats.Connect(s.ClientURL(), nats.UserCredentials(foreign))
	require.ErrorIs(t, err, nats.ErrAuthorization)

	// Modes: directories 0700 (the data directory it made too), seeds and
	// credentials 0600.
	nd := natsauth.Dir(dir)
	for _, d := range []string{dir, nd, filepath.Join(nd, "keys")} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
	for _, f := range []string{"keys/operator.nk", "keys/account.nk", "keys/system.nk", "admin.creds", "sessionmon.creds", "app.creds"} {
		fi, err := os.Stat(filepath.Join(nd, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}

	// admin.creds can do everything: JetStream included.
	admin := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AdminUser))
	_, err = natsconn.EnsureEventStream(t.Context(), admin.js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
}

// TestConnectFindsEmbeddedCredentials: with DefaultCredsFile (what the
// commands set for the data-dir) Connect authenticates, and says what to
// do when the file is missing.
func TestConnectFindsEmbeddedCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startEmbedded(t, dir)
	cfg := config.NATS{DefaultCredsFile: natsauth.CredsFile(natsauth.Dir(dir), natsauth.AdminUser)}
	nc, err := natsconn.Connect(s.ClientURL(), cfg, "test", nil)
	require.NoError(t, err)
	nc.Close()

	cfg.DefaultCredsFile = filepath.Join(t.TempDir(), "nats", "admin.creds")
	_, err = natsconn.Connect(s.ClientURL(), cfg, "test", nil)
	require.ErrorContains(t, err, "sessionmon serve")
	require.ErrorContains(t, err, "SESSIONMON_NATS_CREDS")
}

func TestEmbeddedAppCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startEmbedded(t, dir)
	nd := natsauth.Dir(dir)
	ctx := t.Context()
	admin := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AdminUser))
	stream, err := natsconn.EnsureEventStream(ctx, admin.js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
	kv, err := admin.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "SESSIONMON_TEST"})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "session", []byte("real"))
	require.NoError(t, err)
	// Someone else's reply, which an app must not see.
	spy, err := admin.nc.SubscribeSync("sessionmon.control.forget")
	require.NoError(t, err)

	app := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AppUser), nats.CustomInboxPrefix(natsauth.AppInboxPrefix))
	_, err = app.js.Publish(ctx, schemas.EventSubject("shop", "subj1"), []byte(`{}`))
	require.NoError(t, err, "app.creds publishes events and gets the acknowledgement")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)

	_, err = app.js.Stream(shortCtx(t), schemas.EventStream)
	require.Error(t, err, "no JetStream API")
	app.requireDenied(t, "$JS.API.STREAM.INFO")
	_, err = app.js.KeyValue(shortCtx(t), "SESSIONMON_TEST")
	require.Error(t, err, "no key-value store")
	require.NoError(t, app.nc.Publish("$KV.SESSIONMON_TEST.session", []byte("forged")))
	app.requireDenied(t, "$KV.SESSIONMON_TEST.session")
	e, err := kv.Get(ctx, "session")
	require.NoError(t, err)
	require.Equal(t, "real", string(e.Value()))

	for _, subj := range []string{"_INBOX.>", "sessionmon.events.>", "sessionmon.alerts.>", "sessionmon.control.>", ">"} {
		_, err := app.nc.SubscribeSync(subj)
		require.NoError(t, err)
		app.requireDenied(t, subj)
	}
	// Nor a partition's subject of the stream, which would place an event
	// in a partition of the app's choosing.
	for _, subj := range []string{"sessionmon.alerts.high.x", "sessionmon.control.forget", "sessionmon.dlq.x", "_INBOX.x", "sessionmon.events.3.shop.subj1"} {
		require.NoError(t, app.nc.Publish(subj, []byte("forged")))
		app.requireDenied(t, subj)
	}
	require.NoError(t, admin.nc.Flush())
	_, err = spy.NextMsg(200 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "a forged control message got through")

	// Without the inbox prefix the acknowledgement cannot come back.
	plain := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AppUser))
	_, err = plain.js.Publish(shortCtx(t), schemas.EventSubject("shop", "subj2"), []byte(`{}`))
	require.Error(t, err)
}

func TestEmbeddedNamedAppCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startEmbedded(t, dir)
	nd := natsauth.Dir(dir)
	ctx := t.Context()
	admin := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AdminUser))
	stream, err := natsconn.EnsureEventStream(ctx, admin.js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)

	a, err := natsauth.Load(nd)
	require.NoError(t, err)
	p, err := natsauth.NamedApp("shop")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "shop.creds")
	require.NoError(t, a.WriteCreds(file, p))

	shop := connectCreds(t, s.ClientURL(), file, nats.CustomInboxPrefix(natsauth.AppInbox("shop")))
	_, err = shop.js.Publish(ctx, schemas.EventSubject("shop", "subj1"), []byte(`{}`))
	require.NoError(t, err, "the app publishes its own events with acknowledgements")

	require.NoError(t, shop.nc.Publish(schemas.EventSubject("other", "subj1"), []byte(`{}`)))
	shop.requireDenied(t, "sessionmon.events.other.subj1")

	// An app whose name reads as a partition number cannot publish another
	// app's events as a partition's subject (sessionmon.events.7.shop.x).
	p7, err := natsauth.NamedApp("7")
	require.NoError(t, err)
	file7 := filepath.Join(t.TempDir(), "7.creds")
	require.NoError(t, a.WriteCreds(file7, p7))
	seven := connectCreds(t, s.ClientURL(), file7, nats.CustomInboxPrefix(natsauth.AppInbox("7")))
	require.NoError(t, seven.nc.Publish("sessionmon.events.7.shop.subj1", []byte(`{}`)))
	seven.requireDenied(t, "sessionmon.events.7.shop.subj1")
	for _, subj := range []string{natsauth.AppInboxPrefix + ".>", natsauth.AppInbox("other") + ".>", "_INBOX.>"} {
		_, err := shop.nc.SubscribeSync(subj)
		require.NoError(t, err)
		shop.requireDenied(t, subj)
	}
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs, "only the app's own event is stored")

	for _, bad := range []string{"", "a.b", "a>", "a b", strings.Repeat("x", 65)} {
		_, err := natsauth.NamedApp(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestEmbeddedServiceCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startEmbedded(t, dir)
	nd := natsauth.Dir(dir)
	ctx := t.Context()
	svc := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.ServiceUser))
	// What sessionmon does: streams, consumers, KV, object store, control.
	stream, err := natsconn.EnsureEventStream(ctx, svc.js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
	_, err = svc.js.Publish(ctx, schemas.EventSubject("shop", "s"), []byte(`{}`))
	require.NoError(t, err)
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx))
	}
	require.NoError(t, batch.Error())
	kv, err := svc.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "SESSIONMON_TEST"})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "k", []byte("v"))
	require.NoError(t, err)
	obs, err := svc.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "SESSIONMON_OBJ"})
	require.NoError(t, err)
	_, err = obs.PutBytes(ctx, "o", []byte("state"))
	require.NoError(t, err)
	_, err = obs.GetBytes(ctx, "o")
	require.NoError(t, err)
	sub, err := svc.nc.Subscribe("sessionmon.control.forget", func(m *nats.Msg) { _ = m.Respond([]byte("ok")) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	admin := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AdminUser))
	reply, err := admin.nc.Request("sessionmon.control.forget", []byte("x"), 5*time.Second)
	require.NoError(t, err, "the service answers the admin's requests")
	require.Equal(t, "ok", string(reply.Data))

	// What it must not do.
	require.Error(t, svc.js.DeleteStream(shortCtx(t), schemas.EventStream))
	svc.requireDenied(t, "$JS.API.STREAM.DELETE."+schemas.EventStream)
	require.Error(t, svc.js.DeleteKeyValue(shortCtx(t), "SESSIONMON_TEST"))
	svc.requireDenied(t, "$JS.API.STREAM.DELETE.KV_SESSIONMON_TEST")
	for _, subj := range []string{"$SYS.>", natsauth.AppInboxPrefix + ".>", ">"} {
		_, err := svc.nc.SubscribeSync(subj)
		require.NoError(t, err)
		svc.requireDenied(t, subj)
	}
	require.NoError(t, svc.nc.Publish("$SYS.REQ.SERVER.PING", nil))
	svc.requireDenied(t, "$SYS.REQ.SERVER.PING")
	_, err = admin.js.Stream(ctx, schemas.EventStream)
	require.NoError(t, err, "the stream is still there")
}

func TestEmbeddedRestartKeepsCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nd := natsauth.Dir(dir)
	s, err := natsconn.StartEmbedded(config.NATS{Listen: "127.0.0.1:0"}, dir, nil)
	require.NoError(t, err)
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(nd, f))
		require.NoError(t, err)
		return string(b)
	}
	seed, admin := read("keys/account.nk"), read("admin.creds")
	c := connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AdminUser))
	_, err = natsconn.EnsureEventStream(t.Context(), c.js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
	c.nc.Close()
	s.Shutdown()
	s.WaitForShutdown()

	s = startEmbedded(t, dir)
	require.Equal(t, seed, read("keys/account.nk"), "the keys are reused")
	require.Equal(t, admin, read("admin.creds"), "the credentials files are kept")
	c = connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.AdminUser))
	_, err = c.js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err, "the stream survives the restart")

	// A lost key is not silently replaced: that would invalidate every
	// credentials file.
	s.Shutdown()
	s.WaitForShutdown()
	require.NoError(t, os.Remove(filepath.Join(nd, "keys", "account.nk")))
	_, err = natsconn.StartEmbedded(config.NATS{Listen: "127.0.0.1:0"}, dir, nil)
	require.ErrorContains(t, err, "missing")

	// Without any key, new keys are made and the credentials files of the
	// old ones, now useless, are replaced.
	require.NoError(t, os.RemoveAll(filepath.Join(nd, "keys")))
	s = startEmbedded(t, dir)
	require.NotEqual(t, admin, read("admin.creds"))
	connectCreds(t, s.ClientURL(), natsauth.CredsFile(nd, natsauth.ServiceUser))
}

// TestEmbeddedKeepsAnonymousStore: the streams of a data-dir written
// before authentication (account $G) are moved to the sessionmon account.
func TestEmbeddedKeepsAnonymousStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "jetstream"), NoSigs: true, NoLog: true}
	old, err := server.NewServer(opts)
	require.NoError(t, err)
	old.Start()
	require.True(t, old.ReadyForConnections(10*time.Second))
	c, err := connectWith(t, old.ClientURL())
	require.NoError(t, err)
	_, err = natsconn.EnsureEventStream(t.Context(), c.js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
	_, err = c.js.Publish(t.Context(), schemas.EventSubject("shop", "s"), []byte(`{}`))
	require.NoError(t, err)
	c.nc.Close()
	old.Shutdown()
	old.WaitForShutdown()

	s := startEmbedded(t, dir)
	admin := connectCreds(t, s.ClientURL(), natsauth.CredsFile(natsauth.Dir(dir), natsauth.AdminUser))
	st, err := admin.js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.CachedInfo().State.Msgs)
}

func TestEmbeddedListenNeedsTLSBeyondLoopback(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:4222", "example.com:4222"} {
		_, err := natsconn.StartEmbedded(config.NATS{Listen: listen}, t.TempDir(), nil)
		require.ErrorContains(t, err, "SESSIONMON_NATS_LISTEN_TLS_CERT", listen)
		require.ErrorContains(t, err, "not a loopback address", listen)
	}

	p := tlstest.New(t)
	dir := t.TempDir()
	s, err := natsconn.StartEmbedded(config.NATS{Listen: "0.0.0.0:0", ListenTLSCert: p.ServerCert, ListenTLSKey: p.ServerKey}, dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	port := s.Addr().(*net.TCPAddr).Port
	creds := natsauth.CredsFile(natsauth.Dir(dir), natsauth.AdminUser)
	nc, err := natsconn.Connect(fmt.Sprintf("tls://127.0.0.1:%d", port), config.NATS{CredsFile: creds, CAFile: p.CAFile}, "test", nil)
	require.NoError(t, err)
	defer nc.Close()
	state, err := nc.TLSConnectionState()
	require.NoError(t, err)
	require.True(t, state.HandshakeComplete)
	_, err = nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.UserCredentials(creds))
	require.Error(t, err, "plain-text clients are refused")

	_, err = natsconn.StartEmbedded(config.NATS{Listen: "0.0.0.0:0", ListenTLSCert: p.ServerCert}, t.TempDir(), nil)
	require.ErrorContains(t, err, "nats-listen-tls-key")
}
