package detect

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// publishMode is how a test publishes its traffic: one event per message,
// or batched messages (schemas.NewBatchMsg) of the events of one app and
// one partition.
type publishMode struct {
	name    string
	batched bool
}

var publishModes = []publishMode{{name: "single"}, {name: "batched", batched: true}}

// publish publishes events in mode.
func (m publishMode) publish(t testing.TB, js jetstream.JetStream, events ...*schemas.Event) {
	t.Helper()
	if !m.batched {
		publishEvents(t, js, events...)
		return
	}
	publishBatches(t, js, events...)
}

// eventPartitions returns the partition count of the events stream (0:
// not partitioned).
func eventPartitions(t testing.TB, js jetstream.JetStream) int {
	t.Helper()
	s, err := js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	return natsconn.StreamPartitions(s.CachedInfo())
}

// publishBatches publishes events as batched messages, as the SDK does: one
// batch per app and partition of the events stream, events in order
// within each.
func publishBatches(t testing.TB, js jetstream.JetStream, events ...*schemas.Event) {
	t.Helper()
	n := eventPartitions(t, js)
	type key struct {
		app string
		p   int
	}
	var order []key
	groups := map[key][]*schemas.Event{}
	for _, e := range events {
		k := key{app: e.App}
		if n > 1 {
			k.p = schemas.EventPartition(e.Subject, n)
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	for _, k := range order {
		publishBatchIn(t, js, k.app, k.p, n, groups[k]...)
	}
}

// publishBatchIn publishes events as one batched message of app in
// partition p of n, whatever their subjects.
func publishBatchIn(t testing.TB, js jetstream.JetStream, app string, p, n int, events ...*schemas.Event) uint64 {
	t.Helper()
	ids, lines := encodeLines(t, events)
	return publishMsg(t, js, schemas.NewBatchMsg(app, p, n, ids, lines))
}

func encodeLines(t testing.TB, events []*schemas.Event) (ids []string, lines [][]byte) {
	t.Helper()
	for _, e := range events {
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		ids, lines = append(ids, e.ID), append(lines, b)
	}
	return ids, lines
}

// publishMsg publishes m and returns its stream sequence.
func publishMsg(t testing.TB, js jetstream.JetStream, m *nats.Msg) uint64 {
	t.Helper()
	ack, err := js.PublishMsg(t.Context(), m)
	require.NoError(t, err)
	require.False(t, ack.Duplicate, "stored once")
	return ack.Sequence
}

// detectDurables returns the event consumers of a service configured by
// cfg.
func detectDurables(cfg ServiceConfig) []string {
	p := cfg.Partitions
	if p.whole() {
		return []string{cfg.Durable}
	}
	var out []string
	for _, n := range p.Owned {
		out = append(out, partitionDurable(cfg.Durable, n))
	}
	if p.sources() {
		out = append(out, sourcesDurable(cfg.Durable))
	}
	return out
}

// sortedAlertIDs returns the ids of alerts, sorted.
func sortedAlertIDs(alerts []schemas.Alert) []string {
	ids := alertIDs(alerts)
	slices.Sort(ids)
	return ids
}

// TestServiceBatchedTrafficAlertsAsSingleEvents publishes the same traffic
// (a brute force, a refresh token reuse and credential stuffing) one event
// per message and batched, to one engine and to an engine per partition:
// every run raises the same alerts, processes each event once and
// acknowledges every message.
func TestServiceBatchedTrafficAlertsAsSingleEvents(t *testing.T) {
	t.Parallel()
	const n = 4
	yes := true
	layouts := []struct {
		name       string
		partitions Partitions
	}{
		{name: "whole"},
		{name: "partitions", partitions: Partitions{Count: n, Owned: []int{0, 1, 2, 3}, SourceDetectors: &yes}},
	}
	at := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	traffic := func() []*schemas.Event {
		var events []*schemas.Event
		events = append(events, failedLogins("bf", "k1:victim-batch-AbCdEfGh", at, 1, 12)...)
		events = append(events,
			refreshed("trr-rotate", "k1:tok-Rf2Ff3Gg4Hh5Ii6Jj", "k1:dev-Lp0Ok9Ij8Uh7Yg6Tf5R", at.Add(10*time.Second)),
			refreshed("trr-reuse", "k1:tok-Rf3Kk4Ll5Mm6Nn7Oo", "k1:dev-Mn8Bv7Cx6Zl5Kj4Hg3F", at.Add(70*time.Second)))
		events = append(events, stuffingFailures("198.51.100.0/24", at.Add(30*time.Second), 1, 20)...)
		return events
	}
	want := len(traffic())
	results := map[string][]string{}
	for _, layout := range layouts {
		for _, mode := range publishModes {
			name := layout.name + "/" + mode.name
			t.Run(name, func(t *testing.T) {
				s := natstest.RunServer(t)
				_, js := natstest.Connect(t, s)
				scfg := natsconn.DefaultStreamConfig
				scfg.Partitions = n
				_, err := natsconn.EnsureEventStream(t.Context(), js, scfg)
				require.NoError(t, err)
				cfg := svcConfig()
				cfg.Partitions = layout.partitions
				m := NewMetrics(nil)
				_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m))

				mode.publish(t, js, traffic()...)
				alerts := waitForSentinels(t, js, "batched", n)
				require.Equal(t, 1, countAlerts(alerts, bruteForceName, "k1:victim-batch-AbCdEfGh"), "alerts: %+v", alerts)
				require.Equal(t, 1, countAlerts(alerts, tokenReuseName, refreshSubject), "alerts: %+v", alerts)
				stuffing := 0
				for _, a := range alerts {
					if a.Detector == credentialStuffingName {
						stuffing++
					}
				}
				require.Equal(t, 1, stuffing, "alerts: %+v", alerts)
				for _, d := range detectDurables(cfg) {
					waitDrained(t, js, d)
				}
				processed := float64(want + n)
				if !layout.partitions.whole() {
					// The source engine sees every event too.
					processed *= 2
				}
				require.Equal(t, processed, testutil.ToFloat64(m.events), "every event processed once by each engine")
				require.Zero(t, testutil.ToFloat64(m.skipped))
				require.Zero(t, testutil.ToFloat64(m.misplaced))
				for _, r := range pii.Reasons {
					require.Zero(t, testutil.ToFloat64(m.invalid.WithLabelValues(r)), r)
				}
				results[name] = sortedAlertIDs(alerts)
			})
		}
	}
	var first []string
	for name, ids := range results {
		if first == nil {
			first = ids
			require.NotEmpty(t, first)
			continue
		}
		require.Equal(t, first, ids, "%s raises the same alerts", name)
	}
}

