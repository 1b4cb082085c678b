package detect

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
)

// statsEvery is how often the engine loop updates the metrics and
// acknowledges events held too long.
const statsEvery = time.Second

// delivery is one received message, decoded: one event, or the events of
// a batched message (schemas.BatchHeader), in order.
type delivery struct {
	msg      jetstream.Msg
	seq      uint64
	stored   time.Time // when the stream stored the message
	received time.Time
	// replaces is the stream sequence of the message this one replaces
	// (schemas.ReplacesHeader), 0 for none.
	replaces uint64
	events   []admitted
	// err refuses the whole message: a batch whose framing cannot be
	// read (pii.AdmitMessage).
	err error
}

// admitted is one event of a message, or why the gate refused it.
type admitted struct {
	ev  *schemas.Event
	err error
}

// admitMessage runs the gate over every event of msg (pii.AdmitMessage),
// with now as the receiver's clock. The events share msg's memory.
func admitMessage(msg jetstream.Msg, now time.Time) ([]admitted, error) {
	var out []admitted
	err := pii.AdmitMessage(msg.Subject(), msg.Headers(), msg.Data(), now, func(_ int, _ []byte, e *schemas.Event, err error) {
		out = append(out, admitted{ev: e, err: err})
	})
	return out, err
}

// replacedSeq returns the stream sequence a message on subject replaces
// (schemas.ReplacesHeader), or 0 when it replaces none, the value is not a
// sequence, or the subject is not a replacement's (the header is then
// anybody's, and ignored).
func replacedSeq(subject string, h nats.Header) uint64 {
	v := h.Get(schemas.ReplacesHeader)
	if v == "" || schemas.EventSubjectToken(subject) != schemas.ReplacementToken {
		return 0
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return seq
}

// receive pulls messages from the durable consumer, decodes their events
// and hands them to the engine loop, in order, until ctx ends. It owns
// nothing the engine loop reads but the deliveries it sends.
func (s *Service) receive(ctx context.Context, u *unit, cons jetstream.Consumer, out chan<- delivery) error {
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(pullBatch, pullBytes))
	if err != nil {
		return fmt.Errorf("detect consume: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return fmt.Errorf("detect consumer closed: %w", err)
		default:
			// Missed heartbeats and the like: the iterator goes on.
			u.logger.Warn("pull events", slog.Any("error", err))
			continue
		}
		if !s.leaseValid() {
			// Another process may own the unit by now: hand the
			// message back at once rather than after the ack wait.
			_ = msg.Nak()
			continue
		}
		d := delivery{msg: msg, received: time.Now()}
		md, err := msg.Metadata()
		if err != nil {
			// Not a JetStream message; nothing to acknowledge.
			u.logger.Warn("event without metadata", slog.Any("error", err))
			continue
		}
		d.seq, d.stored = md.Sequence.Stream, md.Timestamp
		d.replaces = replacedSeq(msg.Subject(), msg.Headers())
		// The gate ingest runs before storing: what it dead-letters, no
		// detector sees.
		d.events, d.err = admitMessage(msg, d.received)
		select {
		case out <- d:
		case <-ctx.Done():
			// Not acknowledged: JetStream redelivers it.
			return ctx.Err()
		}
	}
}

// refusedReason returns the pii.Reason* of an error of pii.Admit.
func refusedReason(err error) string {
	var r *pii.RefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return pii.ReasonSchema
}

// pendingMsg is a message whose events are in the engine or whose alerts
// are being confirmed: it is acknowledged once every one of its events is
// done (released, and the alerts their release raised stored).
//
// left is shared by the engine loop and the confirmer. msg and acked are
// written by the engine loop only while unreleased > 0, which keeps left
// above 0; they are read by whichever goroutine takes left to 0, after the
// last such write.
type pendingMsg struct {
	msg jetstream.Msg
	seq uint64
	// unreleased counts the events still in the engine (engine loop
	// only); the message is in live.bySeq while it is above 0.
	unreleased int
	left       atomic.Int32
	acked      bool
}

// done records that one of m's events is done, and acknowledges m after
// the last.
func (m *pendingMsg) done() {
	if m.left.Add(-1) == 0 && !m.acked {
		_ = m.msg.Ack()
	}
}

