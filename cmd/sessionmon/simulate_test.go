package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSimulateThroughOfflineDetect(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sim")
	code, _, errOut := runCmd(t, t.Context(), "simulate", "--out", dir, "--users", "200", "--days", "1", "--seed", "3")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "labelled attacks")
	for _, f := range []string{"events.ndjson", "labels.json", "geo/City.mmdb", "geo/ASN.mmdb", "geo/Anonymous-IP.mmdb"} {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
	}

	out := filepath.Join(t.TempDir(), "alerts.ndjson")
	code, stdout, errOut := runCmd(t, t.Context(), "detect", "--input", filepath.Join(dir, "events.ndjson"), "--output", out,
		"--labels", filepath.Join(dir, "labels.json"), "--geo-city-db", filepath.Join(dir, "geo/City.mmdb"),
		"--geo-asn-db", filepath.Join(dir, "geo/ASN.mmdb"), "--geo-anonymous-db", filepath.Join(dir, "geo/Anonymous-IP.mmdb"))
	require.Equal(t, exitOK, code, errOut)
	require.Empty(t, stdout, "alerts go to --output")
	summary, table, ok := strings.Cut(errOut, "detection quality against")
	require.True(t, ok, "no quality table after the summary:\n%s", errOut)
	require.Contains(t, summary, "0 invalid lines")
	require.Contains(t, table, "FP subjects")
	// The attacks without a location are found whatever the state of
	// the location-based detectors.
	for _, det := range []string{"brute_force", "credential_stuffing", "token_reuse", "session_fixation", "missing_reauth"} {
		var line string
		for l := range strings.Lines(table) {
			if strings.HasPrefix(l, det+" ") {
				line = l
			}
		}
		require.NotEmpty(t, line, "no %s row:\n%s", det, table)
		require.Contains(t, line, "1.000", "%s misses attacks:\n%s", det, table)
	}

	code, _, errOut = runCmd(t, t.Context(), "simulate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--out")
	code, _, errOut = runCmd(t, t.Context(), "detect", "--input", filepath.Join(dir, "events.ndjson"), "--output", out,
		"--labels", filepath.Join(dir, "missing.json"))
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "labels")
}
