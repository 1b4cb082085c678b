package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// testConfig flushes small batches quickly and redelivers after 2 s.
func testConfig() Config {
	c := DefaultConfig()
	c.BatchSize = 2000
	c.BatchAge = 100 * time.Millisecond
	c.MaxAckPending = 10000
	c.AckWait = 2 * time.Second
	c.RetryMin = 100 * time.Millisecond
	c.RetryMax = time.Second
	return c
}

// alertTestConfig is the alerts writer's configuration, writing and
// retrying quickly.
func alertTestConfig() Config {
	c := DefaultAlertConfig()
	c.BatchAge = 100 * time.Millisecond
	c.AckWait = 2 * time.Second
	c.RetryMin = 50 * time.Millisecond
	c.RetryMax = 500 * time.Millisecond
	return c
}

// stack is a real NATS server with the events stream, and how its
// publishers send events.
type stack struct {
	nc *nats.Conn
	js jetstream.JetStream
	// batched: the SDK packs events into batched messages (its default,
	// once a layout responder answers); otherwise one event per message.
	batched bool
	// end is the demo traffic's end.
	end time.Time
}

func newStack(t *testing.T) *stack { return newStackMode(t, false) }

// newStackMode starts the stack; with batched, the SDK gets the layout
// from a responder (as ingest runs one) and batches.
func newStackMode(t *testing.T, batched bool) *stack {
	t.Helper()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	if batched {
		stop, err := natsconn.ServeLayout(t.Context(), nc, js, nil)
		require.NoError(t, err)
		t.Cleanup(stop)
	}
	return &stack{nc: nc, js: js, batched: batched, end: time.Now()}
}

// modes runs test once with one event per message and once with batched
// messages.
func modes(t *testing.T, test func(t *testing.T, batched bool)) {
	for _, batched := range []bool{false, true} {
		name := "single"
		if batched {
			name = "batched"
		}
		t.Run(name, func(t *testing.T) { test(t, batched) })
	}
}

// publish sends n events of demo traffic through the SDK, one per message
// or in batches as the stack says.
func (st *stack) publish(t *testing.T, n int, seed int64) { st.publishOf(t, n, n, seed) }

// publishOf sends the first n events of the traffic publish(t, of, seed)
// sends: the same events again, as a retry would send them.
func (st *stack) publishOf(t *testing.T, n, of int, seed int64) {
	t.Helper()
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	require.NoError(t, err)
	events := demo.Generate(p, demo.Options{Users: of/25 + 10, Seed: seed, End: st.end})
	require.GreaterOrEqual(t, len(events), n)
	opts := []sdk.Option{sdk.WithApp(demo.App), sdk.WithAsyncBuffer(8192), sdk.WithBlockOnFull(time.Minute)}
	if !st.batched {
		opts = append(opts, sdk.WithoutBatching())
	}
	c, err := sdk.NewClient(st.nc, opts...)
	require.NoError(t, err)
	if st.batched {
		// The SDK batches once the responder answered.
		poll.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			if !c.Batching() {
				return errors.New("the SDK does not batch yet")
			}
			return nil
		})
	}
	before := st.streamMsgs(t)
	start := time.Now()
	for i := range events[:n] {
		// Ids follow the seed, so publishing a seed again is a retry.
		events[i].ID = fmt.Sprintf("t%d-%d", seed, i)
		require.NoError(t, c.PublishAsync(t.Context(), &events[i]))
	}
	require.NoError(t, c.Close(t.Context()))
	msgs := st.streamMsgs(t) - before
	t.Logf("published %d events in %d messages in %s", n, msgs, time.Since(start))
	require.Equal(t, uint64(n), c.Stats().Published)
	if st.batched && n >= 100 && c.Stats().Duplicates == 0 {
		require.Less(t, msgs, uint64(n/2), "events went in batches")
	}
}

// streamMsgs returns the events stream's message count.
func (st *stack) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := st.js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