// inflight is an event given to the engine and not yet done: event index
// of the message of stream sequence seq.
type inflight struct {
	m        *pendingMsg
	seq      uint64
	index    int
	at       int64 // event time, ns
	received time.Time
	stored   time.Time
	id       string
}

// inflightHeap orders inflight events by event time, then stream sequence
// and index: the order the engine releases them in.
type inflightHeap []*inflight

func (h inflightHeap) Len() int { return len(h) }
func (h inflightHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	if h[i].seq != h[j].seq {
		return h[i].seq < h[j].seq
	}
	return h[i].index < h[j].index
}
func (h inflightHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *inflightHeap) Push(x any)   { *h = append(*h, x.(*inflight)) }
func (h *inflightHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// held is an event waiting in the engine, in arrival order, for MaxHold.
type held struct {
	received time.Time
	at       int64
}

// live is the engine loop's state. Only the engine loop touches it.
type live struct {
	s   *Service
	u   *unit
	eng *Engine
	// floor: every message at or before it was replayed at start; base:
	// the replay read nothing at or before it (the state holds what the
	// snapshot held, or the history before the window).
	floor, base uint64
	// seen holds the messages handled, replayed ones included.
	seen    seqSet
	unacked inflightHeap
	// bySeq holds the messages with events still in the engine.
	bySeq map[uint64]*pendingMsg
	// waiting holds the events the engine holds, oldest arrival first.
	waiting  []held
	released []*inflight
	stats    Stats
	// steps goes to the confirmer; run closes it.
	steps chan<- pubStep
	// sent numbers the steps sent; outstanding are those the confirmer
	// may not have confirmed yet (u.confirmed), whose alerts a snapshot
	// lists as in flight.
	sent        uint64
	outstanding []sentStep
	// snaps writes the snapshots (nil: off); mark is the erasure mark the
	// state is clean of; snapSize is the last snapshot's size.
	snaps    *snapshotWriter
	mark     string
	snapSize int
	// networks goes to the unit's shared egress publisher (nil: the
	// unit learns none); familiar_view.go.
	networks chan NetworkList
}

func newLive(s *Service, u *unit, eng *Engine, r replayEnd, steps chan<- pubStep, snaps *snapshotWriter, mark string) *live {
	r.seen.raise(r.last)
	return &live{s: s, u: u, eng: eng, floor: r.last, base: r.base, seen: r.seen, bySeq: make(map[uint64]*pendingMsg),
		stats: eng.Stats(), steps: steps, snaps: snaps, mark: mark}
}

// run is the engine loop: it processes deliveries, releases held events
// after MaxHold, serves erasure and familiarity requests, offers the
// shared egresses for publishing and takes snapshots until ctx
// ends, and then a last snapshot. It closes l.steps when it returns.
func (l *live) run(ctx context.Context, in <-chan delivery) error {
	defer close(l.steps)
	s := l.s
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	var armed time.Time // when hold fires; zero: stopped
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	var snapTick <-chan time.Time
	if l.snaps != nil {
		t := time.NewTicker(s.cfg.Snapshots.Interval)
		defer t.Stop()
		snapTick = t.C
		// A fresh starting point, so that the next start replays little
		// even if this process dies before the first tick.
		l.snapshot(true, nil)
	}
	netTick := time.NewTicker(s.networksEvery)
	defer netTick.Stop()
	l.offerNetworks()
	for {
		var err error
		select {
		case <-ctx.Done():
			// Every event handled so far was released or is in the
			// engine; what was released is published or in flight.
			l.snapshot(true, nil)
			return nil
		case d := <-in:
			err = l.handle(ctx, d)
		case <-hold.C:
			armed = time.Time{}
			err = l.advance(ctx, time.Now())
		case <-tick.C:
			l.updateStats()
		case <-snapTick:
			l.snapshot(false, nil)
		case r := <-l.u.forget:
			l.eng.Forget(r.subject)
			l.forgotten(ctx, r)
		case r := <-l.u.familiar:
			r.done <- l.eng.familiarIn(r.app, r.subject)
		case <-netTick.C:
			l.offerNetworks()
		}
		if err != nil {
			return err
		}
		// Keep the timer on the oldest waiting event's deadline.
		if len(l.waiting) > 0 {
			if due := l.waiting[0].received.Add(s.cfg.MaxHold); !due.Equal(armed) {
				hold.Reset(time.Until(due))
				armed = due
			}
		} else if !armed.IsZero() {
			hold.Stop()
			armed = time.Time{}
		}
	}
}

// handle processes one delivery: every event of its message, in order.
func (l *live) handle(ctx context.Context, d delivery) error {
	if !l.s.leaseValid() {
		// Another process may own the unit by now: process nothing, and
		// hand the delivery back so that the owner gets it at once.
		_ = d.msg.Nak()
		return errLeaseLost
	}
	m := l.s.metrics
	if d.seq <= l.floor {
		// The replay processed it.
		m.skipped.Inc()
		_ = d.msg.Ack()
		return nil
	}
	if l.seen.has(d.seq) {
		if pm, ok := l.bySeq[d.seq]; ok {
			// Events still in the engine: acknowledge this delivery
			// when they are done.
			pm.msg, pm.acked = d.msg, false
		} else {
			_ = d.msg.Ack()
		}
		m.skipped.Inc()
		return nil
	}
	l.seen.add(d.seq)
	if d.replaces != 0 && l.handled(d.replaces) {
		// Its events were judged with the message it replaces.
		m.skipped.Inc()
		_ = d.msg.Ack()
		return nil
	}
	if d.err != nil {
		// Ingest dead-letters it; detect only skips it.
		m.invalid.WithLabelValues(refusedReason(d.err)).Inc()
		_ = d.msg.Ack()
		return nil
	}
	valid := 0
	for _, a := range d.events {
		if a.err != nil {
			m.invalid.WithLabelValues(refusedReason(a.err)).Inc()
		} else {
			valid++
		}
	}
	if valid == 0 {
		_ = d.msg.Ack()
		return nil
	}
	pm := &pendingMsg{msg: d.msg, seq: d.seq, unreleased: valid}
	pm.left.Store(int32(valid))
	l.bySeq[d.seq] = pm
	for i, a := range d.events {
		if a.err != nil {
			continue
		}
		m.events.Inc()
		if l.misplaced(a.ev) {
			// A publisher batched it by a stale partition count: it is
			// processed where it arrived rather than lost.
			m.misplaced.Inc()
		}
		e := &inflight{m: pm, seq: d.seq, index: i, at: a.ev.Time.UnixNano(), received: d.received, stored: d.stored, id: a.ev.ID}
		heap.Push(&l.unacked, e)
		alerts := l.eng.Process(a.ev)
		if e.at > l.eng.watermark {
			l.waiting = append(l.waiting, held{received: d.received, at: e.at})
		}
		if err := l.settle(ctx, alerts); err != nil {
			return err
		}
	}
	return nil
}

// handled reports whether the message of stream sequence seq was handled:
// replayed, processed live, or before what the replay read.
func (l *live) handled(seq uint64) bool {
	return seq <= l.base || l.seen.has(seq)
}

// misplaced reports whether e, received by a partition's engine, belongs
// to another partition.
func (l *live) misplaced(e *schemas.Event) bool {
	p := l.u.partition
	return p >= 0 && schemas.EventPartition(e.Subject, l.s.cfg.Partitions.Count) != p
}

// advance releases, once they have waited MaxHold, the events that arrived
// up to now-MaxHold: everything up to the greatest event time among them,
// but not beyond the wall clock.
func (l *live) advance(ctx context.Context, now time.Time) error {
	due := now.Add(-l.s.cfg.MaxHold)
	upTo := int64(0)
	n := 0
	for n < len(l.waiting) && !l.waiting[n].received.After(due) {
		upTo = max(upTo, l.waiting[n].at)
		n++
	}
	l.waiting = l.waiting[n:]
	upTo = min(upTo, now.UnixNano())
	if n == 0 || upTo <= l.eng.watermark {
		return nil
	}
	return l.settle(ctx, l.eng.AdvanceTo(time.Unix(0, upTo)))
}

// settle acknowledges the events the engine has released. When their
// release raised alerts, it starts publishing them and hands the events to
// the confirmer, which acknowledges them once every alert is stored: the
// engine loop goes on meanwhile instead of waiting for the stream.
func (l *live) settle(ctx context.Context, alerts []schemas.Alert) error {
	wm := l.eng.watermark
	l.released = l.released[:0]
	for len(l.unacked) > 0 && l.unacked[0].at <= wm {
		e := heap.Pop(&l.unacked).(*inflight)
		if e.m.unreleased--; e.m.unreleased == 0 {
			delete(l.bySeq, e.seq)
		}
		l.released = append(l.released, e)
	}
	if len(alerts) == 0 {
		for i, e := range l.released {
			e.m.done()
			l.released[i] = nil
		}
		return nil
	}
	futures, err := l.s.sendAlerts(alerts)
	if err != nil {
		return err
	}
	st := pubStep{alerts: alerts, futures: futures, released: slices.Clone(l.released)}
	clear(l.released)
	select {
	case l.steps <- st:
		l.sent++
		l.pruneOutstanding()
		l.outstanding = append(l.outstanding, sentStep{n: l.sent, alerts: alerts})
		return nil
	case <-ctx.Done():
		// Not acknowledged: replayed or redelivered after a restart.
		return ctx.Err()
	}
}

// pubStep is the alerts one release raised, being published, and the
// events released with them, acknowledged once the alerts are stored.
type pubStep struct {
	alerts   []schemas.Alert
	futures  []jetstream.PubAckFuture
	released []*inflight
}

// confirmAll waits for each step's alerts to be stored, in order, then
// acknowledges its events; it returns when steps is closed (by the engine
// loop) and drained, or when ctx ends. It owns the events of the steps it
// receives.
func (s *Service) confirmAll(ctx context.Context, u *unit, steps <-chan pubStep) error {
	for st := range steps {
		if err := s.confirm(ctx, u, st.alerts, st.futures, st.released); err != nil {
			return err
		}
		u.confirmed.Add(1)
		for _, e := range st.released {
			e.m.done()
		}
	}
	return nil
}

// updateStats refreshes the engine metrics and acknowledges events held
// longer than half the ack wait (dated ahead of the wall clock), so that
// JetStream does not redeliver them; a restart replays them.
func (l *live) updateStats() {
	m, g, i := l.s.metrics, l.s.gauges, l.u.gauge
	st := l.eng.Stats()
	m.late.Add(float64(st.Late - l.stats.Late))
	g.set(gaugeKeys, i, float64(st.StateKeys))
	g.set(gaugePending, i, float64(st.Pending))
	g.set(gaugeDelay, i, time.Since(l.eng.Watermark()).Seconds())
	if l.snaps != nil {
		g.set(gaugeSnapshotAge, i, time.Since(time.Unix(0, l.u.lastSaved.Load())).Seconds())
	}
	l.stats = st
	old := time.Now().Add(-l.s.cfg.AckWait / 2)
	for _, e := range l.unacked {
		if !e.m.acked && e.received.Before(old) {
			_ = e.m.msg.Ack()
			e.m.acked = true
		}
	}
}

// publish stores alerts in SESSIONMON_ALERTS and waits for every ack,
// retrying failures with backoff until ctx ends. released are the events
// whose release raised the alerts, for the latency metric.
func (s *Service) publish(ctx context.Context, u *unit, alerts []schemas.Alert, released []*inflight) error {
	futures, err := s.sendAlerts(alerts)
	if err != nil {
		return err
	}
	return s.confirm(ctx, u, alerts, futures, released)
}

// sendAlerts starts publishing alerts without waiting for the stream's
// acks. A nil future is a publish that failed at once; confirm retries it.
// The error is for an alert that cannot be encoded, a bug in its detector
// that retrying would not mend.
func (s *Service) sendAlerts(alerts []schemas.Alert) ([]jetstream.PubAckFuture, error) {
	futures := make([]jetstream.PubAckFuture, len(alerts))
	for i := range alerts {
		// Only here, once per alert about to be published, are the
		// suppression rules consulted (suppress.go).
		s.suppressAlert(&alerts[i])
		m, err := alertbus.Message(&alerts[i])
		if err != nil {
			return nil, err
		}
		// A publish that fails here is retried by confirm.
		futures[i], _ = s.js.PublishMsgAsync(m)
	}
	return futures, nil
}

// confirm waits for the acks of alerts published by sendAlerts and
// publishes again, with backoff, those that failed, until every one is
// stored or ctx ends.
func (s *Service) confirm(ctx context.Context, u *unit, alerts []schemas.Alert, futures []jetstream.PubAckFuture, released []*inflight) error {
	bo := backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		var (
			failed  []int
			lastErr error
		)
		for i, f := range futures {
			if f == nil {
				failed, lastErr = append(failed, i), errors.New("publish refused")
				continue
			}
			select {
			case <-f.Ok():
				s.published(&alerts[i], released)
			case err := <-f.Err():
				failed, lastErr = append(failed, i), err
			case <-ctx.Done():
				return fmt.Errorf("publish alerts: %w", ctx.Err())
			}
		}
		if len(failed) == 0 {
			if attempt > 1 {
				u.state.SetReady()
				u.logger.Info("alert publishing recovered", slog.Int("attempts", attempt))
			}
			return nil
		}
		s.metrics.publishErrors.Add(float64(len(failed)))
		u.state.Set(fmt.Sprintf("publishing alerts failing, retrying: %v", lastErr))
		u.logger.Warn("publish alerts failed, retrying", slog.Int("alerts", len(failed)), slog.Int("attempt", attempt),
			slog.Duration("retry_in", bo.Next()), slog.Any("error", lastErr))
		if !bo.Wait(ctx) {
			return fmt.Errorf("publish alerts: %w", ctx.Err())
		}
		retry := make([]schemas.Alert, len(failed))
		for k, i := range failed {
			retry[k] = alerts[i]
		}
		alerts = retry
		var err error
		if futures, err = s.sendAlerts(alerts); err != nil {
			return err
		}
	}
}

