package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

func ptr(v float64) *float64 { return &v }

// TestStoredRowMatchesWhatDetectorsSee converts events the way ingest stores
// them and runs the same bodies through a detect engine with the same
// databases: every enriched field of the row equals what the detectors saw.
func TestStoredRowMatchesWhatDetectorsSee(t *testing.T) {
	p := geotest.WriteDatabases(t, map[string]geotest.Facts{
		"198.18.7.0/24":  {Country: "DE", City: "Berlin", Lat: ptr(52.52), Lon: ptr(13.405), AccuracyKM: 20, ASN: 3320, ASOrg: "Deutsche Telekom AG"},
		"192.0.2.0/24":   {Country: "NL", City: "Amsterdam", Lat: ptr(52.37), Lon: ptr(4.89), AccuracyKM: 50, ASN: 60729, ASOrg: "Tor exit operator", Anonymous: []string{"tor_exit_node", "hosting_provider"}},
		"100.65.12.0/24": {Country: "AU", ASN: 1221, ASOrg: "Telstra"},
	})
	r, err := geo.Open(geo.Config{CityPaths: []string{p.City}, ASNPaths: []string{p.ASN}, AnonymousIPPath: p.Anonymous})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	s, err := New(nil, "", DefaultConfig(), WithGeo(r))
	require.NoError(t, err)
	eng, err := detect.NewEngine(detect.DefaultConfig(), nil, detect.WithGeo(r))
	require.NoError(t, err)

	now := time.Now()
	at := now.UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
	for _, tc := range []struct {
		name    string
		client  string
		source  string
		country string
		city    string
		lat     float64
		asn     uint32
		org     string
		anon    []string
	}{
		{name: "what the SDK sends: all from the databases", client: `{"ip_prefix":"198.18.7.0/24","ip_hash":"k1:h-AAAAAAAAAAAAAAAAAAAAAA"}`,
			source: "geoip", country: "DE", city: "Berlin", lat: 52.52, asn: 3320, org: "Deutsche Telekom AG"},
		{name: "anonymous network", client: `{"ip_prefix":"192.0.2.0/24"}`,
			source: "geoip", country: "NL", city: "Amsterdam", lat: 52.37, asn: 60729, org: "Tor exit operator", anon: []string{"hosting", "tor_exit"}},
		{name: "country database only", client: `{"ip_prefix":"100.65.12.0/24"}`,
			source: "geoip", country: "AU", asn: 1221, org: "Telstra"},
		{name: "app coordinates win whole, network still enriched", client: `{"ip_prefix":"192.0.2.0/24","lat":48.85,"lon":2.35,"country":"FR"}`,
			source: "app", country: "FR", lat: 48.9, asn: 60729, org: "Tor exit operator", anon: []string{"hosting", "tor_exit"}},
		{name: "app country wins over the database's", client: `{"ip_prefix":"198.18.7.0/24","country":"AT"}`,
			source: "geoip", country: "AT", lat: 52.52, asn: 3320, org: "Deutsche Telekom AG"},
		{name: "app ASN wins, no organisation for another ASN", client: `{"ip_prefix":"198.18.7.0/24","asn":64500}`,
			source: "geoip", country: "DE", city: "Berlin", lat: 52.52, asn: 64500},
		{name: "unknown network", client: `{"ip_prefix":"203.0.113.0/24"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(`{"id":"e1","schema_version":1,"type":"login.succeeded","time":"` + at + `","app":"shop","subject":"k1:AAAAAAAAAAAAAAAAAAAAAA","client":` + tc.client + `}`)
			row, dead := convertOne(s, schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"), body, now)
			require.Nil(t, dead)
			require.Equal(t, tc.source, row.GeoSource)
			require.Equal(t, tc.country, row.ClientCountry)
			require.Equal(t, tc.city, row.ClientCity)
			require.InDelta(t, tc.lat, row.ClientLat, 1e-9)
			require.Equal(t, tc.asn, row.ClientASN)
			require.Equal(t, tc.org, row.ClientASOrg)
			require.Equal(t, tc.anon, row.ClientAnonymity)

			// What the detectors run: the same gate, then the engine.
			ev, err := pii.Admit(schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"), body, now)
			require.NoError(t, err)
			eng.Process(ev)
			c := ev.Client
			require.Equal(t, row.GeoSource, string(c.GeoSource))
			require.Equal(t, row.ClientCountry, c.Country)
			require.Equal(t, row.ClientCity, c.City)
			require.Equal(t, row.HasGeo, c.HasGeo())
			if c.HasGeo() {
				require.Equal(t, row.ClientLat, *c.Lat)
				require.Equal(t, row.ClientLon, *c.Lon)
			}
			require.Equal(t, row.ClientAccuracyKM, float32(c.AccuracyKM))
			require.Equal(t, row.ClientASN, c.ASN)
			require.Equal(t, row.ClientASOrg, c.ASOrg)
			require.Equal(t, row.ClientAnonymity, c.Anonymity.Names())
		})
	}
}
