package geowrite_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/geo/geowrite"
)

func TestWriteReadsBack(t *testing.T) {
	t.Parallel()
	lat, lon := 52.52, 13.405
	dir := t.TempDir()
	p, err := geowrite.Write(dir, map[string]geowrite.Facts{
		"198.18.7.0/24": {Country: "DE", City: "Berlin", Lat: &lat, Lon: &lon, AccuracyKM: 20, ASN: 64700, ASOrg: "Sim", Anonymous: []string{"hosting_provider"}},
		"100.64.1.0/24": {ASN: 64701},
	})
	require.NoError(t, err)
	r, err := geo.Open(geo.Config{CityPaths: []string{p.City}, ASNPaths: []string{p.ASN}, AnonymousIPPath: p.Anonymous})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })

	loc, ok := r.Lookup(netip.MustParsePrefix("198.18.7.0/24"))
	require.True(t, ok)
	require.Equal(t, "DE", loc.Country)
	require.Equal(t, "Berlin", loc.City)
	require.InDelta(t, lat, loc.Lat, 1e-4)
	require.Equal(t, 20.0, loc.AccuracyKM)
	require.Equal(t, uint32(64700), loc.ASN)
	require.True(t, loc.IsHostingProvider)
	loc, ok = r.Lookup(netip.MustParsePrefix("100.64.1.0/24"))
	require.True(t, ok)
	require.Equal(t, uint32(64701), loc.ASN)
	require.False(t, loc.IsAnonymous)
	_, ok = r.Lookup(netip.MustParsePrefix("100.64.2.0/24"))
	require.False(t, ok)

	_, err = geowrite.Write(dir, map[string]geowrite.Facts{"not a network": {ASN: 1}})
	require.ErrorContains(t, err, "not a network")
}