// published records an alert the stream acknowledged: its metrics, its
// latency from the arrival of its newest evidence among released, and a
// log line.
func (s *Service) published(a *schemas.Alert, released []*inflight) {
	now := time.Now()
	s.metrics.alerts.WithLabelValues(a.Detector, string(a.Severity)).Inc()
	if a.Suppression != nil {
		s.metrics.suppression.suppressed.WithLabelValues(a.Detector, string(a.Suppression.Action)).Inc()
	}
	if len(released) > 0 && len(a.Evidence) > 0 {
		evidence := make(map[string]struct{}, len(a.Evidence))
		for _, id := range a.Evidence {
			evidence[id] = struct{}{}
		}
		var newest time.Time
		for _, e := range released {
			if _, ok := evidence[e.id]; ok && e.stored.After(newest) {
				newest = e.stored
			}
		}
		if !newest.IsZero() {
			s.metrics.latency.Observe(now.Sub(newest).Seconds())
		}
	}
	// No subject, session or token pseudonym: they are personal data, and
	// the alert id leads to them in ClickHouse for who may see them.
	s.logger.Info("alert", slog.String("alert_id", a.ID), slog.String("detector", a.Detector),
		slog.String("severity", string(a.Severity)), slog.String("app", a.App))
}

// seqSetSize is how many recent stream sequences a seqSet remembers.
const seqSetSize = 1 << 20

