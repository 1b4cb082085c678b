package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestTravel(t *testing.T, nets []Network, edit ...func(*ImpossibleTravelConfig)) *ImpossibleTravel {
	t.Helper()
	cfg := defaultImpossibleTravelConfig()
	for _, f := range edit {
		f(&cfg)
	}
	d, err := NewImpossibleTravel(cfg, newNetworks(nets))
	require.NoError(t, err)
	return d
}

// travelAt is a login at place p after at.
func travelAt(id string, at time.Duration, p engPlace) *schemas.Event {
	return engEv(id, at, engType(schemas.LoginSucceeded), engSession(""), engFrom(p))
}

func TestImpossibleTravelObserve(t *testing.T) {
	t.Parallel()
	vpn := []Network{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Kind: NetworkVPN, Note: "corporate VPN"}}
	for _, tc := range []struct {
		name     string
		nets     []Network
		events   []*schemas.Event
		want     []engFinding
		severity schemas.Severity
	}{
		{
			name:     "travel/Berlin to Sydney in 20 minutes",
			events:   []*schemas.Event{travelAt("a", 0, engBerlin.on(engDevA)), travelAt("b", 20*time.Minute, engSydney.on(engDevB))},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityHigh,
		},
		{
			name:   "travel/Frankfurt to New York in 8h30 is a flight",
			events: []*schemas.Event{travelAt("a", 0, engFrankfurt), travelAt("b", 8*time.Hour+30*time.Minute, engNewYork)},
		},
		{
			name: "travel/jitter within the accuracy radii is no travel",
			events: []*schemas.Event{
				travelAt("a", 0, engBerlin), travelAt("b", time.Minute, engPotsdam),
				travelAt("c", 2*time.Minute, engBerlin), travelAt("d", 3*time.Minute, engPotsdam),
			},
		},
		{
			name: "travel/jitter beyond tiny radii is travel",
			events: []*schemas.Event{
				travelAt("a", 0, engPlace{lat: 52.52, lon: 13.405}),
				// 27 km in 10 s; no radius given, so 10 km each (min_accuracy_km).
				travelAt("b", 10*time.Second, engPlace{lat: 52.3906, lon: 13.0645}),
			},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityHigh,
		},
		{
			name: "travel/events without a location are ignored",
			events: []*schemas.Event{
				travelAt("a", 0, engBerlin),
				travelAt("b", time.Minute, engSydney.withoutGeo()),
				engEv("c", 2*time.Minute),
				travelAt("d", 3*time.Minute, engBerlin),
			},
		},
		{
			name:     "travel/a known VPN lowers the severity and is never the reference",
			nets:     vpn,
			events:   []*schemas.Event{travelAt("a", 0, engBerlin), travelAt("b", 10*time.Minute, engNewYork), travelAt("c", 2*time.Hour, engBerlin)},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityLow,
		},
		{
			name:     "travel/a VPN matched by ASN",
			nets:     []Network{{ASN: 7922, Kind: NetworkRelay}},
			events:   []*schemas.Event{travelAt("a", 0, engBerlin), travelAt("b", 10*time.Minute, engNewYork)},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityLow,
		},
		{
			name:     "travel/an expired entry no longer matches",
			nets:     []Network{{ASN: 7922, Kind: NetworkVPN, Expires: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}},
			events:   []*schemas.Event{travelAt("a", 0, engBerlin), travelAt("b", 10*time.Minute, engNewYork)},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityHigh,
		},
		{
			name:     "travel/a network narrower than the client's prefix does not match",
			nets:     []Network{{Prefix: netip.MustParsePrefix("203.0.113.128/25"), Kind: NetworkVPN}},
			events:   []*schemas.Event{travelAt("a", 0, engBerlin), travelAt("b", 10*time.Minute, engNewYork)},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityHigh,
		},
		{
			name: "travel/a late event before the reference is judged in time order",
			events: []*schemas.Event{
				travelAt("b", 20*time.Minute, engBerlin),
				travelAt("a", 0, engSydney),
			},
			want:     []engFinding{{Key: "k1:AbCdEfGhIjKlMnOpQrStUv", Evidence: []string{"a", "b"}}},
			severity: schemas.SeverityHigh,
		},
		{
			name: "travel/subjects are apart",
			events: []*schemas.Event{
				travelAt("a", 0, engBerlin),
				engEv("b", time.Minute, engType(schemas.LoginSucceeded), engSubject("k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L"), engFrom(engSydney)),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts := engObserve(newTestTravel(t, tc.nets), tc.events...)
			require.Equal(t, tc.want, engFindings(alerts))
			for _, a := range alerts {
				require.Equal(t, tc.severity, a.Severity)
			}
		})
	}
}

