package demo_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// demoCityDB writes a city database with two /16s in each of the demo's
// cities, the first after a decoy of the same name in another country,
// and returns the Resolver over it and the networks by city.
func demoCityDB(t *testing.T) (*geo.Resolver, map[string][]netip.Prefix) {
	t.Helper()
	nets := map[string]geotest.Facts{}
	want := map[string][]netip.Prefix{}
	ottawa := [2]float64{45.4215, -75.6972}
	for i, p := range demo.Places() {
		nets[fmt.Sprintf("41.%d.0.0/16", 2*i)] = geotest.Facts{Country: "CA", City: p.City, Lat: &ottawa[0], Lon: &ottawa[1], AccuracyKM: 20}
		for _, network := range []string{fmt.Sprintf("41.%d.0.0/16", 2*i+1), fmt.Sprintf("42.%d.0.0/16", i)} {
			nets[network] = geotest.Facts{Country: p.Country, City: p.City, Lat: &p.Lat, Lon: &p.Lon, AccuracyKM: 20}
			want[p.City] = append(want[p.City], netip.MustParsePrefix(network))
		}
	}
	r, err := geo.Open(geo.Config{CityPaths: []string{geotest.WriteDatabases(t, nets).City}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r, want
}

func TestNetworksFromCityDatabase(t *testing.T) {
	t.Parallel()
	r, want := demoCityDB(t)
	networks, err := demo.Networks(t.Context(), r)
	require.NoError(t, err)
	places := demo.Places()
	require.Len(t, networks, len(places))
	for i, p := range places {
		require.Equal(t, want[p.City], networks[i], p.City)
	}

	t.Run("no city database", func(t *testing.T) {
		t.Parallel()
		_, err := demo.Networks(t.Context(), nil)
		require.ErrorIs(t, err, geo.ErrNoCityDatabase)
	})
	t.Run("a city the database lacks", func(t *testing.T) {
		t.Parallel()
		lat, lon := 52.52, 13.405
		path := geotest.WriteDatabases(t, map[string]geotest.Facts{"41.0.0.0/16": {Country: "DE", City: "Berlin", Lat: &lat, Lon: &lon}}).City
		partial, err := geo.Open(geo.Config{CityPaths: []string{path}})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, partial.Close()) })
		_, err = demo.Networks(t.Context(), partial)
		require.ErrorContains(t, err, "no network in Paris (FR), London (GB)")
		require.NotContains(t, err.Error(), "Berlin")
	})
}

