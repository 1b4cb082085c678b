package intake

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionmon/sessionmon/internal/pii"
)

type metrics struct {
	requests     *prometheus.CounterVec
	events       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	duration     prometheus.Histogram
	inFlight     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_intake_requests_total",
			Help: "HTTP intake requests, by status code.",
		}, []string{"code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_intake_events_total",
			Help: "Events through the HTTP intake, by result: accepted, duplicate, rejected, failed (not stored; the client retries).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_intake_rejected_total",
			Help: "Events the HTTP intake rejected, by reason (as ingest's dead letters).",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_intake_auth_failures_total",
			Help: "HTTP intake requests refused for their token: unknown (or revoked) or expired.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sessionmon_intake_request_duration_seconds",
			Help:    "Time to answer an HTTP intake request, JetStream's acknowledgements included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_intake_in_flight",
			Help: "HTTP intake requests being handled.",
		}),
	}
	for _, r := range []string{StatusAccepted, StatusDuplicate, StatusRejected, StatusFailed} {
		m.events.WithLabelValues(r)
	}
	for _, r := range pii.Reasons {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.events, m.rejected, m.authFailures, m.duration, m.inFlight} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
