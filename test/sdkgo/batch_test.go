package sdkgo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// batchPartitions is the partition count of the events stream in the
// batching tests.
const batchPartitions = 4

// holdBatches raises the events stream's message size limit so that it
// stores batched messages.
func holdBatches(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	s, err := js.Stream(context.Background(), schemas.EventStream)
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = natsconn.MinBatchMsgSize
	_, err = js.UpdateStream(context.Background(), cfg)
	require.NoError(t, err)
}

// partitionedEnv starts a server with the events stream in
// batchPartitions partitions that holds batched messages and, if
// responder, sessionmon's layout responder.
func partitionedEnv(t testing.TB, responder bool) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	e := &env{url: srv.ClientURL(), numClients: srv.NumClients, nc: nc, js: js}
	s, err := natsconn.EnsureEventStream(context.Background(), js,
		natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: batchPartitions})
	require.NoError(t, err)
	e.stream = s
	holdBatches(t, js)
	if responder {
		stop, err := natsconn.ServeLayout(context.Background(), nc, js, nil)
		require.NoError(t, err)
		t.Cleanup(stop)
	}
	return e
}

// waitForLayout waits until the client logged that it got the stream's
// layout.
func waitForLayout(t testing.TB, logs *logRecorder) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for logs.count("events stream layout") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client got no layout")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// storedMsg is a message of the events stream, split into its events.
type storedMsg struct {
	subject   string
	partition int
	token     string
	batched   bool
	events    []wireIDSubject
}

type wireIDSubject struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
}

// storedMsgs reads every message of the stream.
func storedMsgs(t *testing.T, s jetstream.Stream) []storedMsg {
	t.Helper()
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	var out []storedMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		// sessionmon.events.<p>.<app>.<token>
		toks := strings.Split(strings.TrimPrefix(raw.Subject, schemas.EventSubjectPrefix), ".")
		require.Len(t, toks, 3, raw.Subject)
		p, err := strconv.Atoi(toks[0])
		require.NoError(t, err, raw.Subject)
		require.Equal(t, testApp, toks[1])
		lines, batched, err := sdk.SplitBatch(raw.Header, raw.Data)
		require.NoError(t, err, raw.Subject)
		m := storedMsg{subject: raw.Subject, partition: p, token: toks[2], batched: batched}
		for _, l := range lines {
			var ev wireIDSubject
			require.NoError(t, json.Unmarshal(l, &ev))
			m.events = append(m.events, ev)
		}
		out = append(out, m)
	}
	return out
}

// checkStored checks that msgs hold the events ids exactly once, each in
// its subject's partition, and returns the number of batched messages.
func checkStored(t *testing.T, msgs []storedMsg, ids []string) int {
	t.Helper()
	seen := make(map[string]int)
	batches := 0
	for _, m := range msgs {
		require.Equal(t, m.batched, sdk.IsBatchToken(m.token), m.subject)
		if m.batched {
			batches++
			require.Equal(t, m.partition, sdk.Partition(m.token, batchPartitions), "a batch's token maps to its partition: %s", m.subject)
		} else {
			require.Len(t, m.events, 1)
			require.Equal(t, m.token, m.events[0].Subject)
		}
		for _, ev := range m.events {
			require.Equal(t, m.partition, sdk.Partition(ev.Subject, batchPartitions), "event %s in %s", ev.ID, m.subject)
			seen[ev.ID]++
		}
	}
	require.Len(t, seen, len(ids))
	for _, id := range ids {
		require.Equal(t, 1, seen[id], "event %s", id)
	}
	return batches
}

// publishMany publishes n events of many subjects with PublishAsync and
// flushes; it returns their ids.
func publishMany(t *testing.T, c *sdk.Client, n int) []string {
	t.Helper()
	p := newPseudonymizer(t)
	ids := make([]string, n)
	for i := range n {
		ev := loginEvent(p, i%97)
		ev.ID = fmt.Sprintf("ev-%05d", i)
		ids[i] = ev.ID
		require.NoError(t, c.PublishAsync(t.Context(), ev))
	}
	require.NoError(t, c.Flush(t.Context()))
	return ids
}

