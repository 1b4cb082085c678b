package backoff

import (
	"context"
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
