package dashboard

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiterSlidingWindow(t *testing.T) {
	t.Parallel()
	l := newLimiter(3, time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		require.Zero(t, l.retryAfter("k", t0), "before failure %d", i+1)
		l.fail("k", t0.Add(time.Duration(i)*10*time.Second))
	}
	// Three failures at 0s, 10s, 20s: blocked until the first leaves the window.
	require.Equal(t, 30*time.Second, l.retryAfter("k", t0.Add(30*time.Second)))
	require.Zero(t, l.retryAfter("other", t0.Add(30*time.Second)), "keys are separate")
	require.Zero(t, l.retryAfter("k", t0.Add(time.Minute)))
	l.reset("k")
	require.Empty(t, l.fails)
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(2, time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxLimiterKeys + 50 {
		l.fail("k"+strconv.Itoa(i), now)
	}
	require.LessOrEqual(t, len(l.fails), maxLimiterKeys+1)
	// The keys beyond the bound share one budget, which is now spent.
	require.Positive(t, l.retryAfter("brand-new", now))
	// Once the window has passed, old keys make room again.
	later := now.Add(time.Minute)
	l.fail("fresh", later)
	require.Len(t, l.fails, 1)
}
