package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

func TestGeoOptionsOnEveryEnrichingCommand(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "ingest", "detect", "demo"} {
		code, out, errOut := runCmd(t, t.Context(), cmd, "--help")
		require.Equal(t, exitOK, code, errOut)
		for _, opt := range []string{"--geo-city-db", "--geo-asn-db", "--geo-anonymous-db", "--geo-default-accuracy-km", "SESSIONMON_GEO_ANONYMOUS_DB"} {
			require.Contains(t, out+errOut, opt, "%s --help", cmd)
		}
	}
}

// travelFile writes three logins of one subject as the SDK sends them
// (prefix only): Berlin, ten minutes later a network in New York, two hours
// later Berlin again; and databases that place the networks and, in the
// anonymous-IP database, make the New York one a VPN exit.
func travelFile(t *testing.T) (events string, dbs geotest.Paths) {
	t.Helper()
	lat := func(v float64) *float64 { return &v }
	dbs = geotest.WriteDatabases(t, map[string]geotest.Facts{
		"198.18.7.0/24":  {Country: "DE", City: "Berlin", Lat: lat(52.52), Lon: lat(13.405), AccuracyKM: 20},
		"203.0.113.0/24": {Country: "US", City: "New York", Lat: lat(40.7128), Lon: lat(-74.006), AccuracyKM: 20, Anonymous: []string{"anonymous_vpn"}},
	})
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var b strings.Builder
	for i, step := range []struct {
		after  time.Duration
		prefix string
	}{{0, "198.18.7.0/24"}, {10 * time.Minute, "203.0.113.0/24"}, {2 * time.Hour, "198.18.7.0/24"}} {
		e := schemas.Event{
			ID: "trip-" + string(rune('a'+i)), SchemaVersion: 1, Type: schemas.LoginSucceeded, Time: schemas.At(start.Add(step.after)),
			App: "shop", Subject: "k1:AbCdEfGhIjKlMnOpQrStUv", Client: &schemas.Client{IPPrefix: step.prefix},
		}
		line, err := json.Marshal(e)
		require.NoError(t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	events = filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(events, []byte(b.String()), 0o600))
	return events, dbs
}

// travelAlerts runs detect --input with args and returns the
// impossible_travel alerts.
func travelAlerts(t *testing.T, events string, args ...string) []map[string]any {
	t.Helper()
	var alerts []map[string]any
	for _, a := range detectAlerts(t, events, args...) {
		if a["detector"] == "impossible_travel" {
			alerts = append(alerts, a)
		}
	}
	return alerts
}

// TestDetectInputEnrichesFromGeoIP: offline detection enriches what the SDK
// sends from the same databases, and the anonymous-IP database, given as a
// flag or in the config file, turns a trip to New York and back into one
// VPN hop reported with its class.
func TestDetectInputEnrichesFromGeoIP(t *testing.T) {
	t.Parallel()
	events, dbs := travelFile(t)

	require.Empty(t, travelAlerts(t, events), "no location without a database")

	plain := travelAlerts(t, events, "--geo-city-db", dbs.City)
	require.Len(t, plain, 2, "there and back")
	for _, a := range plain {
		require.Equal(t, "high", a["severity"])
	}

	withFlag := travelAlerts(t, events, "--geo-city-db", dbs.City, "--geo-anonymous-db", dbs.Anonymous)
	config := filepath.Join(t.TempDir(), "sessionmon.yaml")
	require.NoError(t, os.WriteFile(config, []byte("geo:\n  city_dbs: ["+dbs.City+"]\n  anonymous_ip_db: "+dbs.Anonymous+"\n"), 0o600))
	withConfig := travelAlerts(t, events, "--config", config)
	for _, alerts := range [][]map[string]any{withFlag, withConfig} {
		require.Len(t, alerts, 1)
		a := alerts[0]
		require.Equal(t, "low", a["severity"])
		require.Equal(t, map[string]any{"kind": "anonymous", "classes": []any{"vpn"}}, a["details"].(map[string]any)["network"])
	}
}
