package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPublishToAlertLatency runs a detect Service under 10,000 events/s of
// demo traffic with 20 attack events/s among them, and requires every
// attack's alert to reach SESSIONMON_ALERTS with a p99 latency under 250 ms
// (from just before the SDK publishes the event). Under the race detector
// it runs at 2,000 events/s and only checks that every alert arrives.
func TestPublishToAlertLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s at 10k events/s: not in -short")
	}
	rate, limit := 10000, 250*time.Millisecond
	if raceEnabled {
		rate = 2000
	}
	js := svcStack(t)
	m := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, svcConfig(), WithMetrics(m))
	rep, err := MeasureLatency(t.Context(), js, LatencyConfig{Rate: rate, Duration: 20 * time.Second, Seed: 1})
	require.NoError(t, err)
	t.Logf("client side: %s", rep)
	t.Logf("service side (stream arrival to alert publish ack, all alerts): %d alerts, p99 <= %s (histogram bucket)",
		histogramCount(t, m.latency), histogramQuantile(t, m, 0.99))
	require.Zero(t, rep.Missing, "every attack raises its alert")
	require.Positive(t, rep.Alerts)
	require.InDelta(t, float64(rate), rep.EventsPerSecond, 0.1*float64(rate), "the load was steady at the rate")
	if !raceEnabled {
		require.Less(t, rep.P99, limit, "p99 publish-to-alert latency")
	}
}