// TestServiceBatchRefusals: a refused event in a batch is counted and
// skipped while the others are processed; a batch whose framing cannot be
// read is counted once and acknowledged; both live and when replayed.
func TestServiceBatchRefusals(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	n := eventPartitions(t, js)
	cfg := restartModes[1].config(svcConfig())
	m := NewMetrics(nil)
	_, stop := startService(t, js, closedDSN, cfg, WithMetrics(m))

	const victim = "k1:victim-refusals-AbCd"
	p := schemas.EventPartition(victim, n)
	at := time.Now().Add(-time.Minute)
	attack := failedLogins("rf", victim, at, 1, 10)
	ids, lines := encodeLines(t, attack)
	// A line that is not JSON, one that breaks the schema and one of
	// another app, among the attack's ten failures.
	evil := svcEvent("rf-evil", schemas.LoginFailed, victim, at)
	evil.App, evil.Reason = "evil", "bad_password"
	evilLine, err := schemas.Encode(evil)
	require.NoError(t, err)
	ids = slices.Insert(ids, 3, "x1", "x2", "x3")
	lines = slices.Insert(lines, 3, []byte("not json"), []byte(`{"id":"x2"}`), evilLine)
	publishMsg(t, js, schemas.NewBatchMsg("shop", p, n, ids, lines))
	// A batch whose count does not match its lines, holding two more
	// failures that must not count.
	more := failedLogins("framing", victim, at.Add(time.Second), 1, 2)
	ids, lines = encodeLines(t, more)
	broken := schemas.NewBatchMsg("shop", p, n, ids, lines)
	broken.Header.Set(schemas.BatchCountHeader, "3")
	publishMsg(t, js, broken)

	alerts := waitForSentinel(t, js, "refusals")
	require.Equal(t, 1, countAlerts(alerts, bruteForceName, victim), "the ten valid failures of the batch alert: %+v", alerts)
	for _, a := range alerts {
		if a.Detector == bruteForceName {
			require.Equal(t, "rf-10", a.Evidence[len(a.Evidence)-1])
			require.NotContains(t, a.Evidence, "framing-01")
		}
	}
	require.Equal(t, 1.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonInvalidJSON)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonSchema)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonAppMismatch)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonFraming)), "the broken batch, counted once")
	require.Equal(t, 11.0, testutil.ToFloat64(m.events), "the ten failures and the sentinel")
	waitDrained(t, js, cfg.Durable)

	// The replay skips them the same way: one more failure is the
	// eleventh, not a new finding, and nothing alerts again.
	stop()
	m2 := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m2))
	require.Equal(t, 11.0, testutil.ToFloat64(m2.replayed), "the ten failures and the sentinel")
	publishEvents(t, js, failedLogins("rf", victim, at.Add(30*time.Second), 11, 1)...)
	after := waitForSentinel(t, js, "refusals-after")
	require.Equal(t, 1, countAlerts(after, bruteForceName, victim), "alerts: %+v", after)
	waitDrained(t, js, cfg.Durable)
}

