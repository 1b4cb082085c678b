package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

// demoCityDB writes a city database with a network in each of the demo's
// cities.
func demoCityDB(t *testing.T) string {
	t.Helper()
	nets := map[string]geotest.Facts{}
	for i, p := range demo.Places() {
		nets[fmt.Sprintf("41.%d.0.0/16", i)] = geotest.Facts{Country: p.Country, City: p.City, Lat: &p.Lat, Lon: &p.Lon, AccuracyKM: 20}
	}
	return geotest.WriteDatabases(t, nets).City
}

// TestDemoFileWithCityDatabase: with --geo-city-db the demo file holds what
// the SDK sends, no location, and detect --input with the same database
// finds every attack, impossible travel and session hijacks included.
func TestDemoFileWithCityDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := demoCityDB(t)
	events := filepath.Join(dir, "events.ndjson")
	code, _, errOut := runCmd(t, t.Context(), "demo", "--output", events, "--demo-users", "100", "--geo-city-db", db)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "events carry what the SDK sends")

	b, err := os.ReadFile(events)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Greater(t, len(lines), 1000)
	for i, line := range lines {
		var e schemas.Event
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		if e.Client == nil {
			continue
		}
		require.NotEmpty(t, e.Client.IPPrefix, "line %d", i+1)
		require.NotEmpty(t, e.Client.IPHash, "line %d", i+1)
		for _, field := range []string{`"lat"`, `"lon"`, `"country"`, `"city"`, `"accuracy_km"`, `"asn"`} {
			require.NotContains(t, line, field, "line %d", i+1)
		}
	}

	found := detectFile(t, events, "--geo-city-db", db)
	for _, name := range detect.DetectorNames() {
		require.Positive(t, found[name], "no %s alert from demo traffic", name)
	}
	// Without the database the detectors have no location to judge.
	found = detectFile(t, events)
	require.Zero(t, found["impossible_travel"])
	require.Zero(t, found["session_hijack"])
}

func TestDemoFileWithoutCityDatabaseSaysSo(t *testing.T) {
	t.Parallel()
	events := filepath.Join(t.TempDir(), "events.ndjson")
	code, _, errOut := runCmd(t, t.Context(), "demo", "--output", events, "--demo-users", "20")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "no GeoIP city database configured, so the demo falls back to sending its own location")
	b, err := os.ReadFile(events)
	require.NoError(t, err)
	require.Contains(t, string(b), `"lat":`)
}

// detectFile runs detect --input over events and counts the alerts by
// detector.
func detectFile(t *testing.T, events string, args ...string) map[string]int {
	t.Helper()
	found := map[string]int{}
	for _, a := range detectAlerts(t, events, args...) {
		found[a["detector"].(string)]++
	}
	return found
}
