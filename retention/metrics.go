package retention

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the scheduled job's Prometheus metrics.
type Metrics struct {
	LastSuccess prometheus.Gauge
	Duration    prometheus.Gauge
	RowsDeleted prometheus.Counter
	Failures    prometheus.Counter
	Skipped     prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_retention_last_success_timestamp_seconds",
			Help: "When the retention job last finished without failure (Unix time).",
		}),
		Duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_retention_last_duration_seconds",
			Help: "How long the last retention run took.",
		}),
		RowsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_retention_rows_deleted_total",
			Help: "Rows deleted by retention runs.",
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_retention_failures_total",
			Help: "Retention runs that failed (see the deletion log).",
		}),
		Skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_retention_skipped_total",
			Help: "Scheduled runs skipped because another process held the retention lock.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.LastSuccess, m.Duration, m.RowsDeleted, m.Failures, m.Skipped)
	}
	return m
}