func TestImpossibleTravelSpeedLimit(t *testing.T) {
	t.Parallel()
	// Berlin to Frankfurt is 424 km; less 2 x 10 km accuracy, 404 km.
	for _, tc := range []struct {
		name    string
		elapsed time.Duration
		fires   bool
	}{
		{name: "speed/404 km in 20 minutes is 1212 km/h", elapsed: 20 * time.Minute, fires: true},
		{name: "speed/404 km in 25 minutes is 970 km/h", elapsed: 25 * time.Minute},
		{name: "speed/same millisecond", elapsed: 0, fires: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			from, to := engBerlin, engFrankfurt
			from.acc, to.acc = 0, 0
			alerts := engObserve(newTestTravel(t, nil), travelAt("a", 0, from), travelAt("b", tc.elapsed, to))
			require.Equal(t, tc.fires, len(alerts) == 1)
		})
	}
}

func TestImpossibleTravelAlert(t *testing.T) {
	t.Parallel()
	alerts := engObserve(newTestTravel(t, nil), travelAt("a", 0, engBerlin), travelAt("b", 20*time.Minute, engSydney))
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "impossible_travel", a.Detector)
	require.Equal(t, "Impossible travel", a.Title)
	require.Equal(t, "shop", a.App)
	require.Equal(t, "k1:AbCdEfGhIjKlMnOpQrStUv", a.Subject)
	require.Equal(t, time.Date(2026, 11, 20, 9, 20, 0, 0, time.UTC), a.Time.Time)
	require.Equal(t, "Seen in Sydney, AU 20m after Berlin, DE, 16095 km away: at least 48164 km/h, over the 1000 km/h limit.", a.Summary)
	require.Equal(t, 16095.0, a.Details["distance_km"])
	require.Equal(t, 16055.0, a.Details["moved_km"])
	require.Equal(t, 48164.0, a.Details["speed_kmh"])
	require.Equal(t, int64(1200), a.Details["elapsed_s"])
	require.Equal(t, "Berlin", a.Details["from"].(map[string]any)["city"])
	require.Equal(t, "AU", a.Details["to"].(map[string]any)["country"])
	require.NotContains(t, a.Details, "network")
}

func TestImpossibleTravelState(t *testing.T) {
	t.Parallel()
	d := newTestTravel(t, nil)
	engObserve(d, travelAt("a", 0, engBerlin))
	require.Equal(t, 1, d.StateKeys())
	d.Expire(engEv("x", 20*time.Hour).Time.Time)
	require.Equal(t, 1, d.StateKeys(), "a reference can matter for 20 hours at 1000 km/h")
	d.Expire(engEv("x", 21*time.Hour).Time.Time)
	require.Zero(t, d.StateKeys())

	engObserve(d, travelAt("b", 22*time.Hour, engBerlin))
	d.Forget("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.Zero(t, d.StateKeys())
	require.Empty(t, engObserve(d, travelAt("c", 22*time.Hour+time.Minute, engSydney)), "no reference after Forget")
}

func TestImpossibleTravelConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*ImpossibleTravelConfig)
		want string
	}{
		{name: "config/speed", edit: func(c *ImpossibleTravelConfig) { c.MaxSpeedKMH = 0 }, want: "detectors.impossible_travel.max_speed_kmh: must be a positive number"},
		{name: "config/accuracy", edit: func(c *ImpossibleTravelConfig) { c.MinAccuracyKM = -1 }, want: "detectors.impossible_travel.min_accuracy_km: must be between 0 and 20015"},
		{name: "config/network severity", edit: func(c *ImpossibleTravelConfig) { c.NetworkSeverity = "minor" }, want: `detectors.impossible_travel.network_severity: must be low, medium, high or critical (got "minor")`},
		{name: "config/max keys", edit: func(c *ImpossibleTravelConfig) { c.MaxKeys = 0 }, want: "detectors.impossible_travel.max_keys: must be positive"},
		{name: "config/common", edit: func(c *ImpossibleTravelConfig) { c.Severity = "" }, want: "detectors.impossible_travel.severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultImpossibleTravelConfig()
			tc.edit(&cfg)
			_, err := NewImpossibleTravel(cfg, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
