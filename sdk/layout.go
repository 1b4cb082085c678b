package sdk

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"
)

const (
	// noBatching in Client.partitions: send one message per event.
	noBatching = -1
	// layoutTimeout bounds one layout request.
	layoutTimeout = time.Second
	// layoutInterval is the pause between layout requests; layoutRetry
	// the first pause after a request that got no batching answer.
	layoutInterval = 30 * time.Second
	layoutRetry    = time.Second
	// maxLayoutPartitions is the most partitions a layout answer may name
	// (sessionmon's bound on the events stream).
	maxLayoutPartitions = 1024
)

// runLayout asks sessionmon for the events stream's layout now and every
// layoutInterval, until stop is closed, and sets partitions from the
// answer: batching only after an answer that lists BatchVersion, one
// message per event otherwise (no answer, no responder, another version).
// Without such an answer it asks again sooner: after 1 s, then twice as
// long each time, up to layoutInterval, so that an app started before
// sessionmon batches soon after sessionmon is up.
func (c *Client) runLayout() {
	defer c.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	retry := layoutRetry
	for {
		select {
		case <-t.C:
		case <-c.stop:
			return
		}
		if c.askLayout() {
			retry = layoutRetry
			t.Reset(layoutInterval)
			continue
		}
		t.Reset(retry)
		retry = min(2*retry, layoutInterval)
	}
}

// askLayout makes one layout request (on the connection's inbox prefix,
// as every request) and applies its answer; it reports whether the
// answer allows batching.
func (c *Client) askLayout() bool {
	rctx, cancel := context.WithTimeout(context.Background(), layoutTimeout)
	defer cancel()
	// Close must not wait for the answer: stop ends the request.
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-rctx.Done():
		}
	}()
	n := int64(noBatching)
	msg, err := c.nc.RequestWithContext(rctx, LayoutSubject, nil)
	if err == nil {
		var l Layout
		if derr := json.Unmarshal(msg.Data, &l); derr != nil {
			err = derr
		} else if slices.Contains(l.Batch, BatchVersion) && l.Partitions >= 0 && l.Partitions <= maxLayoutPartitions {
			n = int64(l.Partitions)
		}
	}
	if old := c.partitions.Swap(n); old != n {
		c.log.Debug("events stream layout", slog.Int64("partitions", n), slog.Bool("batching", n != noBatching), slog.Any("error", err))
	}
	return n != noBatching
}

// batchPartitions returns the partition count batches are made for, and
// false when events go one per message.
func (c *Client) batchPartitions() (int, bool) {
	if !c.opts.batch {
		return 0, false
	}
	n := c.partitions.Load()
	return int(n), n != noBatching
}

// Batching reports whether the Client packs asynchronous events into
// batched messages now: batching is on (WithBatching, the default) and
// sessionmon answered the layout request with a framing version this SDK
// writes. Until then, and whenever no answer comes, each event is its own
// message.
func (c *Client) Batching() bool {
	_, ok := c.batchPartitions()
	return ok
}
