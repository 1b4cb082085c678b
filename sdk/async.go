package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishAsync validates ev and puts it in the async buffer; it returns as
// soon as the event is accepted, and the SDK publishes it in the
// background, retrying transient failures per WithRetry. An invalid event
// fails here, with an error wrapping a *ValidationError. When the
// buffer is full it returns ErrBufferFull at once, or with WithBlockOnFull
// waits for room until the timeout (ErrBufferFull), ctx's end (ctx's error)
// or Close (ErrClosed). An event that was not accepted is not published.
//
// An accepted event is never dropped silently: it is published, or it
// fails for good and is counted, passed to the OnError callback and
// reported by the next Flush or Close. Publishing does not modify ev.
func (c *Client) PublishAsync(ctx context.Context, ev *Event) error {
	gen, err := c.begin()
	if err != nil {
		return err
	}
	m, err := c.prepare(ev)
	if err != nil {
		c.end(gen)
		return err
	}
	m.gen = gen
	return c.enqueueCounted(ctx, m)
}

// enqueueCounted counts the events of m (one event, or a batch; each of a
// generation begin opened) as accepted and puts m in the buffer; if it is
// refused, they are uncounted and their generations ended.
func (c *Client) enqueueCounted(ctx context.Context, m *outMsg) error {
	n := max(len(m.events), 1)
	// Count before the push: the sender may resolve the events before the
	// push returns, and Stats must never show more resolved than accepted.
	c.accepted.Add(uint64(n))
	c.pending.Add(int64(n))
	if err := c.enqueue(ctx, m); err != nil {
		c.pending.Add(-int64(n))
		c.accepted.Add(-uint64(n))
		if m.events == nil {
			c.end(m.gen)
		}
		for _, e := range m.events {
			c.end(e.gen)
		}
		return fmt.Errorf("publish async %s: %w", m.id, err)
	}
	return nil
}

// enqueue pushes m into the buffer, waiting for room as configured.
func (c *Client) enqueue(ctx context.Context, m *outMsg) error {
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.stopped {
		return ErrClosed
	}
	select {
	case c.queue <- m:
		return nil
	default:
	}
	if !c.opts.blockOnFull {
		return ErrBufferFull
	}
	var timeout <-chan time.Time
	if c.opts.blockTimeout > 0 {
		t := time.NewTimer(c.opts.blockTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case c.queue <- m:
		return nil
	case <-timeout:
		return ErrBufferFull
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return ErrClosed
	}
}

// runSender sends buffered events and messages due for a retry, and hands
// each sent message to the acker. It ends when stop is closed.
func (c *Client) runSender() {
	defer c.wg.Done()
	var carry *outMsg // an event taken from the buffer that did not fit a batch
	for {
		m, retry := carry, false
		carry = nil
		if m == nil {
			if m, retry = c.next(); m == nil {
				return
			}
		}
		if retry {
			if !c.sleepUntil(m.notBefore) {
				c.fail(m, ErrNotConfirmed)
				return
			}
			if !c.send(m) {
				return
			}
			continue
		}
		n, ok := c.batchPartitions()
		if !ok || m.events != nil {
			// One event without batching, or a batch made by
			// PublishJSONBatchAsync: sent as it is.
			if !c.send(m) {
				return
			}
			continue
		}
		groups, next, ok := c.gather(m, n)
		carry = next
		if !ok {
			for _, g := range groups {
				c.failAll(g, ErrNotConfirmed)
			}
			return
		}
		for i, g := range groups {
			if !c.send(c.batchOf(g, n)) {
				for _, rest := range groups[i+1:] {
					c.failAll(rest, ErrNotConfirmed)
				}
				if carry != nil {
					c.fail(carry, ErrNotConfirmed)
				}
				return
			}
		}
	}
}

// gather groups first and the events buffered after it by partition among
// n, in the order they were accepted: it takes events until the buffer
// stays empty for the rest of the linger since first was taken, a group
// holds the batch bounds (an event that would overflow its group's bytes
// is returned as next, for the next round), or it holds as many events as
// the buffer does. ok is false when stop was closed meanwhile.
func (c *Client) gather(first *outMsg, n int) (groups [][]*outMsg, next *outMsg, ok bool) {
	deadline := time.Now().Add(c.opts.batchLinger)
	limit := max(c.opts.asyncBuffer, c.opts.batchEvents)
	index := make(map[int]int) // partition -> index in groups
	size := make([]int, 0, 4)  // body bytes of each group
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for m, held := first, 0; ; held++ {
		if m.events != nil {
			// A batch made by PublishJSONBatchAsync goes alone.
			return groups, m, true
		}
		p := Partition(m.subject, n)
		i, seen := index[p]
		if !seen {
			i = len(groups)
			index[p] = i
			groups = append(groups, nil)
			size = append(size, 0)
		}
		if len(groups[i]) > 0 && size[i]+len(m.data)+1 > c.opts.batchBytes {
			return groups, m, true
		}
		groups[i] = append(groups[i], m)
		size[i] += len(m.data) + 1
		if len(groups[i]) >= c.opts.batchEvents || size[i] >= c.opts.batchBytes || held+1 >= limit {
			return groups, nil, true
		}
		select {
		case m = <-c.queue:
			continue
		default:
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return groups, nil, true
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		select {
		case m = <-c.queue:
		case <-timer.C:
			return groups, nil, true
		case <-c.stop:
			return groups, nil, false
		}
	}
}

// batchOf returns the message of group, events of one partition among n:
// the event's own message for one event, a batched message otherwise.
func (c *Client) batchOf(group []*outMsg, n int) *outMsg {
	if len(group) == 1 {
		return group[0]
	}
	ids := make([]string, len(group))
	lines := make([][]byte, len(group))
	for i, m := range group {
		ids[i] = m.id
		lines[i] = m.data
	}
	msg := NewBatchMsg(c.opts.app, Partition(group[0].subject, n), n, ids, lines)
	return &outMsg{id: msg.Header.Get(nats.MsgIdHdr), msg: msg, events: group}
}

// send publishes m and hands it to the acker; a failed send is retried or
// failed. It reports false, having failed m, if stop was closed.
func (c *Client) send(m *outMsg) bool {
	paf, err := c.sendAsync(m)
	if err != nil {
		c.retryOrFail(m, err)
		return true
	}
	select {
	case c.inflight <- flight{m: m, paf: paf, deadline: time.Now().Add(c.opts.publishTimeout)}:
		return true
	case <-c.stop:
		c.fail(m, ErrNotConfirmed)
		return false
	}
}

// next returns the next message to send, retries first (retry true), or
// nil once stop is closed.
func (c *Client) next() (m *outMsg, retry bool) {
	for {
		if m := c.popRetry(); m != nil {
			return m, true
		}
		select {
		case m := <-c.queue:
			return m, false
		case <-c.retryReady:
		case <-c.stop:
			return nil, false
		}
	}
}

// sleepUntil waits until t; it reports false if stop was closed first.
// While a retry waits, nothing else is sent: the pause is the backoff.
func (c *Client) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.stop:
		return false
	}
}

