package sdkgo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/sdk"
)

const testApp = "shop"

// testKey is a fixed 32-byte key, so pseudonyms in tests and examples are stable.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// checkFor calls fn every step until it returns nil, failing the test with
// fn's last error after total.
func checkFor(t *testing.T, total, step time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		timer := time.NewTimer(step)
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			t.Fatalf("checkFor: test ended: %v", err)
		}
	}
	t.Fatalf("checkFor: condition not met after %s: %v", total, err)
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
