package detect

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionmon/sessionmon/internal/pii"
)

// Metrics are the detect service's Prometheus metrics.
type Metrics struct {
	events         prometheus.Counter
	invalid        *prometheus.CounterVec
	misplaced      prometheus.Counter
	late           prometheus.Counter
	skipped        prometheus.Counter
	replayed       prometheus.Counter
	alerts         *prometheus.CounterVec
	replaySkipped  prometheus.Counter
	publishErrors  prometheus.Counter
	stateKeys      prometheus.Gauge
	pending        prometheus.Gauge
	consumerLag    prometheus.Gauge
	latency        prometheus.Histogram
	watermarkDelay prometheus.Gauge

	snapshotAge      prometheus.Gauge
	snapshotBytes    prometheus.Gauge
	snapshotSeconds  *prometheus.HistogramVec
	snapshotFailures *prometheus.CounterVec

	leasesHeld  prometheus.Gauge
	leaseLosses prometheus.Counter

	// suppression are the suppression rules' metrics (suppress.go).
	suppression suppressionMetrics
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_events_total",
			Help: "Events given to the detectors from the stream (replayed ones not included).",
		}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_detect_invalid_events_total",
			Help: "Events the detectors skipped without an alert, by the reason ingest dead-letters them (invalid_json, schema, app_mismatch, subject_mismatch, pii; framing: a batched message that cannot be read, counted once).",
		}, []string{"reason"}),
		misplaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_misplaced_events_total",
			Help: "Events a partition's engine received whose subject belongs to another partition (a publisher batched them by a stale partition count); they are processed where they arrived.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_late_events_total",
			Help: "Events older than the release watermark when they arrived, processed at once and possibly out of order.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_redelivered_skipped_total",
			Help: "Deliveries of messages already processed (or replayed at start), and messages replacing one already processed (an erasure's rewrite), acknowledged and skipped.",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_replayed_events_total",
			Help: "Events replayed at start to rebuild the detectors' state.",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_detect_alerts_total",
			Help: "Alerts published to SESSIONMON_ALERTS, by detector and severity.",
		}, []string{"detector", "severity"}),
		replaySkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_replay_alerts_suppressed_total",
			Help: "Alerts found again while replaying at start and not published (already sent before the restart).",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_alert_publish_errors_total",
			Help: "Failed attempts to publish an alert (each is retried).",
		}),
		stateKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_state_keys",
			Help: "Keys the detectors and the dedup table hold (an estimate of the engine's memory).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_pending_events",
			Help: "Events waiting in the engine's reorder buffer.",
		}),
		consumerLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_consumer_pending",
			Help: "Events in the stream not yet delivered to the detect consumer.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sessionmon_detect_alert_latency_seconds",
			Help: "From the triggering event's arrival in SESSIONMON_EVENTS to the alert's publish ack.",
			// Fine around the 250 ms objective.
			Buckets: []float64{.005, .01, .025, .05, .1, .15, .175, .2, .225, .25, .3, .4, .5, 1, 2.5, 5, 10, 30},
		}),
		watermarkDelay: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_watermark_delay_seconds",
			Help: "Wall time minus the engine's event-time watermark.",
		}),
		snapshotAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_snapshot_age_seconds",
			Help: "Age of the newest detector state snapshot written (or restored at start), of the engine whose is oldest; since start when none is.",
		}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_snapshot_bytes",
			Help: "Size of the last detector state snapshot written, summed over the engines.",
		}),
		snapshotSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessionmon_detect_snapshot_seconds",
			Help:    "Time to encode a detector state snapshot (the engine waits meanwhile), to write it, and to read and restore it at start.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"step"}),
		snapshotFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_detect_snapshot_failures_total",
			Help: "Detector state snapshots that could not be encoded, written, or used at start (read: missing ones are not counted; the engine replays instead).",
		}, []string{"step"}),
		leasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_leases_held",
			Help: "Leases this process holds on partitions, the source role or everything (bucket SESSIONMON_DETECT_LEASES); below the units it owns while another process holds one.",
		}),
		leaseLosses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_lease_losses_total",
			Help: "Times this process stopped its units because a lease could not be renewed in time or was taken over.",
		}),
		suppression: newSuppressionMetrics(),
	}
	for _, r := range pii.Reasons {
		m.invalid.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.events, m.invalid, m.misplaced, m.late, m.skipped, m.replayed, m.alerts, m.replaySkipped,
			m.publishErrors, m.stateKeys, m.pending, m.consumerLag, m.latency,
			m.watermarkDelay, m.snapshotAge, m.snapshotBytes, m.snapshotSeconds, m.snapshotFailures,
			m.leasesHeld, m.leaseLosses)
		reg.MustRegister(m.suppression.collectors()...)
	}
	return m
}
