package health

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// State is a component's readiness: ready, or the reason it is not. The
// zero value is ready. It is safe for concurrent use; its Check method is
// a Check.
type State struct {
	reason atomic.Pointer[string]
}

// NotReady returns a State that is not ready for reason.
func NotReady(reason string) *State {
	s := &State{}
	s.Set(reason)
	return s
}

// Set marks the component not ready, for reason.
func (s *State) Set(reason string) { s.reason.Store(&reason) }

// SetReady marks the component ready.
func (s *State) SetReady() { s.reason.Store(nil) }

// Reason returns why the component is not ready, and false when it is
// ready.
func (s *State) Reason() (string, bool) {
	if r := s.reason.Load(); r != nil {
		return *r, true
	}
	return "", false
}

// Check returns nil when the component is ready, else an error with the
// reason. It is a Check.
func (s *State) Check(context.Context) error {
	if r, ok := s.Reason(); ok {
		return errors.New(r)
	}
	return nil
}

// Wait polls check every interval until it passes (nil) or ctx ends
// (ctx's error).
func Wait(ctx context.Context, check Check, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for check(ctx) != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
