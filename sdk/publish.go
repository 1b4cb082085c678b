package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish validates ev, sends it and waits for the stream's
// acknowledgement, retrying transient failures per WithRetry within ctx.
// An invalid event fails before anything is sent, with an error wrapping a
// *ValidationError (errors.As) that names every broken field.
// Publish does not modify ev.
func (c *Client) Publish(ctx context.Context, ev *Event) error {
	gen, err := c.begin()
	if err != nil {
		return err
	}
	defer c.end(gen)
	m, err := c.prepare(ev)
	if err != nil {
		return err
	}
	return c.publishSync(ctx, m)
}

// PublishJSON publishes one already-pseudonymized schema v1 event encoded
// as JSON, synchronously as Publish does. It is for tools that import
// events, such as the CLI's publish --file: the data must be one JSON
// object without unknown fields, pass the checks Publish makes and name the
// Client's app, but nothing proves its identifiers went through a
// Pseudonymizer, so app code should build an Event and call Publish instead.
// sessionmon decodes the event again, more strictly, when it receives it.
func (c *Client) PublishJSON(ctx context.Context, data []byte) error {
	gen, err := c.begin()
	if err != nil {
		return err
	}
	defer c.end(gen)
	m, err := c.jsonMessage(data)
	if err != nil {
		return err
	}
	return c.publishSync(ctx, m)
}

// PublishJSONAsync is PublishJSON without the wait: it checks data as
// PublishJSON does and puts it in the async buffer as PublishAsync does,
// with the same guarantees (an accepted event is published, or counted as
// failed and reported by Flush and Close). Bulk imports use it to publish
// at the SDK's rate.
func (c *Client) PublishJSONAsync(ctx context.Context, data []byte) error {
	gen, err := c.begin()
	if err != nil {
		return err
	}
	m, err := c.jsonMessage(data)
	if err != nil {
		c.end(gen)
		return err
	}
	m.gen = gen
	return c.enqueueCounted(ctx, m)
}

// PublishJSONBatchAsync publishes lines, already-pseudonymized events of
// the Client's app as PublishJSONAsync takes them, with PublishJSONAsync's
// guarantees, in batched messages made of these lines alone: grouped by
// partition in their order and cut at the batch bounds (WithBatching), the
// same way every time, so that the same lines published again make the
// same messages and the stream drops them as duplicates (Stats counts
// each of their events). Without batching (WithoutBatching, or before
// sessionmon answered the layout request; see Batching) each line is its
// own message. A line that fails the checks is not published: its error
// is at its index in bad, nil elsewhere. err is the buffer's refusal
// (ErrBufferFull, ctx's end, ErrClosed); the lines not yet in the buffer
// then are not published. Bulk imports use it (sessionmon publish).
func (c *Client) PublishJSONBatchAsync(ctx context.Context, lines [][]byte) (bad []error, err error) {
	bad = make([]error, len(lines))
	msgs := make([]*outMsg, len(lines))
	// Checking and encoding are most of the work: on every core.
	workers := min(runtime.GOMAXPROCS(0), (len(lines)+127)/128)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(lines); i += workers {
				msgs[i], bad[i] = c.jsonMessage(lines[i])
			}
		}(w)
	}
	wg.Wait()
	good := make([]*outMsg, 0, len(lines))
	for _, m := range msgs {
		if m != nil {
			good = append(good, m)
		}
	}
	n, batching := c.batchPartitions()
	if !batching {
		for _, m := range good {
			if err := c.enqueueUnit(ctx, m); err != nil {
				return bad, err
			}
		}
		return bad, nil
	}
	for _, group := range c.pack(good, n) {
		if err := c.enqueueUnit(ctx, c.batchOf(group, n)); err != nil {
			return bad, err
		}
	}
	return bad, nil
}

