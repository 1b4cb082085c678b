// Package backoff spaces retries: exponential delays with jitter, between a
// minimum and a maximum. It is the one retry helper of sessionmon's
// services (the SDK, a module of its own, has its own).
package backoff

import (
	"context"
	"errors"
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

// Reset starts the delays again from Min.
func (b *Backoff) Reset() { b.next = 0 }

// Wait sleeps for Next with jitter (between half of it and all of it), then
// doubles Next up to Max. It returns false when ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	d := b.Next()
	b.next = min(2*d, b.Max)
	return Sleep(ctx, Jitter(d))
}

// Delay is the wait after failed attempt n (1-based) of a retry that keeps
// no Backoff between attempts (a redelivery counts them): exponential from
// lo, capped at hi, with Jitter.
func Delay(n uint64, lo, hi time.Duration) time.Duration {
	d := lo
	for i := uint64(1); i < n && d < hi; i++ {
		d *= 2
	}
	return Jitter(min(d, hi))
}

// Jitter returns a random duration between half of d and d.
func Jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Sleep waits d; it reports false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// permanentError marks an error a retry cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so that Retry returns it at once instead of
// retrying; Retry returns err itself.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Retry runs op until it succeeds, with b's delays between attempts. It
// returns nil on success; op's error when op returned it wrapped with
// Permanent; and ctx's error (wrapping nothing else) once ctx has ended.
// failed, when not nil, hears of each failed attempt (1-based), its
// error and the delay before the next one, before Retry waits: it logs
// and sets readiness. recovered, when not nil, is called after a success
// that followed failures, with the number of attempts.
func Retry(ctx context.Context, b *Backoff, op func(context.Context) error,
	failed func(attempt int, err error, retryIn time.Duration), recovered func(attempts int)) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if attempt > 1 && recovered != nil {
				recovered(attempt)
			}
			return nil
		}
		if p, ok := errors.AsType[permanentError](err); ok {
			return p.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if failed != nil {
			failed(attempt, err, b.Next())
		}
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}
