package geo

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDistanceKM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tolerance        float64
	}{
		{name: "distance/same point", lat1: 52.52, lon1: 13.405, lat2: 52.52, lon2: 13.405, want: 0, tolerance: 1e-9},
		{name: "distance/Berlin to Sydney", lat1: 52.52, lon1: 13.405, lat2: -33.8688, lon2: 151.2093, want: 16094.5, tolerance: 1},
		{name: "distance/Frankfurt to New York", lat1: 50.1109, lon1: 8.6821, lat2: 40.7128, lon2: -74.006, want: 6202.7, tolerance: 1},
		{name: "distance/one degree of longitude on the equator", lat1: 0, lon1: 0, lat2: 0, lon2: 1, want: 111.195, tolerance: 0.01},
		{name: "distance/across the date line", lat1: 0, lon1: 179.5, lat2: 0, lon2: -179.5, want: 111.195, tolerance: 0.01},
		{name: "distance/antipodes", lat1: 0, lon1: 0, lat2: 0, lon2: 180, want: MaxDistanceKM, tolerance: 1e-6},
		{name: "distance/pole to pole", lat1: 90, lon1: 0, lat2: -90, lon2: 0, want: MaxDistanceKM, tolerance: 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := DistanceKM(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
			require.InDelta(t, tc.want, got, tc.tolerance)
			require.InDelta(t, got, DistanceKM(tc.lat2, tc.lon2, tc.lat1, tc.lon1), 1e-9, "symmetric")
			require.False(t, math.IsNaN(got))
		})
	}
}