// runService runs svc until the test ends and returns its result channel.
func runService(t *testing.T, svc *Service) (cancel func(), done <-chan error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- svc.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Error("ingest did not stop within 30 s")
		}
	})
	return stop, ch
}

func waitForCount(t *testing.T, store *chstore.Store, want uint64, total time.Duration) {
	t.Helper()
	poll.CheckFor(t, total, 200*time.Millisecond, func() error {
		n, err := store.CountEvents(context.Background())
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%d of %d events stored", n, want)
		}
		return nil
	})
	total2, distinct, err := store.CountEventsByID(context.Background())
	require.NoError(t, err)
	require.Equal(t, want, total2, "rows seen by queries")
	require.Equal(t, want, distinct, "distinct event ids")
}

func TestIngest100kExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("100k events: not in -short")
	}
	modes(t, testIngest100kExactlyOnce)
}

func testIngest100kExactlyOnce(t *testing.T, batched bool) {
	st := newStackMode(t, batched)
	store := chtest.New(t)
	const n = 100_000
	st.publish(t, n, 1)

	m := NewMetrics(nil)
	svc, err := New(st.js, chtest.DSN(t), testConfig(), WithMetrics(m))
	require.NoError(t, err)
	start := time.Now()
	runService(t, svc)
	waitForCount(t, store, n, 2*time.Minute)
	t.Logf("ingested %d events in %s", n, time.Since(start))
	require.NoError(t, svc.Ready(t.Context()))
	require.GreaterOrEqual(t, testutil.ToFloat64(m.ingested), float64(n), "redeliveries are counted too")

	// Publishing the same traffic again stores nothing new: the stream
	// drops duplicate ids, and anything that got through collapses.
	st.publishOf(t, 1000, n, 1)
	time.Sleep(time.Second)
	waitForCount(t, store, n, 30*time.Second)
}

func TestKillBetweenInsertAndAck(t *testing.T) { modes(t, testKillBetweenInsertAndAck) }

func testKillBetweenInsertAndAck(t *testing.T, batched bool) {
	st := newStackMode(t, batched)
	store := chtest.New(t)
	const n = 10_000
	st.publish(t, n, 2)

	errCrash := errors.New("crash between insert and ack")
	var crashed atomic.Bool
	first, err := New(st.js, chtest.DSN(t), testConfig())
	require.NoError(t, err)
	first.afterInsert = func() error {
		crashed.Store(true)
		return errCrash
	}
	require.ErrorIs(t, first.Run(t.Context()), errCrash)
	require.True(t, crashed.Load())
	inserted, err := store.CountEvents(t.Context())
	require.NoError(t, err)
	require.Positive(t, inserted, "the crashed worker wrote its first batch")

	// A new worker gets the unacknowledged batch again (after AckWait)
	// and writes it a second time; queries still see every event once.
	m := NewMetrics(nil)
	second, err := New(st.js, chtest.DSN(t), testConfig(), WithMetrics(m))
	require.NoError(t, err)
	runService(t, second)
	waitForCount(t, store, n, time.Minute)
	// With batched messages the crashed worker may have written every
	// event; its messages come again all the same, after AckWait.
	// (In single mode, every written event is a message delivered again.)
	want := 1.0
	if !batched {
		want = float64(inserted)
	}
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if got := testutil.ToFloat64(m.redelivered); got < want {
			return fmt.Errorf("%.0f of at least %.0f messages delivered again", got, want)
		}
		return nil
	})
	waitForCount(t, store, n, 30*time.Second)
}

func TestClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts a ClickHouse server: not in -short")
	}
	modes(t, testClickHouseOutage)
}

