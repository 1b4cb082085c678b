// Package poll waits in tests for a condition, instead of sleeping.
package poll

import (
	"testing"
	"time"
)

// CheckFor calls fn every step until it returns nil, and fails the test
// with fn's last error when total has passed first.
func CheckFor(t testing.TB, total, step time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(step)
	}
	t.Fatalf("condition not met after %s: %v", total, err)
}
