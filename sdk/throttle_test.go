package sdk

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	th := newThrottle(time.Minute, 100)
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", 30 * time.Second, false},
		{"b", 30 * time.Second, true},
		{"a", 59 * time.Second, false},
		{"a", 60 * time.Second, true}, // one interval after the first report
		{"b", 70 * time.Second, false},
		{"b", 90 * time.Second, true},
		{"a", 119 * time.Second, false}, // seen at 60s, now in the previous generation
		{"a", 10 * time.Minute, true},   // long idle: both generations rotated away
		{"a", 10*time.Minute + time.Second, false},
	}
	for _, s := range steps {
		if got := th.allow(s.key, t0.Add(s.at)); got != s.want {
			t.Fatalf("allow(%s, +%s) = %v, want %v", s.key, s.at, got, s.want)
		}
	}
	th.forget("a")
	if !th.allow("a", t0.Add(10*time.Minute+2*time.Second)) {
		t.Fatal("a forgotten session is reported at once")
	}
}

// TestThrottleBounded: however many sessions are active, the throttle
// keeps at most two generations of max entries.
func TestThrottleBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	const max = 1000
	th := newThrottle(time.Hour, max)
	for i := range 100 * max {
		if !th.allow(fmt.Sprintf("s-%d", i), t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("new session %d not reported", i)
		}
		if n := th.size(); n > 2*max {
			t.Fatalf("throttle holds %d entries, want at most %d", n, 2*max)
		}
	}
	// The most recent sessions are still throttled.
	if th.allow(fmt.Sprintf("s-%d", 100*max-1), t0.Add(100*max*time.Millisecond)) {
		t.Fatal("the latest session was reported twice within the interval")
	}
}