func testClickHouseOutage(t *testing.T, batched bool) {
	srv := chtest.StartServer(t)
	dsn := srv.DSN("sessionmon_outage")
	st := newStackMode(t, batched)

	// sessionmon starts while ClickHouse is down: not ready, and says why.
	srv.Stop()
	svc, err := New(st.js, dsn, testConfig())
	require.NoError(t, err)
	runService(t, svc)
	poll.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if err := svc.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "waiting for clickhouse") {
			return fmt.Errorf("readiness: %v", err)
		}
		return nil
	})
	st.publish(t, 3000, 3)
	srv.Start()
	store := chtest.Open(t, dsn)
	waitForCount(t, store, 3000, time.Minute)
	poll.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error { return svc.Ready(t.Context()) })

	// ClickHouse goes away for 20 s while apps keep publishing.
	srv.Stop()
	outage := time.Now()
	for i := range 10 {
		st.publish(t, 500, int64(100+i))
		time.Sleep(2 * time.Second)
	}
	require.Error(t, svc.Ready(t.Context()), "ingest must not report ready while ClickHouse is down")
	require.GreaterOrEqual(t, time.Since(outage), 20*time.Second)
	srv.Start()
	waitForCount(t, store, 3000+10*500, 2*time.Minute)
}

func TestDeadLetters(t *testing.T) {
	st := newStack(t)
	store := chtest.New(t)
	st.publish(t, 100, 4)

	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	ev := func(id, subject, extra string) string {
		return fmt.Sprintf(`{"id":%q,"schema_version":1,"type":"login.failed","time":%q,"app":"shop","subject":%q%s}`, id, now, subject, extra)
	}
	secrets := []string{"alice@example.com", "004915112345678", "203.0.113.77", "eyJhbGciOiJIUzI1NiJ9abcdefgh", "bob@example.org"}
	bad := []struct {
		body   string
		reason string
		field  string
	}{
		{`this is not json`, pii.ReasonInvalidJSON, "(event)"},
		{ev("bad-1", "k1:AAAAAAAAAAAAAAAAAAAAAA", `,"client":{"ip_prefix":"203.0.113.77/32"}`), pii.ReasonSchema, "client.ip_prefix"},
		{ev("bad-2", "alice@example.com", ""), pii.ReasonSchema, "subject"},
		{ev("bad-3", "004915112345678", ""), pii.ReasonPII, "subject"},
		{ev("bad-4", "k1:AAAAAAAAAAAAAAAAAAAAAA", `,"attrs":{"note":"from 203.0.113.77"}`), pii.ReasonPII, "attrs.note"},
		{ev("bad-5", "k1:AAAAAAAAAAAAAAAAAAAAAA", `,"session":"eyJhbGciOiJIUzI1NiJ9abcdefgh"`), pii.ReasonPII, "session"},
		{ev("bad-6", "k1:AAAAAAAAAAAAAAAAAAAAAA", `,"attrs":{"bob@example.org":"x"}`), pii.ReasonSchema, "attrs.[redacted:email]"},
	}
	for _, b := range bad {
		_, err := st.js.Publish(t.Context(), schemas.EventSubject("shop", "x"), []byte(b.body))
		require.NoError(t, err)
	}
	st.publish(t, 100, 5)

	m := NewMetrics(nil)
	svc, err := New(st.js, chtest.DSN(t), testConfig(), WithMetrics(m))
	require.NoError(t, err)
	runService(t, svc)
	waitForCount(t, store, 200, time.Minute)

	dead := waitDeadLetters(t, st.js, len(bad))
	for i, b := range bad {
		d := dead[len(dead)-1-i] // newest first
		require.Equal(t, b.reason, d.Reason, "dead letter %d: %s", i, d.Error)
		require.Contains(t, d.Fields, b.field, "dead letter %d: %s", i, d.Error)
		for _, s := range secrets {
			require.NotContains(t, string(d.Body), s, "dead letter %d keeps a raw value in its body", i)
			require.NotContains(t, d.Error, s, "dead letter %d keeps a raw value in its error", i)
		}
	}
	require.Equal(t, 1.0, testutil.ToFloat64(m.rejected.WithLabelValues(pii.ReasonInvalidJSON)))
	require.Equal(t, 3.0, testutil.ToFloat64(m.rejected.WithLabelValues(pii.ReasonSchema)))
	require.Equal(t, 3.0, testutil.ToFloat64(m.rejected.WithLabelValues(pii.ReasonPII)))
}