// TestPublishAsyncBatches publishes 1,000 events of many subjects: the
// stream holds fewer messages than events, each batch in the partition of
// all its events, and every event once.
func TestPublishAsyncBatches(t *testing.T) {
	t.Parallel()
	e := partitionedEnv(t, true)
	logs := &logRecorder{}
	c := e.client(t, sdk.WithLogger(slog.New(logs)))
	waitForLayout(t, logs)

	ids := publishMany(t, c, 1000)
	msgs := storedMsgs(t, e.stream)
	require.Less(t, len(msgs), len(ids), "batched")
	batches := checkStored(t, msgs, ids)
	require.Positive(t, batches)
	require.Equal(t, sdk.Stats{Accepted: 1000, Published: 1000}, c.Stats())
	t.Logf("1000 events in %d messages (%d batches)", len(msgs), batches)
}

// Without a layout answer, or with batching off, every event is a message.
func TestPublishAsyncSingleWithoutLayoutOrBatching(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		responder bool
		opts      []sdk.Option
	}{
		"no responder":     {},
		"without batching": {responder: true, opts: []sdk.Option{sdk.WithoutBatching()}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := partitionedEnv(t, tc.responder)
			c := e.client(t, tc.opts...)
			// The layout request (if any) was answered or given up on.
			time.Sleep(100 * time.Millisecond)
			ids := publishMany(t, c, 300)
			msgs := storedMsgs(t, e.stream)
			require.Len(t, msgs, len(ids))
			require.Zero(t, checkStored(t, msgs, ids))
		})
	}
}

// A batch sent again (same events, same order) is stored once, and the
// SDK counts each of its events as a duplicate.
func TestBatchSentAgainStoredOnce(t *testing.T) {
	t.Parallel()
	e := partitionedEnv(t, true)
	ids := []string{"b-1", "b-2", "b-3"}
	lines := [][]byte{[]byte(`{"id":"b-1"}`), []byte(`{"id":"b-2"}`), []byte(`{"id":"b-3"}`)}
	for i := range 2 {
		ack, err := e.js.PublishMsg(t.Context(), sdk.NewBatchMsg(testApp, 2, batchPartitions, ids, lines))
		require.NoError(t, err)
		require.Equal(t, i == 1, ack.Duplicate)
	}
	require.Equal(t, uint64(1), e.count(t))

	// Through the SDK: five events of one subject, sent twice, make the
	// same batch twice.
	logs := &logRecorder{}
	c := e.client(t, sdk.WithLogger(slog.New(logs)), sdk.WithBatching(5, sdk.DefaultBatchBytes, 500*time.Millisecond))
	waitForLayout(t, logs)
	p := newPseudonymizer(t)
	for range 2 {
		for i := range 5 {
			ev := loginEvent(p, 1)
			ev.ID = fmt.Sprintf("dup-%d", i)
			require.NoError(t, c.PublishAsync(t.Context(), ev))
		}
		require.NoError(t, c.Flush(t.Context()))
	}
	require.Equal(t, uint64(2), e.count(t), "one batch of five events, stored once")
	require.Equal(t, sdk.Stats{Accepted: 10, Published: 10, Duplicates: 5}, c.Stats())
}

// Per-app credentials ask the layout on their own inbox and publish
// batches.
func TestBatchingWithAppCredentials(t *testing.T) {
	t.Parallel()
	s, stream, nd, shopCreds := securedServer(t)
	svc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(nd, natsauth.ServiceUser)))
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	js, err := jetstream.New(svc)
	require.NoError(t, err)
	holdBatches(t, js)
	stop, err := natsconn.ServeLayout(t.Context(), svc, js, nil)
	require.NoError(t, err)
	t.Cleanup(stop)

	logs := &logRecorder{}
	c, err := sdk.Connect(s.ClientURL(), sdk.WithApp(testApp), sdk.WithCredentialsFile(shopCreds),
		sdk.WithInboxPrefix(natsauth.AppInbox(testApp)), sdk.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	waitForLayout(t, logs)
	ids := publishMany(t, c, 200)
	require.NoError(t, c.Close(t.Context()))

	msgs := storedMsgs(t, stream)
	require.Less(t, len(msgs), len(ids))
	require.Positive(t, checkStored(t, msgs, ids))
	require.Zero(t, logs.count("nats async error"), "no permission error")
}

