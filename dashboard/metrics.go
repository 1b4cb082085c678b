package dashboard

import (
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched labels a request that matched no route.
const routeUnmatched = "unmatched"

// Metrics are the dashboard's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	// routes are the registered route patterns, the only values the
	// route label takes: a label never carries a path as the client sent
	// it (an alert id, a subject).
	routes map[string]bool
}

// NewMetrics creates the dashboard's metrics and registers them with reg
// (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_dashboard_requests_total",
			Help: "Dashboard and API requests answered, by route pattern (as registered, e.g. /alerts/:id; unmatched: no route) and status code.",
		}, []string{"route", "code"}),
		routes: map[string]bool{},
	}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

// countRequests counts every request by route and status. It runs outside
// every other middleware, so it sees the status the error handler will
// answer a returned error with (classify), without handling the error
// itself.
func (h *handler) countRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		code := c.Response().Status
		if err != nil && !c.Response().Committed {
			code = classify(err).Status
		}
		route := c.Path()
		if !h.metrics.routes[route] {
			route = routeUnmatched
		}
		h.metrics.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		return err
	}
}