// TestDeadLettersInBatch: a bad event inside a batched message is
// dead-lettered alone, with its place in the batch, and the others are
// stored; a batch whose framing cannot be read is dead-lettered whole.
func TestDeadLettersInBatch(t *testing.T) {
	st := newStack(t)
	store := chtest.New(t)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	ev := func(id, extra string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"schema_version":1,"type":"login.failed","time":%q,"app":"shop","subject":"k1:AAAAAAAAAAAAAAAAAAAAA%d"%s}`, id, now, len(id)%10, extra)
	}
	lines := [][]byte{ev("ok-1", ""), ev("bad-1", `,"attrs":{"note":"alice@example.com"}`), ev("ok-2", ""), []byte(`not json`), ev("ok-3", "")}
	ids := []string{"ok-1", "bad-1", "ok-2", "?", "ok-3"}
	_, err := st.js.PublishMsg(t.Context(), schemas.NewBatchMsg("shop", 0, 0, ids, lines))
	require.NoError(t, err)

	broken := schemas.NewBatchMsg("shop", 0, 0, []string{"ok-4", "ok-5"}, [][]byte{ev("ok-4", ""), ev("ok-5", "")})
	broken.Header.Set(schemas.BatchCountHeader, "3")
	_, err = st.js.PublishMsg(t.Context(), broken)
	require.NoError(t, err)
	// A batch on a subject's own token, not a batch token, is refused
	// whole too: erasure purges by that token.
	wrong := schemas.NewBatchMsg("shop", 0, 0, []string{"ok-6"}, [][]byte{ev("ok-6", "")})
	wrong.Subject = schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAA4")
	_, err = st.js.PublishMsg(t.Context(), wrong)
	require.NoError(t, err)

	m := NewMetrics(nil)
	svc, err := New(st.js, chtest.DSN(t), testConfig(), WithMetrics(m))
	require.NoError(t, err)
	runService(t, svc)
	waitForCount(t, store, 3, time.Minute)

	dead := waitDeadLetters(t, st.js, 4)
	slices.Reverse(dead) // oldest first
	require.Equal(t, pii.ReasonPII, dead[0].Reason)
	require.Equal(t, 2, dead[0].EventIndex)
	require.Equal(t, []string{"attrs.note"}, dead[0].Fields)
	require.NotContains(t, string(dead[0].Body), "alice@example.com")
	require.Contains(t, string(dead[0].Body), `"bad-1"`, "the dead letter holds the refused event, not the batch")
	require.Equal(t, pii.ReasonInvalidJSON, dead[1].Reason)
	require.Equal(t, 4, dead[1].EventIndex)
	require.Equal(t, dead[0].EventSeq, dead[1].EventSeq)
	for _, d := range dead[2:] {
		require.Equal(t, pii.ReasonFraming, d.Reason, d.Error)
		require.Zero(t, d.EventIndex)
	}
	require.Contains(t, dead[2].Error, schemas.BatchCountHeader)
	require.Contains(t, dead[3].Error, "batch subject")
	require.Equal(t, 2.0, testutil.ToFloat64(m.rejected.WithLabelValues(pii.ReasonFraming)))
}

// waitDeadLetters waits until the dead-letter stream holds n dead letters
// and returns them, newest first.
func waitDeadLetters(t *testing.T, js jetstream.JetStream, n int) []DeadLetter {
	t.Helper()
	var dead []DeadLetter
	poll.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		var err error
		if dead, err = ListDeadLetters(t.Context(), js, 100); err != nil {
			return err
		}
		if len(dead) != n {
			return fmt.Errorf("%d dead letters", len(dead))
		}
		return nil
	})
	return dead
}