// sendAsync publishes m without waiting for its acknowledgement. When the
// window is full it waits for room, as long as stop is open.
func (c *Client) sendAsync(m *outMsg) (jetstream.PubAckFuture, error) {
	for {
		paf, err := c.js.PublishMsgAsync(c.natsMsg(m), c.asyncOpts...)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return paf, err
		}
		select {
		case <-c.stop:
			return nil, err
		default:
		}
	}
}

// runAcker waits for the acknowledgement of each sent event, in send
// order. Every future resolves: the JetStream context times out
// unacknowledged publishes after the publish timeout. It ends when stop is
// closed.
func (c *Client) runAcker() {
	defer c.wg.Done()
	for {
		var f flight
		select {
		case f = <-c.inflight:
		case <-c.stop:
			return
		}
		timer := time.NewTimer(time.Until(f.deadline))
		select {
		case ack := <-f.paf.Ok():
			c.recordAck(ack, max(len(f.m.events), 1))
			c.resolve(f.m)
		case err := <-f.paf.Err():
			c.retryOrFail(f.m, err)
		case <-timer.C:
			// The stream may hold the event: sending it again with the
			// same ID stores it at most once.
			c.retryOrFail(f.m, errAckTimeout)
		case <-c.stop:
			timer.Stop()
			c.fail(f.m, ErrNotConfirmed)
			return
		}
		timer.Stop()
	}
}

// retryOrFail schedules m for another attempt after a transient error, or
// fails it.
func (c *Client) retryOrFail(m *outMsg, err error) {
	if !transient(err) || m.attempts >= c.opts.retries {
		c.fail(m, err)
		return
	}
	m.attempts++
	m.notBefore = time.Now().Add(c.backoff(m.attempts))
	if m.events != nil {
		c.log.Debug("retry publish", slog.String("batch_id", m.id), slog.Int("events", len(m.events)), slog.Int("attempt", m.attempts), slog.Any("error", err))
	} else {
		c.log.Debug("retry publish", slog.String("event_id", m.id), slog.Int("attempt", m.attempts), slog.Any("error", err))
	}
	c.retryMu.Lock()
	c.retryList = append(c.retryList, m)
	c.retryMu.Unlock()
	select {
	case c.retryReady <- struct{}{}:
	default:
	}
}

func (c *Client) popRetry() *outMsg {
	c.retryMu.Lock()
	defer c.retryMu.Unlock()
	if len(c.retryList) == 0 {
		return nil
	}
	m := c.retryList[0]
	c.retryList[0] = nil
	c.retryList = c.retryList[1:]
	return m
}

// resolve marks an acknowledged async event, or each event of a batch,
// done.
func (c *Client) resolve(m *outMsg) {
	if m.events != nil {
		for _, e := range m.events {
			c.resolve(e)
		}
		return
	}
	c.pending.Add(-1)
	c.end(m.gen)
}

// failAll fails each event of ms.
func (c *Client) failAll(ms []*outMsg, err error) {
	for _, m := range ms {
		c.fail(m, err)
	}
}

// fail marks an async event, or each event of a batch, failed for good:
// counted, passed to OnError, kept for the next report, then done.
func (c *Client) fail(m *outMsg, err error) {
	if m.events != nil {
		c.failAll(m.events, err)
		return
	}
	c.failed.Add(1)
	c.pending.Add(-1)
	if c.opts.onError != nil {
		c.opts.onError(m.id, err)
	}
	c.mu.Lock()
	c.track.failure(fmt.Errorf("event %s: %w", m.id, err))
	c.track.done(m.gen)
	c.mu.Unlock()
}

// failLeftovers fails the events still held after the goroutines ended
// (Close gave up waiting for them). Nothing can add events any more.
func (c *Client) failLeftovers() {
	for {
		select {
		case m := <-c.queue:
			c.fail(m, ErrNotConfirmed)
		case f := <-c.inflight:
			c.fail(f.m, ErrNotConfirmed)
		default:
			c.retryMu.Lock()
			rest := c.retryList
			c.retryList = nil
			c.retryMu.Unlock()
			for _, m := range rest {
				c.fail(m, ErrNotConfirmed)
			}
			return
		}
	}
}
