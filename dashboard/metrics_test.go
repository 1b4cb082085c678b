package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestRequestMetrics counts requests by route pattern and the status sent,
// errors answered by the error handler included; a label never holds the
// path as the client sent it.
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := newAuthEnv(t, func(_ *Config, d *Deps) { d.Registerer = reg })

	cases := []struct {
		name, method, path, route string
		code                      int
	}{
		{name: "page", method: http.MethodGet, path: "/login", route: "/login", code: http.StatusOK},
		{name: "page with an id, signed out", method: http.MethodGet, path: "/alerts/secret-alert-id", route: "/alerts/:id", code: http.StatusSeeOther},
		{name: "API error", method: http.MethodGet, path: "/api/v1/subjects/secret-subject", route: "/api/v1/subjects/:subject", code: http.StatusUnauthorized},
		{name: "no route", method: http.MethodGet, path: "/secret-path", route: routeUnmatched, code: http.StatusNotFound},
		{name: "CSRF refused", method: http.MethodPost, path: "/login", route: "/login", code: http.StatusForbidden},
	}
	want := map[string]float64{}
	for _, tc := range cases {
		req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, nil)
		if tc.method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		env.s.Handler().ServeHTTP(rec, req)
		require.Equal(t, tc.code, rec.Code, "%s: %s", tc.name, rec.Body.String())
		want[tc.route+" "+strconv.Itoa(tc.code)]++
	}

	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "sessionmon_dashboard_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var route, code string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "route":
					route = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			require.NotContains(t, route, "secret", "a route label holds a client's path")
			got[route+" "+code] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, want, got)
}
