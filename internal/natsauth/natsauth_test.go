package natsauth_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/schemas"
)

// runConfigured starts nats-server from a configuration file that
// includes Init's auth.conf, as deploy/nats/nats.conf does.
func runConfigured(t *testing.T, dir string) *server.Server {
	t.Helper()
	conf := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(conf, []byte("listen: 127.0.0.1:-1\njetstream {\n  store_dir: "+
		filepath.Join(t.TempDir(), "js")+"\n}\ninclude auth.conf\n"), 0o600))
	opts, err := server.ProcessConfigFile(conf)
	require.NoError(t, err)
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	require.True(t, s.ReadyForConnections(10*time.Second))
	return s
}

func TestInitConfigIsAcceptedByNATSServer(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nats")
	_, err := natsauth.Init(dir)
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	for _, f := range []string{"admin.creds", "sessionmon.creds", "app.creds", "keys/operator.nk"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	conf, err := os.ReadFile(filepath.Join(dir, natsauth.ServerConfigFile))
	require.NoError(t, err)
	require.NotContains(t, string(conf), "SUA", "no seed in the server configuration")
	require.NotContains(t, string(conf), "SOA")

	// A second run keeps the keys and the files.
	admin, err := os.ReadFile(filepath.Join(dir, "admin.creds"))
	require.NoError(t, err)
	_, err = natsauth.Init(dir)
	require.NoError(t, err)
	again, err := os.ReadFile(filepath.Join(dir, "admin.creds"))
	require.NoError(t, err)
	require.Equal(t, admin, again)

	s := runConfigured(t, dir)
	ctx := t.Context()
	_, err = nats.Connect(s.ClientURL())
	require.ErrorIs(t, err, nats.ErrAuthorization, "no anonymous access")

	svc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.ServiceUser)))
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	js, err := jetstream.New(svc)
	require.NoError(t, err)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: schemas.EventStream, Subjects: []string{schemas.EventSubjects}})
	require.NoError(t, err, "JetStream is enabled for the account")

	perms := make(chan error, 16)
	app, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.AppUser)),
		nats.CustomInboxPrefix(natsauth.AppInboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perms <- err }))
	require.NoError(t, err)
	t.Cleanup(app.Close)
	appJS, err := jetstream.New(app)
	require.NoError(t, err)
	_, err = appJS.Publish(ctx, schemas.EventSubject("shop", "s1"), []byte(`{}`))
	require.NoError(t, err, "apps publish events with acknowledgements")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)

	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = appJS.Stream(short, schemas.EventStream)
	require.Error(t, err, "no JetStream API for apps")
	_, err = app.SubscribeSync("_INBOX.>")
	require.NoError(t, err)
	require.NoError(t, app.Publish("sessionmon.control.forget", []byte("x")))
	var got []string
	deadline := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case err := <-perms:
			got = append(got, err.Error())
		case <-deadline:
			require.Failf(t, "permissions", "the server did not refuse everything: %v", got)
		}
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{"$JS.API.STREAM.INFO", "_INBOX.>", "sessionmon.control.forget"} {
		require.Contains(t, joined, want)
	}

	// Per-app credentials signed with the same keys work too.
	a, err := natsauth.Load(dir)
	require.NoError(t, err)
	p, err := natsauth.NamedApp("shop")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "shop.creds")
	require.NoError(t, a.WriteCreds(file, p))
	shop, err := nats.Connect(s.ClientURL(), nats.UserCredentials(file), nats.CustomInboxPrefix(natsauth.AppInbox("shop")))
	require.NoError(t, err)
	t.Cleanup(shop.Close)
	shopJS, err := jetstream.New(shop)
	require.NoError(t, err)
	_, err = shopJS.Publish(ctx, schemas.EventSubject("shop", "s2"), []byte(`{}`))
	require.NoError(t, err)
	require.ErrorIs(t, a.WriteCreds(file, p), os.ErrExist, "an existing file is never replaced")
}

func TestLoadWithoutKeys(t *testing.T) {
	t.Parallel()
	_, err := natsauth.Load(t.TempDir())
	require.ErrorIs(t, err, natsauth.ErrNoKeys)
}