// TestGenerateSendsWhatTheSDKSends: with a city database, demo clients carry
// an ip_prefix and ip_hash in the database's networks and no location;
// sessionmon's enrichment places them in the demo's cities, and the
// detectors, enriching the same way offline, raise the same alerts as from
// the demo's own locations.
func TestGenerateSendsWhatTheSDKSends(t *testing.T) {
	t.Parallel()
	r, want := demoCityDB(t)
	networks, err := demo.Networks(t.Context(), r)
	require.NoError(t, err)
	end := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	events := generate(t, demo.Options{Users: 50, Seed: 3, End: end, Networks: networks})
	require.Equal(t, events, generate(t, demo.Options{Users: 50, Seed: 3, End: end, Networks: networks}), "the same seed must give the same traffic")

	cityOf := map[netip.Prefix]geo.Place{}
	for _, p := range demo.Places() {
		for _, network := range want[p.City] {
			cityOf[network] = p
		}
	}
	clients, seen := 0, map[string]bool{}
	for i := range events {
		se, err := schemas.FromSDK(&events[i], demo.App, end)
		require.NoError(t, err, "event %d (%s)", i, events[i].Type)
		c := se.Client
		if c == nil {
			continue
		}
		clients++
		// Exactly what the SDK's RequestInspector sends, and a device.
		require.False(t, c.HasGeo(), "event %d carries a location", i)
		require.Zero(t, c.Lat, "event %d", i)
		require.Zero(t, c.Lon, "event %d", i)
		require.Empty(t, c.Country, "event %d", i)
		require.Empty(t, c.City, "event %d", i)
		require.Zero(t, c.AccuracyKM, "event %d", i)
		require.Zero(t, c.ASN, "event %d", i)
		require.NotEmpty(t, c.Device, "event %d", i)
		require.NotEmpty(t, c.UserAgent, "event %d", i)
		require.True(t, strings.HasPrefix(c.IPHash, demo.KeyID+":"), "event %d ip_hash %q", i, c.IPHash)
		prefix, err := netip.ParsePrefix(c.IPPrefix)
		require.NoError(t, err)
		require.Equal(t, 24, prefix.Bits(), "event %d", i)
		home, ok := cityOf[netip.PrefixFrom(prefix.Addr(), 16).Masked()]
		require.True(t, ok, "event %d: %s is in none of the demo's networks", i, prefix)

		// Enrichment places the prefix in the city of its network.
		r.Enrich(c)
		require.Equal(t, schemas.GeoSourceGeoIP, c.GeoSource, "event %d", i)
		require.Equal(t, home.Country, c.Country, "event %d", i)
		require.Equal(t, home.City, c.City, "event %d", i)
		require.True(t, c.HasGeo(), "event %d", i)
		require.InDelta(t, home.Lat, *c.Lat, 0.001)
		require.InDelta(t, home.Lon, *c.Lon, 0.001)
		require.Equal(t, float64(20), c.AccuracyKM)
		seen[home.City] = true
	}
	require.Greater(t, clients, 1000)
	require.Len(t, seen, len(demo.Places()), "every demo city has users")

	// Offline, the detectors enrich each event as ingest does and find
	// the planted attacks: the same alerts as when the demo sends its own
	// locations, impossible travel and session hijacks included.
	viaGeoIP := detectOffline(t, events, end, detect.WithGeo(r))
	appSupplied := detectOffline(t, generate(t, demo.Options{Users: 50, Seed: 3, End: end}), end)
	// The planted impossible travels, plus the refresh tokens replayed
	// from Lagos and the sessions hijacked to São Paulo, both moves no
	// one makes in minutes; the hijacks and the replays are sessions used
	// from another device in another country.
	require.Equal(t, 3*demo.AttacksPerKind, viaGeoIP["impossible_travel"])
	require.Equal(t, 2*demo.AttacksPerKind, viaGeoIP["session_hijack"])
	// The demo's own locations come with an ASN per city, and the
	// stuffing attacks from one city add up to an ASN-wide alert; a city
	// database alone gives no ASN.
	require.Equal(t, appSupplied["credential_stuffing"], viaGeoIP["credential_stuffing"]+1)
	delete(appSupplied, "credential_stuffing")
	delete(viaGeoIP, "credential_stuffing")
	require.Equal(t, appSupplied, viaGeoIP)

	// Without enrichment the detectors have no location to judge.
	bare := detectOffline(t, events, end)
	require.Zero(t, bare["impossible_travel"])
	require.Zero(t, bare["session_hijack"])
}

// TestGenerateWithoutCityDatabase: without networks the demo supplies the
// location itself.
func TestGenerateWithoutCityDatabase(t *testing.T) {
	t.Parallel()
	events := generate(t, demo.Options{Users: 50, Seed: 3, End: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
	names := map[string]bool{}
	for _, p := range demo.Places() {
		names[p.City] = true
	}
	var r *geo.Resolver
	clients := 0
	for i := range events {
		se, err := schemas.FromSDK(&events[i], demo.App, time.Now())
		require.NoError(t, err, "event %d", i)
		c := se.Client
		if c == nil {
			continue
		}
		clients++
		require.True(t, c.HasGeo(), "event %d", i)
		require.True(t, names[c.City], "event %d city %q", i, c.City)
		require.NotEmpty(t, c.Country, "event %d", i)
		require.Positive(t, c.AccuracyKM, "event %d", i)
		require.NotZero(t, c.ASN, "event %d", i)
		require.NotEmpty(t, c.IPPrefix, "event %d", i)
		r.Enrich(c)
		require.Equal(t, schemas.GeoSourceApp, c.GeoSource, "event %d", i)
	}
	require.Greater(t, clients, 1000)
}

// detectOffline runs the default detectors over events and counts the
// alerts by detector.
func detectOffline(t *testing.T, events []sdk.Event, end time.Time, opts ...detect.Option) map[string]int {
	t.Helper()
	var in, out bytes.Buffer
	for i := range events {
		b, err := events[i].MarshalJSONFor(demo.App)
		require.NoError(t, err)
		in.Write(b)
		in.WriteByte('\n')
	}
	clock := func() time.Time { return end.Add(time.Minute) }
	st, err := detect.RunOffline(t.Context(), &in, &out, detect.DefaultConfig(), clock, opts...)
	require.NoError(t, err)
	require.Zero(t, st.Invalid, "%v", st.InvalidLines)
	found := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var a struct {
			Detector string `json:"detector"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &a))
		found[a.Detector]++
	}
	return found
}

func generate(t *testing.T, o demo.Options) []sdk.Event {
	t.Helper()
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	require.NoError(t, err)
	return demo.Generate(p, o)
}
