package detect

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// snapshotJob is one encoded snapshot waiting to be written, with who
// waits for the write (erasures).
type snapshotJob struct {
	data    []byte
	header  *snapshotHeader
	waiters []chan<- error
}

// snapshotWriter writes one unit's snapshots to the state bucket, one at
// a time, on its own goroutine, so that the engine loop only pays for the
// encoding. The engine loop never waits for it: a snapshot submitted while
// another waits replaces it (its waiters move to the newer one, whose state
// includes everything the older had).
type snapshotWriter struct {
	s *Service
	u *unit

	mu   sync.Mutex
	next *snapshotJob
	// busy is set from submit until the queue is empty again.
	busy atomic.Bool
	// wake has room for one signal.
	wake chan struct{}
}

func newSnapshotWriter(s *Service, u *unit) *snapshotWriter {
	return &snapshotWriter{s: s, u: u, wake: make(chan struct{}, 1)}
}

// submit queues job (from the engine loop; it does not block).
func (w *snapshotWriter) submit(job *snapshotJob) {
	w.mu.Lock()
	if w.next != nil {
		job.waiters = append(slices.Clip(w.next.waiters), job.waiters...)
	}
	w.next = job
	w.busy.Store(true)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes the snapshots submitted until done is closed (the engine loop
// ended), then writes the last one submitted and returns. Writes use wctx,
// which outlives the service's context by shutdownTimeout, so that the
// snapshot taken at shutdown is written. It never fails: a failed write is
// logged and counted, and the next snapshot tries again.
func (w *snapshotWriter) run(wctx context.Context, done <-chan struct{}) error {
	for {
		select {
		case <-w.wake:
			w.writeNext(wctx)
		case <-done:
			w.writeNext(wctx)
			return nil
		case <-wctx.Done():
			w.writeNext(wctx)
			return nil
		}
	}
}

// writeNext writes the queued snapshot, if any, and answers its waiters.
func (w *snapshotWriter) writeNext(wctx context.Context) {
	w.mu.Lock()
	job := w.next
	w.next = nil
	w.mu.Unlock()
	if job != nil {
		err := w.write(wctx, job)
		for _, c := range job.waiters {
			c <- err
		}
	}
	w.mu.Lock()
	if w.next == nil {
		w.busy.Store(false)
	}
	w.mu.Unlock()
}

func (w *snapshotWriter) write(wctx context.Context, job *snapshotJob) error {
	m := w.s.metrics
	ctx, cancel := context.WithTimeout(wctx, snapshotWriteTimeout)
	defer cancel()
	began := time.Now()
	err := w.s.state.save(ctx, w.u.durable, job.data, job.header)
	if err == nil && wctx.Err() != nil {
		err = wctx.Err()
	}
	if err != nil {
		m.snapshotFailures.WithLabelValues("write").Inc()
		w.u.logger.Warn("detector state snapshot not written", slog.Int("bytes", len(job.data)), slog.Any("error", err))
		return err
	}
	d := time.Since(began)
	m.snapshotSeconds.WithLabelValues("write").Observe(d.Seconds())
	w.u.lastSaved.Store(job.header.created.UnixNano())
	w.s.gauges.set(gaugeSnapshotBytes, w.u.gauge, float64(len(job.data)))
	w.u.logger.Debug("detector state snapshot written", slog.Uint64("seq", job.header.seq), slog.Int("bytes", len(job.data)),
		slog.Duration("duration", d))
	return nil
}

// snapshot encodes the engine's state and queues it for writing. A
// periodic one (no waiter, not forced) is skipped while the previous one
// is still being written. waiter, if not nil, receives the result of the
// write.
func (l *live) snapshot(force bool, waiter chan<- error) {
	if l.snaps != nil && !l.s.leaseValid() {
		// A process that lost its lease must not overwrite the state
		// its successor restores and writes.
		if waiter != nil {
			waiter <- errLeaseLost
		}
		return
	}
	if l.snaps == nil {
		if waiter != nil {
			waiter <- nil
		}
		return
	}
	if !force && waiter == nil && l.snaps.busy.Load() {
		return
	}
	m, u := l.s.metrics, l.u
	l.pruneOutstanding()
	var inflight []schemas.Alert
	for _, st := range l.outstanding {
		inflight = append(inflight, st.alerts...)
	}
	h := &snapshotHeader{unit: u.durable, config: u.config, stream: l.s.streamCreated, seq: l.seen.hi,
		created: time.Now().UTC(), erasure: l.mark, inflight: inflight}
	b, err := encodeSnapshot(h, l.eng, l.snapSize)
	if err != nil {
		m.snapshotFailures.WithLabelValues("encode").Inc()
		u.logger.Error("detector state snapshot not taken", slog.Any("error", err))
		if waiter != nil {
			waiter <- err
		}
		return
	}
	m.snapshotSeconds.WithLabelValues("encode").Observe(time.Since(h.created).Seconds())
	l.snapSize = len(b)
	job := &snapshotJob{data: b, header: h}
	if waiter != nil {
		job.waiters = append(job.waiters, waiter)
	}
	l.snaps.submit(job)
}

// forgotten answers an erasure request once the engine has forgotten the
// subject: with snapshots on, after a snapshot without it is written, made
// clean of the current erasure mark (PrepareForget replaced it before the
// request was sent). It blocks the engine loop for one round trip to NATS.
func (l *live) forgotten(ctx context.Context, r forgetRequest) {
	if l.snaps == nil {
		r.done <- nil
		return
	}
	ctx, cancel := context.WithTimeout(ctx, erasureMarkTimeout)
	defer cancel()
	mark, err := l.s.state.erasureMark(ctx)
	if err != nil {
		r.done <- err
		return
	}
	l.mark = mark
	l.snapshot(true, r.done)
}

// sentStep is a release's alerts handed to the confirmer, numbered.
type sentStep struct {
	n      uint64
	alerts []schemas.Alert
}

// pruneOutstanding drops the steps the confirmer has confirmed.
func (l *live) pruneOutstanding() {
	c := l.u.confirmed.Load()
	i := 0
	for i < len(l.outstanding) && l.outstanding[i].n <= c {
		i++
	}
	if i > 0 {
		l.outstanding = slices.Delete(l.outstanding, 0, i)
	}
}
