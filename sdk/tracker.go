package sdk

// tracker counts the events inside a Client (being published, buffered, in
// flight or waiting for a retry) by generation, so that Flush and Close wait
// for exactly the events accepted before they were called, even while other
// goroutines keep publishing. It also holds the async failures not yet
// reported. Every method must be called with Client.mu held.
type tracker struct {
	gen     uint64
	pending map[uint64]int
	waiters []waiter

	unreported int
	lastErr    error
}

type waiter struct {
	gen  uint64
	done chan struct{}
}

func newTracker() tracker {
	return tracker{pending: make(map[uint64]int)}
}

// add counts one event in the current generation and returns it.
func (t *tracker) add() uint64 {
	t.pending[t.gen]++
	return t.gen
}

// done uncounts one event of generation gen and wakes the waiters it was
// the last one for.
func (t *tracker) done(gen uint64) {
	n := t.pending[gen] - 1
	if n > 0 {
		t.pending[gen] = n
		return
	}
	delete(t.pending, gen)
	kept := t.waiters[:0]
	for _, w := range t.waiters {
		if t.pendingUpTo(w.gen) {
			kept = append(kept, w)
			continue
		}
		close(w.done)
	}
	clear(t.waiters[len(kept):])
	t.waiters = kept
}

// barrier starts a new generation and returns a channel closed once every
// event counted so far is done.
func (t *tracker) barrier() chan struct{} {
	w := waiter{gen: t.gen, done: make(chan struct{})}
	t.gen++
	if !t.pendingUpTo(w.gen) {
		close(w.done)
		return w.done
	}
	t.waiters = append(t.waiters, w)
	return w.done
}

// forget drops the waiter of a barrier nobody waits for any more.
func (t *tracker) forget(done chan struct{}) {
	for i, w := range t.waiters {
		if w.done == done {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			return
		}
	}
}

// pendingUpTo reports whether an event of generation gen or older is
// pending. The map holds one key per generation with pending events, which
// is at most one more than the number of concurrent Flush calls.
func (t *tracker) pendingUpTo(gen uint64) bool {
	for g := range t.pending {
		if g <= gen {
			return true
		}
	}
	return false
}

// failure records an async failure until report.
func (t *tracker) failure(err error) {
	t.unreported++
	t.lastErr = err
}

// report returns the failures recorded since the previous report, as a
// *PublishError, or nil.
func (t *tracker) report() error {
	if t.unreported == 0 {
		return nil
	}
	err := &PublishError{Failed: t.unreported, Err: t.lastErr}
	t.unreported, t.lastErr = 0, nil
	return err
}
