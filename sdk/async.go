package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
	return c.enqueueAccepted(ctx, gen, m)
}

// enqueueAccepted counts m (of generation gen, which begin opened) as
// accepted and puts it in the buffer; if it is refused, it is uncounted
// and gen ended.
func (c *Client) enqueueAccepted(ctx context.Context, gen uint64, m *outMsg) error {
	m.gen = gen
	// Count before the push: the sender may resolve the event before the
	// push returns, and Stats must never show more resolved than accepted.
	c.accepted.Add(1)
	c.pending.Add(1)
	if err := c.enqueue(ctx, m); err != nil {
		c.pending.Add(-1)
		c.accepted.Add(^uint64(0))
		c.end(gen)
		return fmt.Errorf("publish async event %s: %w", m.id, err)
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

// runSender sends buffered events and events due for a retry, and hands
// each sent event to the acker. It ends when stop is closed.
func (c *Client) runSender() {
	defer c.wg.Done()
	for {
		m := c.next()
		if m == nil {
			return
		}
		if !c.sleepUntil(m.notBefore) {
			c.fail(m, ErrNotConfirmed)
			return
		}
		paf, err := c.sendAsync(m)
		if err != nil {
			c.retryOrFail(m, err)
			continue
		}
		select {
		case c.inflight <- flight{m: m, paf: paf, deadline: time.Now().Add(c.opts.publishTimeout)}:
		case <-c.stop:
			c.fail(m, ErrNotConfirmed)
			return
		}
	}
}

// next returns the next event to send, retries first, or nil once stop is
// closed.
func (c *Client) next() *outMsg {
	for {
		if m := c.popRetry(); m != nil {
			return m
		}
		select {
		case m := <-c.queue:
			return m
		case <-c.retryReady:
		case <-c.stop:
			return nil
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
		paf, err := c.js.PublishMsgAsync(m.msg, c.asyncOpts...)
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
			c.recordAck(ack)
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
	c.log.Debug("retry publish", slog.String("event_id", m.id), slog.Int("attempt", m.attempts), slog.Any("error", err))
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

// resolve marks an acknowledged async event done.
func (c *Client) resolve(m *outMsg) {
	c.pending.Add(-1)
	c.end(m.gen)
}

// fail marks an async event failed for good: counted, passed to OnError,
// kept for the next report, then done.
func (c *Client) fail(m *outMsg, err error) {
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