// replacement returns a batch of events that replaces the message stored
// at seq (schemas.ReplacesHeader), as an erasure publishes it.
func replacement(t testing.TB, p, n int, seq uint64, events ...*schemas.Event) *nats.Msg {
	t.Helper()
	ids, lines := encodeLines(t, events)
	m := schemas.NewBatchMsg("shop", p, n, ids, lines)
	m.Subject = partitionedSubject(p, "shop", schemas.ReplacementToken)
	m.Header.Set(schemas.ReplacesHeader, strconv.FormatUint(seq, 10))
	return m
}

// TestServiceSkipsReplacementOfHandledMessage: a batch that replaces one
// already processed (live, or replayed at start) is acknowledged and
// skipped, so that its events are not judged twice; one that replaces a
// message never handled is processed.
func TestServiceSkipsReplacementOfHandledMessage(t *testing.T) {
	t.Parallel()
	for _, mode := range restartModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			js := svcStack(t)
			n := eventPartitions(t, js)
			cfg := mode.config(svcConfig())
			m := NewMetrics(nil)
			_, stop := startService(t, js, closedDSN, cfg, WithMetrics(m))

			const victim = "k1:victim-replaced-AbCd"
			p := schemas.EventPartition(victim, n)
			at := time.Now().Add(-2 * time.Minute)
			orig := publishBatchIn(t, js, "shop", p, n, failedLogins("orig", victim, at, 1, 6)...)
			waitForSentinel(t, js, "replaced-orig")
			// Six more failures, under other ids: judged, they would
			// make twelve and alert.
			publishMsg(t, js, replacement(t, p, n, orig, failedLogins("copy", victim, at, 1, 6)...))
			alerts := waitForSentinel(t, js, "replaced-live")
			require.Zero(t, countAlerts(alerts, bruteForceName, victim), "the replacement is not judged: %+v", alerts)
			require.Equal(t, 8.0, testutil.ToFloat64(m.events), "the original's six events and two sentinels")
			require.Equal(t, 1.0, testutil.ToFloat64(m.skipped))
			waitDrained(t, js, cfg.Durable)

			// After a restart, the replay skips it too (it read the
			// original, or the snapshot holds it).
			stop()
			m2 := NewMetrics(nil)
			_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m2))
			require.Equal(t, mode.replayed(8), testutil.ToFloat64(m2.replayed))
			// A replacement of a message never handled (its original
			// gone before it was read) is processed: two failures.
			publishMsg(t, js, replacement(t, p, n, 1<<40, failedLogins("gone", victim, at.Add(20*time.Second), 1, 2)...))
			publishEvents(t, js, failedLogins("orig", victim, at.Add(30*time.Second), 7, 2)...)
			after := waitForSentinel(t, js, "replaced-after")
			require.Equal(t, 1, countAlerts(after, bruteForceName, victim), "six, two and two failures alert once: %+v", after)
			for _, a := range after {
				if a.Detector == bruteForceName {
					require.Equal(t, "orig-08", a.Evidence[len(a.Evidence)-1], "the tenth failure")
					for _, id := range a.Evidence {
						require.NotContains(t, id, "copy", "the skipped replacement is not evidence")
					}
				}
			}
			require.Equal(t, 5.0, testutil.ToFloat64(m2.events), "the unhandled replacement's two, two failures and the sentinel")
			require.Zero(t, testutil.ToFloat64(m2.skipped))
			waitDrained(t, js, cfg.Durable)
		})
	}
}

