package ingest

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// demoBodies returns n encoded events of demo traffic, as the SDK sends them.
func demoBodies(tb testing.TB, n int) [][]byte {
	tb.Helper()
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	require.NoError(tb, err)
	events := demo.Generate(p, demo.Options{Users: n/25 + 10, Seed: 9, End: time.Now()})
	out := make([][]byte, n)
	for i := range out {
		b, err := events[i%len(events)].MarshalJSONFor(demo.App)
		require.NoError(tb, err)
		out[i] = b
	}
	return out
}

func TestConvertEnrichesFromGeoIP(t *testing.T) {
	dir := geotest.Dir(t)
	r, err := geo.Open(geo.Config{
		CityPaths: []string{filepath.Join(dir, "GeoIP2-City-Test.mmdb")},
		ASNPaths:  []string{filepath.Join(dir, "GeoLite2-ASN-Test.mmdb")},
	})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	s, err := New(nil, "", DefaultConfig(), WithGeo(r))
	require.NoError(t, err)

	now := time.Now()
	at := now.UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
	tests := []struct {
		name     string
		client   string
		country  string
		city     string
		lat, lon float64
		source   string
	}{
		{name: "prefix only: looked up", client: `{"ip_prefix":"175.16.199.0/24"}`, country: "CN", city: "Changchun", lat: 43.88, lon: 125.3228, source: "geoip"},
		{name: "ipv6 prefix", client: `{"ip_prefix":"2001:480:10::/48"}`, country: "US", city: "San Diego", lat: 32.7203, lon: -117.1552, source: "geoip"},
		{name: "app-supplied geo wins", client: `{"ip_prefix":"175.16.199.0/24","country":"DE","city":"Berlin","lat":52.52,"lon":13.4}`, country: "DE", city: "Berlin", lat: 52.5, lon: 13.4, source: "app"},
		{name: "unknown network: no geo", client: `{"ip_prefix":"198.51.100.0/24"}`, source: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"id":"e1","schema_version":1,"type":"login.succeeded","time":"` + at + `","app":"shop","subject":"k1:AAAAAAAAAAAAAAAAAAAAAA","client":` + tt.client + `}`
			row, dead := convertOne(s, schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"), []byte(body), now)
			require.Nil(t, dead)
			require.Equal(t, tt.source, row.GeoSource)
			require.Equal(t, tt.country, row.ClientCountry)
			require.Equal(t, tt.city, row.ClientCity)
			require.InDelta(t, tt.lat, row.ClientLat, 0.001)
			require.InDelta(t, tt.lon, row.ClientLon, 0.001)
			require.Equal(t, tt.source != "", row.HasGeo)
		})
	}
}

func TestConvertReducesUserAgent(t *testing.T) {
	s, err := New(nil, "", DefaultConfig())
	require.NoError(t, err)
	now := time.Now()
	at := now.UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
	body := `{"id":"e1","schema_version":1,"type":"login.succeeded","time":"` + at + `","app":"shop","subject":"k1:AAAAAAAAAAAAAAAAAAAAAA","client":{"user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"}}`
	row, dead := convertOne(s, schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"), []byte(body), now)
	require.Nil(t, dead)
	require.Equal(t, UserAgent{Browser: "Safari", OS: "iOS", Device: "mobile"}, UserAgent{Browser: row.UABrowser, OS: row.UAOS, Device: row.UADevice})
}

// BenchmarkConvert measures the CPU path of every event in ingest: strict
// decode, PII guard, row mapping, user-agent reduction.
func BenchmarkConvert(b *testing.B) {
	bodies := demoBodies(b, 10000)
	s, err := New(nil, "", DefaultConfig())
	require.NoError(b, err)
	now := time.Now()
	var size int64
	for _, body := range bodies {
		size += int64(len(body))
	}
	b.SetBytes(size / int64(len(bodies)))
	subjects := make([]string, len(bodies))
	for i, body := range bodies {
		var e struct{ Subject string }
		require.NoError(b, json.Unmarshal(body, &e))
		subjects[i] = schemas.EventSubject(demo.App, e.Subject)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, dead := convertOne(s, subjects[i%len(bodies)], bodies[i%len(bodies)], now); dead != nil {
			b.Fatal(dead.Error)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// convertOne converts one single-event message as add does and returns
// its row, or its dead letter.
func convertOne(s *Service, natsSubject string, body []byte, now time.Time) (chstore.EventRow, *DeadLetter) {
	var sh shard
	s.convert(&sh, natsSubject, nil, body, 1, now)
	if len(sh.dead) > 0 {
		return chstore.EventRow{}, &sh.dead[0]
	}
	return sh.rows.Row(0), nil
}

func TestBatchPoolRecycles(t *testing.T) {
	pool := newBatchPool(1, 2)
	b := pool.get()
	require.Len(t, b.shards, 2)
	b.shards[0].rows.Add(&chstore.EventRow{ID: "e1", Subject: "s1"})
	b.shards[1].rows.Add(&chstore.EventRow{ID: "e2"})
	b.shards[1].dead = append(b.shards[1].dead, DeadLetter{Body: []byte("x")})
	b.converted.Store(3)
	b.started = time.Now()
	require.Equal(t, 3, b.events())
	rows := b.rows()
	require.Equal(t, 2, rows.Len())
	require.Equal(t, "e2", rows.Row(1).ID)
	require.Len(t, b.dead(), 1)
	pool.put(b)

	again := pool.get()
	require.Same(t, b, again, "get returns the batch put back")
	require.Zero(t, again.events())
	require.Zero(t, again.len())
	require.True(t, again.started.IsZero())
	require.Empty(t, again.dead())
	require.Zero(t, again.rows().Len())
	// The old dead letter's body must not stay reachable through the array.
	require.Nil(t, again.shards[1].dead[:1][0].Body, "dead letter body still referenced after put")
	again.shards[0].rows.Add(&chstore.EventRow{ID: "e3"})
	got := again.shards[0].rows.Row(0)
	require.Equal(t, "e3", got.ID)
	require.Empty(t, got.Subject)
}
