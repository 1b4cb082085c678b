package detect

import "github.com/prometheus/client_golang/prometheus"

// Exported for the tests of package detect_test, which may import what
// imports detect (internal/bench).
var (
	SvcStack       = svcStack
	SvcConfig      = svcConfig
	StartService   = startService
	HistogramCount = histogramCount
)

// ClosedDSN and RaceEnabled are closedDSN and raceEnabled.
const (
	ClosedDSN   = closedDSN
	RaceEnabled = raceEnabled
)

// LatencyHistogram returns m's publish latency histogram.
func (m *Metrics) LatencyHistogram() prometheus.Histogram { return m.latency }

// HistogramQuantile is histogramQuantile.
var HistogramQuantile = histogramQuantile