// TestServiceCountsMisplacedEvents: a publisher that batches by a stale
// partition count puts events in a partition their subject does not belong
// to. The partition's engine processes them (nothing is lost), counts them
// and acknowledges the batch; a restart replays them there too.
func TestServiceCountsMisplacedEvents(t *testing.T) {
	t.Parallel()
	const n = 4
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	scfg := natsconn.DefaultStreamConfig
	scfg.Partitions = n
	_, err := natsconn.EnsureEventStream(t.Context(), js, scfg)
	require.NoError(t, err)
	cfg := restartModes[1].config(svcConfig())
	cfg.Partitions = Partitions{Count: n, Owned: []int{0, 1, 2, 3}}
	m := NewMetrics(nil)
	_, stop := startService(t, js, closedDSN, cfg, WithMetrics(m))

	// The publisher believed in two partitions: a subject of partition 3
	// of four, batched for partition 1.
	victim := subjectIn(t, "misplaced", 3, n)
	at := time.Now().Add(-2 * time.Minute)
	publishBatchIn(t, js, "shop", 1, n, failedLogins("mp", victim, at, 1, 10)...)
	alerts := waitForSentinels(t, js, "misplaced", n)
	require.Equal(t, 1, countAlerts(alerts, bruteForceName, victim), "alerts: %+v", alerts)
	require.Equal(t, 10.0, testutil.ToFloat64(m.misplaced))
	require.Equal(t, float64(10+n), testutil.ToFloat64(m.events))
	for _, d := range detectDurables(cfg) {
		waitDrained(t, js, d)
	}

	stop()
	m2 := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m2))
	require.Equal(t, float64(10+n), testutil.ToFloat64(m2.replayed), "the misplaced events are replayed where live processing took them")
	require.Zero(t, testutil.ToFloat64(m2.misplaced), "counted once, live")
	after := waitForSentinels(t, js, "misplaced-after", n)
	require.Equal(t, 1, countAlerts(after, bruteForceName, victim), "not alerted again")
}

// TestServiceAcksBatchWhenEveryEventIsDone: a batch whose events are
// released at different times is acknowledged once the last of them is.
func TestServiceAcksBatchWhenEveryEventIsDone(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	n := eventPartitions(t, js)
	cfg := svcConfig()
	// Long enough that the event dated ahead is not acknowledged for
	// being held (at half the ack wait).
	cfg.AckWait = 5 * time.Minute
	m := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m))
	const victim = "k1:victim-acks-AbCdEfGh"
	now := time.Now()
	// The first event is released as soon as the second raises the
	// watermark; the second, dated ahead of the wall clock, waits in the
	// engine.
	early := svcEvent("ack-early", schemas.LoginFailed, victim, now.Add(-time.Minute))
	ahead := svcEvent("ack-ahead", schemas.LoginFailed, victim, now.Add(2*time.Second))
	seq := publishBatchIn(t, js, "shop", schemas.EventPartition(victim, n), n, early, ahead)
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v, p := testutil.ToFloat64(m.events), testutil.ToFloat64(m.pending); v != 2 || p != 1 {
			return fmt.Errorf("%v of 2 events processed, %v of them pending", v, p)
		}
		return nil
	})
	c, err := js.Consumer(t.Context(), schemas.EventStream, cfg.Durable)
	require.NoError(t, err)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, info.NumAckPending, "the batch waits for its last event")
	require.Less(t, info.AckFloor.Stream, seq)

	// Once the clock has passed it, the next event releases the second:
	// the batch is acknowledged.
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if time.Now().Before(ahead.Time.Time) {
			return errors.New("the second event is still ahead of the clock")
		}
		return nil
	})
	publishEvents(t, js, svcEvent("ack-later", schemas.LoginFailed, "k1:victim-later-AbCdEfGh", time.Now()))
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq {
			return fmt.Errorf("ack floor %d, batch at %d", info.AckFloor.Stream, seq)
		}
		return nil
	})
}

