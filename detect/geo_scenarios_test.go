package detect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestScenariosFromGeoIP runs every scenario whose events carry a client
// location or network the way a real app sends them through the SDK: those
// fields removed, only ip_prefix left, and supplied instead by GeoIP
// databases written for the test from the removed values. The detectors
// must raise exactly the golden alerts of the located events.
func TestScenariosFromGeoIP(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		in, err := os.ReadFile(path)
		require.NoError(t, err)
		stripped, nets, _ := geotest.StripLocation(t, in)
		r, ok := scenarioGeo(t, dir, nets)
		if !ok {
			t.Skip("no client location or network in its events")
		}
		require.NotContains(t, string(stripped), `"lat"`)
		require.NotContains(t, string(stripped), `"country"`)
		var out bytes.Buffer
		stats, err := RunOffline(t.Context(), bytes.NewReader(stripped), &out, scenarioConfig(t, dir), engClock, WithGeo(r))
		require.NoError(t, err)
		require.Zero(t, stats.Invalid, "invalid lines: %+v", stats.InvalidLines)
		want, err := os.ReadFile(filepath.Join(dir, "alerts.golden.json"))
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(goldenForm(t, out.Bytes())))

		// Without the databases the location-dependent detectors have
		// nothing to judge; the test above proves the databases, not the
		// app, supplied what they found.
		out.Reset()
		_, err = RunOffline(t.Context(), bytes.NewReader(stripped), &out, scenarioConfig(t, dir), engClock)
		require.NoError(t, err)
		for _, a := range alertsOf(t, out.Bytes()) {
			require.NotContains(t, []string{impossibleTravelName, sessionHijackName}, a.Detector,
				"%s alerted without a location", a.Detector)
		}
	})
}

// TestScenariosFromGeoIPLive runs the scenarios of the location-dependent
// detectors through the live service, as serve runs it (a real NATS
// server, the events stream, the durable consumer), with the locations
// removed and supplied by databases: the same golden alerts as offline.
func TestScenariosFromGeoIPLive(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		name := filepath.Base(dir)
		if !strings.HasPrefix(name, impossibleTravelName) && !strings.HasPrefix(name, sessionHijackName) &&
			!strings.HasPrefix(name, credentialStuffingName) {
			t.Skip("not a location-dependent detector's scenario")
		}
		in, err := os.ReadFile(path)
		require.NoError(t, err)
		stripped, nets, _ := geotest.StripLocation(t, in)
		r, ok := scenarioGeo(t, dir, nets)
		if !ok {
			r = scenarioResolver(t, nets)
		}
		js := svcStack(t)
		startServiceWith(t, js, closedDSN, svcConfig(), scenarioConfig(t, dir), WithEngineOptions(WithGeo(r)))
		for line := range bytes.Lines(stripped) {
			ev, err := schemas.Decode(line, engNow)
			require.NoError(t, err)
			publishRaw(t, js, ev.ID, schemas.EventSubject(ev.App, ev.Subject), line)
		}
		var got []schemas.Alert
		for _, a := range waitForSentinel(t, js, name) {
			if a.Detector != "session_fixation" || !strings.HasPrefix(a.Subject, "k1:sentinel-") {
				got = append(got, a)
			}
		}
		var ndjson bytes.Buffer
		for i := range got {
			b, err := json.Marshal(&got[i])
			require.NoError(t, err)
			ndjson.Write(append(b, '\n'))
		}
		want, err := os.ReadFile(filepath.Join(dir, "alerts.golden.json"))
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(goldenForm(t, ndjson.Bytes())))
	})
}

// scenarioResolver writes the databases of nets and opens them.
func scenarioResolver(t *testing.T, nets map[string]geotest.Facts) *geo.Resolver {
	t.Helper()
	p := geotest.WriteDatabases(t, nets)
	cfg := geo.Config{AnonymousIPPath: p.Anonymous}
	if p.City != "" {
		cfg.CityPaths = []string{p.City}
	}
	if p.ASN != "" {
		cfg.ASNPaths = []string{p.ASN}
	}
	r, err := geo.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// alertsOf decodes NDJSON alerts.
func alertsOf(t *testing.T, ndjson []byte) []schemas.Alert {
	t.Helper()
	var out []schemas.Alert
	for line := range bytes.Lines(ndjson) {
		var a schemas.Alert
		require.NoError(t, json.Unmarshal(line, &a))
		out = append(out, a)
	}
	return out
}
