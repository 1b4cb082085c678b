package sdk

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestTrackerBarrier(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	a := tr.add()
	b := tr.add()
	first := tr.barrier()
	c := tr.add() // accepted after the first barrier
	second := tr.barrier()
	check.False(t, closed(first))
	check.False(t, closed(second))

	tr.done(a)
	check.False(t, closed(first), "b is still pending")
	tr.done(b)
	check.True(t, closed(first), "everything before the first barrier is done")
	check.False(t, closed(second), "c is still pending")
	tr.done(c)
	check.True(t, closed(second))
	check.Empty(t, tr.pending)
	check.Empty(t, tr.waiters)

	check.True(t, closed(tr.barrier()), "a barrier with nothing pending is open at once")

	d := tr.add()
	abandoned := tr.barrier()
	tr.forget(abandoned)
	check.Empty(t, tr.waiters)
	tr.done(d)
	check.False(t, closed(abandoned), "a forgotten barrier is not signalled")
}

func TestTrackerReport(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	check.NoError(t, tr.report())
	cause := errors.New("second")
	tr.failure(errors.New("first"))
	tr.failure(cause)
	err := tr.report()
	var pe *PublishError
	check.ErrorAs(t, err, &pe)
	check.Equal(t, 2, pe.Failed)
	check.ErrorIs(t, err, cause)
	check.Equal(t, "sessionmon sdk: 2 async events failed to publish (last: second)", err.Error())
	check.NoError(t, tr.report(), "reported once")
}

func TestTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "no stream response", err: jetstream.ErrNoStreamResponse, want: true},
		{name: "ack timeout", err: errAckTimeout, want: true},
		{name: "attempt deadline", err: fmt.Errorf("publish: %w", context.DeadlineExceeded), want: true},
		{name: "disconnected", err: nats.ErrDisconnected, want: true},
		{name: "reconnect buffer full", err: nats.ErrReconnectBufExceeded, want: true},
		{name: "connection closed", err: nats.ErrConnectionClosed, want: false},
		{name: "stream refused", err: &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}, want: false},
		{name: "canceled", err: context.Canceled, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check.Equal(t, tt.want, transient(tt.err))
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		wait    time.Duration
		attempt int
		want    time.Duration
	}{
		{name: "first", wait: 250 * time.Millisecond, attempt: 1, want: 250 * time.Millisecond},
		{name: "doubles", wait: 250 * time.Millisecond, attempt: 3, want: time.Second},
		{name: "capped", wait: 250 * time.Millisecond, attempt: 30, want: maxRetryWait},
		{name: "long wait kept", wait: time.Hour, attempt: 3, want: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{opts: options{retryWait: tt.wait}}
			check.Equal(t, tt.want, c.backoff(tt.attempt))
		})
	}
}
