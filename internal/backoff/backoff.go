// Package backoff spaces retries: exponential delays with jitter, between a
// minimum and a maximum.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before the next retry. The zero value is not
// useful: set Min and Max (Min <= Max). It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
}

// Next returns the delay the next Wait will be based on.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.Min
	}
	return b.next
}

// Wait sleeps for Next with jitter (between half of it and all of it), then
// doubles Next up to Max. It returns false when ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	d := b.Next()
	jittered := d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	b.next = min(2*d, b.Max)
	t := time.NewTimer(jittered)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