// ackCounter is a received message that counts its acknowledgements (a
// pure unit test of the engine loop's bookkeeping; the service tests use a
// real server).
type ackCounter struct {
	jetstream.Msg
	acks int
}

func (m *ackCounter) Ack() error { m.acks++; return nil }

// TestLiveAcksMessageWhenEveryEventIsDone drives the engine loop by hand:
// a batch is acknowledged once its last event is released, a redelivery
// while events are in the engine takes over the acknowledgement, and a
// batch of refused events or unreadable framing is acknowledged at once.
func TestLiveAcksMessageWhenEveryEventIsDone(t *testing.T) {
	t.Parallel()
	now := time.Now()
	eng, err := NewEngine(DefaultConfig(), nil, WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	s := &Service{cfg: svcConfig(), metrics: NewMetrics(nil)}
	until := now.Add(time.Hour)
	held := &leaseSet{}
	held.until.Store(&until)
	s.leases.Store(held)
	u := &unit{partition: -1}
	steps := make(chan pubStep, 1)
	l := newLive(s, u, eng, replayEnd{seen: newSeqSet(0)}, steps, nil, "")
	ctx := t.Context()
	ev := func(id string, at time.Time) admitted {
		return admitted{ev: svcEvent(id, schemas.LoginFailed, "k1:victim-unit-AbCdEfGh", at)}
	}

	first := &ackCounter{}
	batch := delivery{msg: first, seq: 1, received: now, events: []admitted{
		ev("u-early", now.Add(-time.Minute)),
		{err: &pii.RefusedError{Reason: pii.ReasonSchema}},
		ev("u-ahead", now.Add(time.Minute)),
	}}
	require.NoError(t, l.handle(ctx, batch))
	require.Equal(t, 1, eng.Stats().Pending, "the early event is released, the one ahead waits")
	require.Zero(t, first.acks, "not acknowledged while an event waits")
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.events))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.invalid.WithLabelValues(pii.ReasonSchema)))

	second := &ackCounter{}
	redelivered := batch
	redelivered.msg = second
	require.NoError(t, l.handle(ctx, redelivered))
	require.Zero(t, first.acks+second.acks, "the redelivery waits for the event too")
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.events), "not processed again")

	require.NoError(t, l.settle(ctx, eng.AdvanceTo(now.Add(time.Minute))))
	require.Zero(t, first.acks)
	require.Equal(t, 1, second.acks, "the last delivery is acknowledged once the last event is released")
	require.Empty(t, l.bySeq)

	third := &ackCounter{}
	redelivered.msg = third
	require.NoError(t, l.handle(ctx, redelivered))
	require.Equal(t, 1, third.acks, "a delivery of a message done is acknowledged at once")
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.skipped))

	refused := &ackCounter{}
	require.NoError(t, l.handle(ctx, delivery{msg: refused, seq: 2, received: now,
		events: []admitted{{err: &pii.RefusedError{Reason: pii.ReasonPII}}}}))
	require.Equal(t, 1, refused.acks)
	framing := &ackCounter{}
	require.NoError(t, l.handle(ctx, delivery{msg: framing, seq: 3, received: now,
		err: &pii.RefusedError{Reason: pii.ReasonFraming}}))
	require.Equal(t, 1, framing.acks)
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.invalid.WithLabelValues(pii.ReasonFraming)))
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.events))
}

// TestReplacesHeaderOnlyOnReplacementSubject: the header that makes the
// detectors skip a message counts only on the replacement subject, which
// app credentials may not publish; anywhere else it is ignored.
func TestReplacesHeaderOnlyOnReplacementSubject(t *testing.T) {
	h := nats.Header{schemas.ReplacesHeader: []string{"42"}}
	require.Equal(t, uint64(42), replacedSeq(partitionedSubject(3, "shop", schemas.ReplacementToken), h))
	for _, subject := range []string{
		partitionedSubject(3, "shop", schemas.BatchToken(3, 4)),
		schemas.EventSubject("shop", schemas.BatchToken(0, 0)),
		partitionedSubject(3, "shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"),
	} {
		require.Zero(t, replacedSeq(subject, h), subject)
	}
	require.Zero(t, replacedSeq(partitionedSubject(3, "shop", schemas.ReplacementToken), nats.Header{schemas.ReplacesHeader: []string{"x"}}))
}
