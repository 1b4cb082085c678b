package detect

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegistryBuildsEveryDetector(t *testing.T) {
	t.Parallel()
	names := DetectorNames()
	require.True(t, slices.IsSorted(names))
	require.Equal(t, []string{
		"absolute_timeout_exceeded", "brute_force", "credential_stuffing", "idle_timeout_exceeded",
		"impossible_travel", "insecure_cookie", "long_lived_token", "missing_reauth", "retired_signing_key",
		"session_fixation", "session_hijack", "token_pii_claims", "token_reuse",
	}, names)

	dets, err := NewDetectors(DefaultConfig())
	require.NoError(t, err)
	require.Len(t, dets, len(names))
	for i, d := range dets {
		require.Equal(t, names[i], d.Name(), "the registry name is the detector's own")
		c, known, err := detectorSettings(DefaultConfig(), d.Name())
		require.NoError(t, err)
		require.True(t, known)
		require.True(t, c.Enabled)
		require.NotZero(t, c.Severity.Rank(), d.Name())
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	t.Parallel()
	r := registrar{}
	f := registry()["brute_force"]
	r.add("brute_force", f.rule, f)
	require.PanicsWithValue(t, "detect: detector registered twice: brute_force", func() { r.add("brute_force", f.rule, f) })
}

func TestDetectorSettingsOfUnknownDetector(t *testing.T) {
	t.Parallel()
	c, known, err := detectorSettings(DefaultConfig(), "custom")
	require.NoError(t, err)
	require.False(t, known)
	require.Zero(t, c)
}

func TestParseConfigRefusesRetiredAnonymousIPDB(t *testing.T) {
	t.Parallel()
	_, err := ParseConfig([]byte("anonymous_ip_db: /var/lib/GeoIP/GeoIP2-Anonymous-IP.mmdb\n"))
	require.ErrorContains(t, err, "anonymous_ip_db: moved to the top-level geo_anonymous_db (--geo-anonymous-db")
}
