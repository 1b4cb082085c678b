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
		l.add("k", t0.Add(time.Duration(i)*10*time.Second))
	}
	// Three failures at 0s, 10s, 20s: blocked until the first leaves the window.
	require.Equal(t, 30*time.Second, l.retryAfter("k", t0.Add(30*time.Second)))
	require.Zero(t, l.retryAfter("other", t0.Add(30*time.Second)), "keys are separate")
	require.Zero(t, l.retryAfter("k", t0.Add(time.Minute)))
	l.reset("k")
	require.Empty(t, l.fails)
}

// TestLimiterMemoryIsBounded fills a table past its bound: it stays
// bounded, a new key still has a budget of its own (no shared overflow
// counter one attacker could spend for everyone) and the key with the
// oldest latest failure makes room.
func TestLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(2, time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.add("victim", now)
	l.add("victim", now.Add(time.Second))
	for i := range maxLimiterKeys + 50 {
		k := "k" + strconv.Itoa(i)
		l.add(k, now.Add(2*time.Second))
		l.add(k, now.Add(2*time.Second))
	}
	require.LessOrEqual(t, len(l.fails), maxLimiterKeys)
	require.Zero(t, l.retryAfter("brand-new", now.Add(3*time.Second)), "a new key is not limited by others' failures")
	l.add("brand-new", now.Add(3*time.Second))
	require.Zero(t, l.retryAfter("brand-new", now.Add(3*time.Second)), "one failure of its own, below the limit of 2")
	require.Positive(t, l.retryAfter("k"+strconv.Itoa(maxLimiterKeys+49), now.Add(3*time.Second)), "recent keys keep their count")
	// Once the window has passed, old keys make room again.
	later := now.Add(2 * time.Minute)
	l.add("fresh", later)
	require.Len(t, l.fails, 1)
}

// TestLoginLimitsCountBeforeTheCheck: an attempt counts from begin on, so
// attempts in flight use up the budget; a success or a cancelled attempt
// gives its count back.
func TestLoginLimitsCountBeforeTheCheck(t *testing.T) {
	t.Parallel()
	l := newLoginLimits()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var inFlight []*loginAttempt
	for i := range loginFailsPerUser {
		a, wait := l.begin("user:alice", "src:192.0.2.1", now)
		require.NotNil(t, a, "attempt %d", i+1)
		require.Zero(t, wait)
		inFlight = append(inFlight, a)
	}
	a, wait := l.begin("user:alice", "src:192.0.2.1", now)
	require.Nil(t, a, "the attempts in flight used up the budget")
	require.Equal(t, loginWindow, wait)

	inFlight[0].cancel()
	a, _ = l.begin("user:alice", "src:192.0.2.1", now)
	require.NotNil(t, a, "a cancelled attempt gives its count back")
	a.succeeded()
	a, _ = l.begin("user:alice", "src:192.0.2.1", now)
	require.NotNil(t, a, "a success forgets the failures from its source")
}
