package backoff

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	var seen []time.Duration
	for range 4 {
		seen = append(seen, b.Next())
		start := time.Now()
		require.True(t, b.Wait(t.Context()))
		require.GreaterOrEqual(t, time.Since(start), seen[len(seen)-1]/2, "jitter keeps at least half the delay")
	}
	require.Equal(t, []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}, seen)
}

func TestBackoffStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := Backoff{Min: time.Hour, Max: time.Hour}
	require.False(t, b.Wait(ctx))
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	lo, hi := 100*time.Millisecond, time.Second
	for n, want := range map[uint64]time.Duration{1: lo, 2: 2 * lo, 3: 4 * lo, 4: 8 * lo, 5: hi, 60: hi} {
		for range 20 {
			d := Delay(n, lo, hi)
			require.GreaterOrEqual(t, d, want/2, "attempt %d", n)
			require.LessOrEqual(t, d, want, "attempt %d", n)
		}
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	var failures []int
	recovered := 0
	calls := 0
	err := Retry(t.Context(), &b, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(attempt int, err error, _ time.Duration) { failures = append(failures, attempt) },
		func(attempts int) { recovered = attempts })
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, failures)
	require.Equal(t, 3, recovered)

	bad := errors.New("bad dsn")
	err = Retry(t.Context(), &Backoff{Min: time.Hour, Max: time.Hour}, func(context.Context) error {
		return fmt.Errorf("open: %w", Permanent(bad))
	}, nil, nil)
	require.ErrorIs(t, err, bad, "a permanent error is returned at once")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = Retry(ctx, &Backoff{Min: time.Hour, Max: time.Hour}, func(context.Context) error { return errors.New("down") }, nil, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestSleep(t *testing.T) {
	t.Parallel()
	require.True(t, Sleep(t.Context(), time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.False(t, Sleep(ctx, time.Hour))
}
