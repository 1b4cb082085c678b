package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionmon/sessionmon/internal/pii"
)

// Metrics are the worker's Prometheus metrics.
type Metrics struct {
	ingested     prometheus.Counter
	rejected     *prometheus.CounterVec
	batchSize    prometheus.Histogram
	batchLatency prometheus.Histogram
	insertErrors prometheus.Counter
	pending      prometheus.Gauge
	ackPending   prometheus.Gauge
	redelivered  prometheus.Counter
	// skipped counts messages of the alerts stream that are neither an
	// alert nor a status change (NewAlertMetrics only).
	skipped prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_ingest_events_total",
			Help: "Events written to ClickHouse and acknowledged (redeliveries included).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_ingest_rejected_total",
			Help: "Events sent to the dead-letter stream, by reason (invalid_json, schema, app_mismatch, subject_mismatch, pii).",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sessionmon_ingest_batch_size",
			Help:    "Events per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		batchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sessionmon_ingest_batch_seconds",
			Help:    "Time to write one batch to ClickHouse, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_ingest_insert_errors_total",
			Help: "Failed ClickHouse insert attempts (each is retried).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_ingest_consumer_pending",
			Help: "Events in the stream not yet delivered to the ingest consumer.",
		}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_ingest_consumer_ack_pending",
			Help: "Events delivered to the ingest consumer and not yet acknowledged.",
		}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_ingest_redelivered_total",
			Help: "Events received again after a redelivery (stored once all the same).",
		}),
	}
	for _, r := range pii.Reasons {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.ingested, m.rejected, m.batchSize, m.batchLatency, m.insertErrors, m.pending, m.ackPending, m.redelivered)
	}
	return m
}

// NewAlertMetrics creates the metrics of the alerts stream's writer
// (NewAlerts) and registers them with reg (nil: not registered). They keep
// the names they had when detect wrote alerts: alerts and status changes
// written, failed attempts, messages skipped.
func NewAlertMetrics(reg prometheus.Registerer) *Metrics {
	m := NewMetrics(nil)
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sessionmon_detect_alerts_stored_total",
		Help: "Alerts and status changes written to ClickHouse (redeliveries included).",
	})
	m.insertErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sessionmon_detect_store_errors_total",
		Help: "Failed attempts to write alerts to ClickHouse (each is retried).",
	})
	m.skipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sessionmon_detect_store_rejected_total",
		Help: "Messages on SESSIONMON_ALERTS that are neither an alert nor a status change, skipped.",
	})
	if reg != nil {
		reg.MustRegister(m.ingested, m.insertErrors, m.skipped)
	}
	return m
}
