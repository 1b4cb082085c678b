package sdkgo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// TestClose100kAsync publishes 100,000 events from several goroutines
// through a small buffer, then closes: every event is in the stream.
func TestClose100kAsync(t *testing.T) {
	t.Parallel()
	const (
		workers   = 4
		perWorker = 25_000
		total     = workers * perWorker
	)
	e := withStream(t)
	logs := &logRecorder{}
	c := e.client(t, sdk.WithAsyncBuffer(1024), sdk.WithBlockOnFull(0), sdk.WithLogger(slog.New(logs)))
	p := newPseudonymizer(t)
	subjects := make([]sdk.Pseudonym, 64)
	for i := range subjects {
		subjects[i] = p.Subject(fmt.Sprintf("user-%d", i))
	}
	session := p.Session("s-1")

	start := time.Now()
	err := runWorkers(workers, func(w int) error {
		for i := range perWorker {
			ev := &sdk.Event{Type: sdk.SessionActivity, Subject: subjects[i%len(subjects)], Session: session}
			if err := c.PublishAsync(t.Context(), ev); err != nil {
				return fmt.Errorf("worker %d event %d: %w", w, i, err)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, c.Close(t.Context()))
	t.Logf("published %d events and closed in %s (%d retries)", total, time.Since(start), logs.count("retry publish"))

	require.Equal(t, uint64(total), e.count(t))
	st := c.Stats()
	require.Equal(t, sdk.Stats{Accepted: total, Published: total}, st)
}

// stalledClient returns a Client on a server without the events stream,
// whose retries wait an hour: after the first event, the sender is stuck,
// so the buffer fills.
func stalledClient(t *testing.T, opts ...sdk.Option) (*env, *sdk.Client) {
	t.Helper()
	e := newEnv(t)
	opts = append([]sdk.Option{sdk.WithApp(testApp), sdk.WithAsyncBuffer(2), sdk.WithAsyncWindow(1), sdk.WithRetry(1, time.Hour)}, opts...)
	c, err := sdk.NewClient(e.nc, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		// Nothing can drain: close with a short deadline, failing what is held.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		err := c.Close(ctx)
		if _, ok := errors.AsType[*sdk.PublishError](err); !ok && err != nil && !errors.Is(err, sdk.ErrClosed) {
			t.Errorf("close stalled client: %v", err)
		}
	})
	return e, c
}

// fill publishes until the buffer is full and returns how many were accepted.
func fill(t *testing.T, c *sdk.Client, p *sdk.Pseudonymizer) int {
	t.Helper()
	n := 0
	poll.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		err := c.PublishAsync(t.Context(), loginEvent(p, n))
		if errors.Is(err, sdk.ErrBufferFull) {
			return nil
		}
		require.NoError(t, err)
		n++
		return errors.New("buffer not full yet")
	})
	return n
}

func TestPublishAsyncBufferFull(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	var fails failures
	_, c := stalledClient(t, sdk.WithOnError(fails.record))

	accepted := fill(t, c, p)
	// Held at most: the buffer, the window, the event in the sender's hands,
	// and one that failed in the window and waits for its retry: the sender
	// may take the next event from the buffer before the acker has put the
	// failed one on the retry list.
	require.LessOrEqual(t, accepted, 2+1+1+1)
	require.GreaterOrEqual(t, accepted, 2)
	st := c.Stats()
	require.Equal(t, uint64(accepted), st.Accepted)
	require.Equal(t, int64(accepted), st.Pending)

	// Close cannot drain a stuck pipeline: the deadline ends it, and no
	// accepted event vanishes: each is failed, reported and passed to OnError.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := c.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, sdk.ErrNotConfirmed)
	pe, ok := errors.AsType[*sdk.PublishError](err)
	require.True(t, ok)
	require.Equal(t, accepted, pe.Failed)

	ids, errs := fails.snapshot()
	require.Len(t, ids, accepted)
	for _, err := range errs {
		require.ErrorIs(t, err, sdk.ErrNotConfirmed)
	}
	require.Equal(t, sdk.Stats{Accepted: uint64(accepted), Failed: uint64(accepted)}, c.Stats())
}

