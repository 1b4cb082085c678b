package detect_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/bench"
)

// TestPublishToAlertLatency runs a detect Service under 10,000 events/s of
// demo traffic with 20 attack events/s among them (2,000 events/s under the
// race detector), requires every attack's alert to reach SESSIONMON_ALERTS,
// and logs the publish-to-alert latency (from just before the SDK publishes
// the event) and the rate the load reached. The latency is a measurement,
// not a pass/fail bound: it depends on the machine and what else runs on
// it. Run with -v to see the figures (docs/performance.md).
func TestPublishToAlertLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s at 10k events/s: not in -short")
	}
	rate := 10000
	if detect.RaceEnabled {
		rate = 2000
	}
	js := detect.SvcStack(t)
	m := detect.NewMetrics(nil)
	_, _ = detect.StartService(t, js, detect.ClosedDSN, detect.SvcConfig(), detect.WithMetrics(m))
	// A quiet machine has every alert within a second of its event, a busy
	// one within seconds. The settle ends once all have arrived, so its
	// headroom costs time only when an alert is really lost.
	rep, err := bench.MeasureLatency(t.Context(), js, bench.LatencyConfig{Rate: rate, Duration: 20 * time.Second,
		Settle: 2 * time.Minute, Seed: 1})
	require.NoError(t, err)
	t.Logf("client side: %s", rep)
	t.Logf("load: %.0f events/s of the %d events/s asked", rep.EventsPerSecond, rate)
	t.Logf("service side (stream arrival to alert publish ack, all alerts): %d alerts, p99 <= %s (histogram bucket)",
		detect.HistogramCount(t, m.LatencyHistogram()), detect.HistogramQuantile(t, m, 0.99))
	require.Positive(t, rep.Attacks, "attacks were published")
	require.Zero(t, rep.Missing, "every attack raises its alert")
	require.Equal(t, rep.Attacks, rep.Alerts, "one alert per attack")
	require.GreaterOrEqual(t, rep.Events, int64(rep.Attacks), "the attacks are among the events published")
}