// BenchmarkSingleEventLatency measures the time from PublishAsync of one
// event to its acknowledgement (Flush), at a low rate: with batching on
// the sender waits up to the linger for more events before sending.
func BenchmarkSingleEventLatency(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []sdk.Option
	}{
		{"batching", nil},
		{"batching_linger_0", []sdk.Option{sdk.WithBatching(sdk.DefaultBatchEvents, sdk.DefaultBatchBytes, 0)}},
		{"without_batching", []sdk.Option{sdk.WithoutBatching()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := partitionedEnv(b, true)
			logs := &logRecorder{}
			c, err := sdk.NewClient(e.nc, append([]sdk.Option{sdk.WithApp(testApp), sdk.WithLogger(slog.New(logs))}, tc.opts...)...)
			require.NoError(b, err)
			defer func() { _ = c.Close(context.Background()) }()
			if tc.name != "without_batching" {
				waitForLayout(b, logs)
			}
			p := newPseudonymizer(b)
			ev := loginEvent(p, 1)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				require.NoError(b, c.PublishAsync(ctx, ev))
				require.NoError(b, c.Flush(ctx))
			}
		})
	}
}

// publishIDs publishes n events of a few subjects with PublishAsync, with
// ids prefix-0 ... and returns the ids.
func publishIDs(t *testing.T, c *sdk.Client, prefix string, n int) []string {
	t.Helper()
	p := newPseudonymizer(t)
	ids := make([]string, n)
	for i := range n {
		ev := loginEvent(p, i%5)
		ev.ID = fmt.Sprintf("%s-%d", prefix, i)
		ids[i] = ev.ID
		require.NoError(t, c.PublishAsync(t.Context(), ev))
	}
	return ids
}

// A batch that failed for a transient reason is retried until it lands,
// each event once; one that keeps failing fails each of its events.
func TestBatchRetriesAndFailures(t *testing.T) {
	t.Parallel()
	e := partitionedEnv(t, true)
	logs := &logRecorder{}
	fails := &failures{}
	c := e.client(t, sdk.WithLogger(slog.New(logs)), sdk.WithOnError(fails.record),
		sdk.WithBatching(sdk.DefaultBatchEvents, sdk.DefaultBatchBytes, 50*time.Millisecond),
		sdk.WithRetry(2, 20*time.Millisecond), sdk.WithPublishTimeout(time.Second))
	waitForLayout(t, logs)

	// No stream: every attempt fails, and each event is reported.
	require.NoError(t, e.js.DeleteStream(t.Context(), schemas.EventStream))
	lost := publishIDs(t, c, "lost", 20)
	err := c.Flush(t.Context())
	pe, ok := errors.AsType[*sdk.PublishError](err)
	require.Truef(t, ok, "want a *sdk.PublishError, got %v", err)
	require.Equal(t, 20, pe.Failed)
	ids, errs := fails.snapshot()
	require.ElementsMatch(t, lost, ids)
	for _, err := range errs {
		require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	}
	require.Equal(t, sdk.Stats{Accepted: 20, Failed: 20}, c.Stats())
	require.Positive(t, logs.count("retry publish"))

	// The stream comes back while the batches are retried: each event is
	// stored once.
	c2 := e.client(t, sdk.WithLogger(slog.New(logs)),
		sdk.WithBatching(sdk.DefaultBatchEvents, sdk.DefaultBatchBytes, 50*time.Millisecond),
		sdk.WithRetry(100, 20*time.Millisecond), sdk.WithPublishTimeout(time.Second))
	require.Eventually(t, func() bool { return logs.count("events stream layout") >= 2 }, 10*time.Second, 5*time.Millisecond)
	kept := publishIDs(t, c2, "kept", 20)
	time.Sleep(100 * time.Millisecond) // a few failed attempts
	s, err := natsconn.EnsureEventStream(t.Context(), e.js,
		natsconn.StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: batchPartitions})
	require.NoError(t, err)
	holdBatches(t, e.js)
	require.NoError(t, c2.Flush(t.Context()))
	msgs := storedMsgs(t, s)
	require.Less(t, len(msgs), len(kept))
	require.Positive(t, checkStored(t, msgs, kept))
	require.Equal(t, sdk.Stats{Accepted: 20, Published: 20}, c2.Stats())
}
