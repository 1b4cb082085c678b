package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notifier's Prometheus metrics, labelled by webhook.
type Metrics struct {
	delivered     *prometheus.CounterVec
	retried       *prometheus.CounterVec
	failed        *prometheus.CounterVec
	undeliverable *prometheus.CounterVec
	silenced      *prometheus.CounterVec
	attempt       *prometheus.HistogramVec
	delay         *prometheus.HistogramVec
	logDropped    prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	wh := []string{"webhook"}
	m := &Metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_notify_delivered_total",
			Help: "Alerts delivered to a webhook (2xx).",
		}, wh),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_notify_retried_total",
			Help: "Failed attempts that will be retried (network error, timeout, 408, 429, 5xx).",
		}, wh),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_notify_failed_total",
			Help: "Alerts a webhook refused permanently (4xx other than 408 and 429, redirects), not retried.",
		}, wh),
		undeliverable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_notify_undeliverable_total",
			Help: "Alerts given up on after give_up_after; they can be redelivered by hand.",
		}, wh),
		silenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_notify_silenced_total",
			Help: "Alerts not sent to a webhook because a suppression rule silenced them.",
		}, wh),
		attempt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessionmon_notify_attempt_seconds",
			Help:    "Duration of one delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, wh),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessionmon_notify_delivery_seconds",
			Help:    "Time from an alert's publication to its delivery, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 14),
		}, wh),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_notify_delivery_log_dropped_total",
			Help: "Delivery log rows dropped because ClickHouse was unavailable for too long.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.retried, m.failed, m.undeliverable, m.silenced, m.attempt, m.delay, m.logDropped)
	}
	return m
}

// init makes the series of webhook visible before its first delivery.
func (m *Metrics) initWebhook(name string) {
	m.delivered.WithLabelValues(name)
	m.retried.WithLabelValues(name)
	m.failed.WithLabelValues(name)
	m.undeliverable.WithLabelValues(name)
	m.silenced.WithLabelValues(name)
}
