package detect

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
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
		{name: "distance/antipodes", lat1: 0, lon1: 0, lat2: 0, lon2: 180, want: maxEarthDistanceKM, tolerance: 1e-6},
		{name: "distance/pole to pole", lat1: 90, lon1: 0, lat2: -90, lon2: 0, want: maxEarthDistanceKM, tolerance: 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := distanceKM(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
			require.InDelta(t, tc.want, got, tc.tolerance)
			require.InDelta(t, got, distanceKM(tc.lat2, tc.lon2, tc.lat1, tc.lon1), 1e-9, "symmetric")
			require.False(t, math.IsNaN(got))
		})
	}
}

func TestNetworksClassify(t *testing.T) {
	t.Parallel()
	nets := newNetworks([]Network{
		{Prefix: netip.MustParsePrefix("198.51.100.0/22"), Kind: NetworkCorporate, Note: "office"},
		{ASN: 14593, Kind: NetworkSatellite, Note: "Starlink", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Prefix: netip.MustParsePrefix("2001:db8:100::/40"), Kind: NetworkRelay},
	})
	before := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		client *schemas.Client
		at     time.Time
		want   NetworkKind
	}{
		{name: "classify/prefix inside a listed network", client: &schemas.Client{IPPrefix: "198.51.102.0/24"}, at: before, want: NetworkCorporate},
		{name: "classify/prefix outside", client: &schemas.Client{IPPrefix: "198.51.104.0/24"}, at: before},
		{name: "classify/IPv6 prefix inside", client: &schemas.Client{IPPrefix: "2001:db8:1ff::/48"}, at: before, want: NetworkRelay},
		{name: "classify/ASN", client: &schemas.Client{ASN: 14593}, at: before, want: NetworkSatellite},
		{name: "classify/ASN after expiry", client: &schemas.Client{ASN: 14593}, at: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "classify/no client block", at: before},
		{name: "classify/nothing to match", client: &schemas.Client{Country: "DE"}, at: before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, ok := nets.classify(tc.client, tc.at)
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, tc.want, m.kind)
		})
	}
	var none *Networks
	_, ok := none.classify(&schemas.Client{ASN: 14593}, before)
	require.False(t, ok, "a nil classifier knows no networks")
}
