package detect

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
lateness: 10s
max_pending: 5000
policy: {idle_timeout: 20m}
networks:
  - {prefix: 198.51.100.0/24, kind: vpn, note: corporate VPN, expires: 2027-01-01}
  - {asn: 14593, kind: satellite, note: Starlink}
detectors:
  impossible_travel: {max_speed_kmh: 900, severity: critical}
  brute_force:
    threshold: 20
    window: 5m
  insecure_cookie: {enabled: false}
`))
	require.NoError(t, err)
	require.Equal(t, 10*time.Second, cfg.Lateness.D())
	require.Equal(t, 5000, cfg.MaxPending)
	require.Equal(t, 20*time.Minute, cfg.Policy.IdleTimeout.D())
	require.Equal(t, DefaultPolicy.AbsoluteTimeout, cfg.Policy.AbsoluteTimeout, "unset fields keep their defaults")
	require.Equal(t, []Network{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Kind: NetworkVPN, Note: "corporate VPN", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ASN: 14593, Kind: NetworkSatellite, Note: "Starlink"},
	}, cfg.Networks)

	c, known, err := detectorSettings(cfg, "impossible_travel")
	require.NoError(t, err)
	require.True(t, known)
	require.Equal(t, schemas.SeverityCritical, c.Severity)
	require.Equal(t, time.Hour, c.DedupWindow.D(), "defaults under the section's settings")

	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	var names []string
	for _, d := range dets {
		names = append(names, d.Name())
		switch d := d.(type) {
		case *ImpossibleTravel:
			require.Equal(t, 900.0, d.cfg.MaxSpeedKMH)
			require.Equal(t, 10.0, d.cfg.MinAccuracyKM)
		case *BruteForce:
			require.Equal(t, 20, d.cfg.Threshold)
			require.Equal(t, 5*time.Minute, d.cfg.Window.D())
		}
	}
	require.NotContains(t, names, "insecure_cookie")
	require.Len(t, names, len(DetectorNames())-1)
}

func TestParseConfigEmptyIsDefault(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "\n", "{}"} {
		cfg, err := ParseConfig([]byte(in))
		require.NoError(t, err)
		require.Equal(t, DefaultConfig().Lateness, cfg.Lateness)
		require.Equal(t, DefaultConfig().MaxPending, cfg.MaxPending)
		require.Equal(t, DefaultPolicy, cfg.Policy)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{name: "errors/unknown top-level key", yaml: "latenes: 5s", want: []string{"line 1: latenes: unknown key"}},
		{name: "errors/bad duration", yaml: "lateness: soon", want: []string{"must be a duration like 90s"}},
		{name: "errors/lateness out of range", yaml: "lateness: 1h", want: []string{"lateness: must be between 0 and 10m0s (got 1h0m0s)"}},
		{name: "errors/unknown detector", yaml: "detectors: {impossible_trvel: {}}", want: []string{"detectors.impossible_trvel: unknown detector (known: absolute_timeout_exceeded, brute_force,"}},
		{name: "errors/unknown setting of a detector", yaml: "detectors:\n  brute_force:\n    threshhold: 5\n", want: []string{"line 3: detectors.brute_force.threshhold: unknown key (known: dedup_window, enabled, long_windows, max_keys, severity, threshold, window)"}},
		{name: "errors/wrong type in a detector", yaml: "detectors: {brute_force: {threshold: many}}", want: []string{`line 1: detectors.brute_force.threshold: must be an integer (got "many")`}},
		{name: "errors/a detector section that is no mapping", yaml: "detectors: {brute_force: 5}", want: []string{"line 1: detectors.brute_force: must be a mapping of settings"}},
		{name: "errors/invalid detector values", yaml: "detectors: {brute_force: {threshold: 0}, session_hijack: {severity: meh}}", want: []string{
			"detectors.brute_force.threshold: must be between 2 and 1000 (got 0)",
			`detectors.session_hijack.severity: must be low, medium, high or critical (got "meh")`,
		}},
		{name: "errors/networks", yaml: `
networks:
  - {prefix: 198.51.100.7/24, kind: vpn}
  - {prefix: not-a-net, kind: vpn}
  - {kind: vpn}
  - {asn: 1, kind: tunnel}
  - {asn: 1, kind: vpn, expires: someday}
`, want: []string{
			"networks[0].prefix: must have its host bits zero (got \"198.51.100.7/24\", did you mean 198.51.100.0/24?)",
			"networks[1].prefix: must be a network in CIDR notation",
			"networks[2]: needs a prefix, an asn, or both",
			`networks[3].kind: must be vpn, relay, satellite or corporate (got "tunnel")`,
			`networks[4].expires: must be a date like 2027-01-01 (got "someday")`,
		}},
		{name: "errors/unknown network key", yaml: "networks: [{asn: 1, kind: vpn, bogus: 1}]", want: []string{"networks[0].bogus: unknown key"}},
		{name: "errors/policy", yaml: "policy: {idle_timeout: -5m}", want: []string{"policy.idle_timeout: must not be negative"}},
		{name: "errors/every problem at once", yaml: "lateness: 1h\nmax_pending: 0\ndetectors: {nope: {}}", want: []string{"lateness:", "max_pending: must be positive", "detectors.nope: unknown detector"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestConfigWarnings(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`networks:
  - {prefix: 198.51.100.0/24, kind: vpn, expires: 2026-01-01}
  - {asn: 14593, kind: satellite, expires: 2030-01-01}
  - {asn: 64500, kind: corporate}
`))
	require.NoError(t, err)
	warnings := cfg.Warnings(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	require.Equal(t, []string{"networks[0] (198.51.100.0/24 vpn): expired on 2026-01-01 and is ignored for events since then"}, warnings)
	require.Empty(t, cfg.Warnings(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)))
}

func TestConfigValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.MaxPending = -1
	err := cfg.Validate()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "max_pending"), err.Error())
}