// pack groups events by partition among n, in their order, and cuts each
// group at the batch bounds.
func (c *Client) pack(events []*outMsg, n int) [][]*outMsg {
	index := map[int]int{} // partition -> its open group in out
	size := map[int]int{}  // partition -> bytes of its open group
	var out [][]*outMsg
	for _, m := range events {
		p := Partition(m.subject, n)
		i, ok := index[p]
		if !ok || len(out[i]) >= c.opts.batchEvents || size[p]+len(m.data)+1 > c.opts.batchBytes {
			i = len(out)
			index[p], size[p] = i, 0
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
		size[p] += len(m.data) + 1
	}
	return out
}

// enqueueUnit opens a generation for each event of m (one event, or a
// batch) and enqueues it (enqueueCounted).
func (c *Client) enqueueUnit(ctx context.Context, m *outMsg) error {
	events := m.events
	if events == nil {
		events = []*outMsg{m}
	}
	for i, e := range events {
		gen, err := c.begin()
		if err != nil {
			for _, done := range events[:i] {
				c.end(done.gen)
			}
			return err
		}
		e.gen = gen
	}
	return c.enqueueCounted(ctx, m)
}

// jsonMessage decodes data, checks it names the Client's app and makes its
// message.
func (c *Client) jsonMessage(data []byte) (*outMsg, error) {
	w, err := decodeWire(data)
	if err != nil {
		return nil, fmt.Errorf("publish json: %w", err)
	}
	if w.App != c.opts.app {
		return nil, fmt.Errorf("publish json: %w", &ValidationError{Errors: []*FieldError{{
			Field: "app",
			Rule:  fmt.Sprintf("must be %q, the app of this client (got %q)", c.opts.app, truncateID(w.App)),
		}}})
	}
	encoded, err := w.encode(time.Now())
	return message(w.ID, w.Subject, encoded, err)
}

// prepare turns ev into a message, failing on an invalid event.
func (c *Client) prepare(ev *Event) (*outMsg, error) {
	if ev == nil {
		return nil, fmt.Errorf("publish: %w", ErrNilEvent)
	}
	return message(ev.encodeWire(c.opts.app, time.Now()))
}

// message makes the message of an encoded event, or fails with the
// encoding error.
func message(id, subject string, data []byte, err error) (*outMsg, error) {
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return &outMsg{id: id, subject: subject, data: data}, nil
}

// publishSync sends m and waits for its acknowledgement, retrying
// transient failures within ctx.
func (c *Client) publishSync(ctx context.Context, m *outMsg) error {
	c.accepted.Add(1)
	c.pending.Add(1)
	defer c.pending.Add(-1)
	for {
		actx, cancel := context.WithTimeout(ctx, c.opts.publishTimeout)
		ack, err := c.js.PublishMsg(actx, c.natsMsg(m), jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			c.recordAck(ack, 1)
			return nil
		}
		if ctx.Err() != nil || !transient(err) || m.attempts >= c.opts.retries {
			c.failed.Add(1)
			return fmt.Errorf("publish event %s: %w", m.id, err)
		}
		m.attempts++
		c.log.Debug("retry publish", slog.String("event_id", m.id), slog.Int("attempt", m.attempts), slog.Any("error", err))
		t := time.NewTimer(c.backoff(m.attempts))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			c.failed.Add(1)
			return fmt.Errorf("publish event %s: %w (after: %w)", m.id, ctx.Err(), err)
		}
	}
}

// recordAck counts the acknowledgement of a message of events events: a
// duplicate batch is a duplicate of each of its events.
func (c *Client) recordAck(ack *jetstream.PubAck, events int) {
	if ack.Duplicate {
		c.duplicates.Add(uint64(events))
	}
	c.published.Add(uint64(events))
}

// backoff is the pause before retry number attempt (1-based).
func (c *Client) backoff(attempt int) time.Duration {
	limit := max(maxRetryWait, c.opts.retryWait)
	d := c.opts.retryWait
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// transient reports whether a publish that failed with err may succeed if
// sent again: no stream answered (yet), the answer timed out, or the
// connection was down.
func transient(err error) bool {
	for _, t := range []error{
		jetstream.ErrNoStreamResponse,
		nats.ErrNoResponders,
		errAckTimeout,
		jetstream.ErrTooManyStalledMsgs,
		nats.ErrTimeout,
		context.DeadlineExceeded,
		nats.ErrDisconnected,
		nats.ErrConnectionReconnecting,
		nats.ErrReconnectBufExceeded,
	} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