func TestPublishAsyncBlockOnFull(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	shortCtx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func(t *testing.T) context.Context
		wantErr error
	}{
		{name: "timeout", timeout: 20 * time.Millisecond, ctx: func(t *testing.T) context.Context { return t.Context() }, wantErr: sdk.ErrBufferFull},
		{name: "context", ctx: shortCtx, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := stalledClient(t, sdk.WithBlockOnFull(tt.timeout))
			for accepted := 0; ; accepted++ {
				require.Less(t, accepted, 10, "the buffer never filled")
				start := time.Now()
				err := c.PublishAsync(tt.ctx(t), loginEvent(p, accepted))
				if err == nil {
					continue
				}
				require.ErrorIs(t, err, tt.wantErr)
				require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "it waited for room")
				require.Equal(t, uint64(accepted), c.Stats().Accepted)
				return
			}
		})
	}
}

// TestCloseReleasesBlockedPublishers closes a stalled Client while more
// publishers wait for room than it can ever hold: each call either was
// accepted (and is then failed by Close, not lost) or returns ErrClosed.
func TestCloseReleasesBlockedPublishers(t *testing.T) {
	t.Parallel()
	const publishers = 20
	p := newPseudonymizer(t)
	var fails failures
	_, c := stalledClient(t, sdk.WithBlockOnFull(0), sdk.WithOnError(fails.record))

	errc := make(chan error, publishers)
	for i := range publishers {
		go func() { errc <- c.PublishAsync(t.Context(), loginEvent(p, i)) }()
	}
	poll.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		if c.Stats().Accepted < 2 {
			return errors.New("buffer not filled yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	closeErr := c.Close(ctx)

	accepted := 0
	for range publishers {
		err := <-errc
		if err == nil {
			accepted++
			continue
		}
		require.ErrorIs(t, err, sdk.ErrClosed)
	}
	require.Less(t, accepted, publishers/2, "a stalled client holds only a few events")
	pe, ok := errors.AsType[*sdk.PublishError](closeErr)
	require.Truef(t, ok, "want *PublishError, got %v", closeErr)
	require.Equal(t, accepted, pe.Failed)
	ids, _ := fails.snapshot()
	require.Len(t, ids, accepted)
	require.Equal(t, sdk.Stats{Accepted: uint64(accepted), Failed: uint64(accepted)}, c.Stats())
}

// TestAsyncFailuresReported publishes into a stream that holds one message:
// the others fail for good, and Flush reports them once.
func TestAsyncFailuresReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:     schemas.EventStream,
		Subjects: []string{schemas.EventSubjects},
		MaxMsgs:  1,
		Discard:  jetstream.DiscardNew,
	})
	require.NoError(t, err)
	e.stream = s
	var fails failures
	c := e.client(t, sdk.WithOnError(fails.record))
	p := newPseudonymizer(t)

	var ids []string
	for i := range 3 {
		ev := loginEvent(p, i)
		ev.ID = fmt.Sprintf("ev-%d", i)
		ids = append(ids, ev.ID)
		require.NoError(t, c.PublishAsync(t.Context(), ev))
	}
	err = c.Flush(t.Context())
	pe, ok := errors.AsType[*sdk.PublishError](err)
	require.Truef(t, ok, "want *PublishError, got %v", err)
	require.Equal(t, 2, pe.Failed)
	var apiErr *jetstream.APIError
	require.ErrorAs(t, err, &apiErr, "the cause is the stream's refusal")
	require.NoError(t, c.Flush(t.Context()), "each failure is reported once")

	failedIDs, _ := fails.snapshot()
	require.ElementsMatch(t, ids[1:], failedIDs)
	require.Equal(t, uint64(1), e.count(t))
	require.Equal(t, sdk.Stats{Accepted: 3, Published: 1, Failed: 2}, c.Stats())
	require.NoError(t, c.Close(t.Context()), "Close does not report them again")
}

// TestFlushWaitsForEarlierEvents flushes while other goroutines keep
// publishing: every event accepted before Flush is resolved when it returns.
func TestFlushWaitsForEarlierEvents(t *testing.T) {
	t.Parallel()
	e := withStream(t)
	c := e.client(t, sdk.WithAsyncBuffer(256), sdk.WithBlockOnFull(0))
	p := newPseudonymizer(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runWorkers(2, func(w int) error {
			for i := 0; ; i++ {
				err := c.PublishAsync(ctx, loginEvent(p, w*1_000_000+i))
				if ctx.Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
			}
		})
	}()
	for range 5 {
		poll.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
			if c.Stats().Accepted == 0 {
				return errors.New("nothing accepted yet")
			}
			return nil
		})
		before := c.Stats().Accepted
		require.NoError(t, c.Flush(t.Context()))
		require.GreaterOrEqual(t, c.Stats().Published, before)
	}
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, c.Close(t.Context()))
	st := c.Stats()
	require.Equal(t, st.Accepted, st.Published)
	require.Equal(t, st.Accepted, e.count(t))
}
