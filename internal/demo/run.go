package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/sdk"
)

// Key is the pseudonymization key of demo traffic. It is public, so demo
// pseudonyms protect nothing: never use it for real data.
var Key = []byte("sessionmon-demo-key: public, never use it for real data")

// KeyID is the key id of demo pseudonyms.
const KeyID = "demo"

// tick is how often the publisher releases its next slice of events.
const tick = 20 * time.Millisecond

// Progress is called after each slice with the events sent so far and the
// total of the current pass.
type Progress func(sent, total int)

// Run publishes demo traffic through c at about rate events per second: one
// pass over the timeline, repeated with new users until duration has passed
// when duration > 0. It returns the number of events the stream
// acknowledged; on return every accepted event is flushed.
func Run(ctx context.Context, c *sdk.Client, o Options, rate int, duration time.Duration, progress Progress) (int, error) {
	p, err := sdk.NewPseudonymizer(KeyID, Key)
	if err != nil {
		return 0, fmt.Errorf("demo pseudonymizer: %w", err)
	}
	deadline := time.Now().Add(duration)
	sent := 0
	for pass := 0; ; pass++ {
		o.End = time.Now()
		o.Seed += int64(pass)
		events := Generate(p, o)
		n, err := publish(ctx, c, events, rate, progress)
		sent += n
		if err != nil {
			return sent, err
		}
		if duration <= 0 || time.Now().After(deadline) {
			break
		}
	}
	if err := c.Flush(ctx); err != nil {
		return sent, fmt.Errorf("flush demo events: %w", err)
	}
	return sent, nil
}

func publish(ctx context.Context, c *sdk.Client, events []sdk.Event, rate int, progress Progress) (int, error) {
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	sent := 0
	for sent < len(events) {
		// Paced against the clock, not per tick: a slow tick is caught up
		// and rates that are not a multiple of 1/tick hold on average.
		target := int(float64(rate) * time.Since(start).Seconds())
		end := min(target, len(events))
		for i := sent; i < end; i++ {
			if err := c.PublishAsync(ctx, &events[i]); err != nil {
				return sent, fmt.Errorf("publish demo event %d: %w", i, err)
			}
			sent++
		}
		if progress != nil {
			progress(sent, len(events))
		}
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-t.C:
		}
	}
	return sent, nil
}