// seqSet remembers which of the last seqSetSize stream sequences (above a
// floor) were processed, so that a redelivery is recognised: 128 KiB.
type seqSet struct {
	bits []uint64
	hi   uint64 // the highest sequence added
}

func newSeqSet(floor uint64) seqSet {
	return seqSet{bits: make([]uint64, seqSetSize/64), hi: floor}
}

// has reports whether seq was added. Sequences more than seqSetSize below
// the highest one added count as added.
func (s *seqSet) has(seq uint64) bool {
	if seq > s.hi {
		return false
	}
	if s.hi-seq >= seqSetSize {
		return true
	}
	i := seq % seqSetSize
	return s.bits[i/64]&(1<<(i%64)) != 0
}

func (s *seqSet) add(seq uint64) {
	if seq > s.hi {
		s.raise(seq - 1)
		s.hi = seq
	}
	i := seq % seqSetSize
	s.bits[i/64] |= 1 << (i % 64)
}

// raise makes hi at least to, the sequences up to it not added.
func (s *seqSet) raise(to uint64) {
	if to <= s.hi {
		return
	}
	// The sequences skipped over were not seen (yet).
	if to-s.hi >= seqSetSize {
		clear(s.bits)
	} else {
		for q := s.hi + 1; q <= to; q++ {
			i := q % seqSetSize
			s.bits[i/64] &^= 1 << (i % 64)
		}
	}
	s.hi = to
}
