package sdkgo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/sdk"
)

const testApp = "shop"

// testKey is a fixed 32-byte key, so pseudonyms in tests and examples are stable.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// securedServer starts sessionmon's embedded server (credentials
// required, as serve runs it) with the events stream, and writes the
// per-app credentials `sessionmon creds app shop` makes. It returns the
// server, the stream, the credentials directory and the per-app file.
func securedServer(t *testing.T) (*server.Server, jetstream.Stream, string, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := natsconn.StartEmbedded(config.NATS{Listen: "127.0.0.1:0"}, dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nd := natsauth.Dir(dir)
	admin, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(nd, natsauth.AdminUser)))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	js, err := jetstream.New(admin)
	require.NoError(t, err)
	stream, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
	a, err := natsauth.Load(nd)
	require.NoError(t, err)
	prof, err := natsauth.NamedApp(testApp)
	require.NoError(t, err)
	appCreds := filepath.Join(t.TempDir(), testApp+".creds")
	require.NoError(t, a.WriteCreds(appCreds, prof))
	return s, stream, nd, appCreds
}

// env is a real embedded NATS server, a connection to it and, when made
// by withStream, the events stream.
type env struct {
	url        string
	numClients func() int
	nc         *nats.Conn
	js         jetstream.JetStream
	stream     jetstream.Stream
}

// newEnv starts a server without the events stream.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	return &env{url: srv.ClientURL(), numClients: srv.NumClients, nc: nc, js: js}
}

// withStream starts a server with the events stream as sessionmon declares it.
func withStream(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.createStream(t)
	return e
}

func (e *env) createStream(t *testing.T) {
	t.Helper()
	s, err := natsconn.EnsureEventStream(t.Context(), e.js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	e.stream = s
}

// count returns how many events the stream holds.
func (e *env) count(t *testing.T) uint64 {
	t.Helper()
	info, err := e.stream.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

// client returns a Client on the env's connection, closed by t.Cleanup.
func (e *env) client(t *testing.T, opts ...sdk.Option) *sdk.Client {
	t.Helper()
	c, err := sdk.NewClient(e.nc, append([]sdk.Option{sdk.WithApp(testApp)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil && !errors.Is(err, sdk.ErrClosed) {
			t.Errorf("close client: %v", err)
		}
	})
	return c
}

func newPseudonymizer(t testing.TB) *sdk.Pseudonymizer {
	t.Helper()
	p, err := sdk.NewPseudonymizer("k1", testKey)
	require.NoError(t, err)
	return p
}

// loginEvent returns a valid login.succeeded event of user n.
func loginEvent(p *sdk.Pseudonymizer, n int) *sdk.Event {
	return &sdk.Event{
		Type:    sdk.LoginSucceeded,
		Subject: p.Subject(fmt.Sprintf("user-%d", n)),
		Session: p.Session(fmt.Sprintf("session-%d", n)),
	}
}

// runWorkers runs fn(0) ... fn(n-1) on their own goroutines and returns
// their errors joined.
func runWorkers(n int, fn func(w int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range n {
		wg.Go(func() { errs[w] = fn(w) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logRecorder is a slog handler that keeps the messages it receives.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count returns how many messages equal msg.
func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// failures records OnError calls.
type failures struct {
	mu  sync.Mutex
	ids []string
	err []error
}

func (f *failures) record(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, id)
	f.err = append(f.err, err)
}

func (f *failures) snapshot() ([]string, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...), append([]error(nil), f.err...)
}

// fieldsOf returns the fields a *sdk.ValidationError in err names.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	ve, ok := errors.AsType[*sdk.ValidationError](err)
	require.Truef(t, ok, "want a *sdk.ValidationError, got %v", err)
	return ve.Fields()
}
