package detect

import (
	"fmt"
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
			to.asn = 3209 // not a hop within one ISP
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
	require.Equal(t, "The same device was seen in Sydney, AU 20m after Berlin, DE, 16095 km away: at least 48164 km/h, over the 1000 km/h limit.", a.Summary)
	require.Equal(t, "same_device", a.Details["basis"])
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
	d := newTestTravel(t, nil, func(c *ImpossibleTravelConfig) { c.SharedEgress.TTL = Duration(48 * time.Hour) })
	engObserve(d, travelAt("a", 0, engBerlin))
	require.Equal(t, 2, d.StateKeys(), "the subject and its sign-in's network")
	d.Expire(engEv("x", 47*time.Hour).Time.Time)
	require.Equal(t, 2, d.StateKeys(), "familiar networks and devices are kept for the ttl")
	d.Expire(engEv("x", 49*time.Hour).Time.Time)
	require.Zero(t, d.StateKeys())

	engObserve(d, travelAt("b", 50*time.Hour, engBerlin))
	d.Forget("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.Equal(t, 1, d.StateKeys(), "a network's counts name no subject")
	require.Empty(t, engObserve(d, travelAt("c", 50*time.Hour+time.Minute, engSydney)), "no reference after Forget")
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

// loginBy is a login of subject on device at place p after at.
func loginBy(id, subject string, at time.Duration, p engPlace, device string) *schemas.Event {
	return engEv(id, at, engType(schemas.LoginSucceeded), engSession(""), engSubject(subject), engFrom(p.on(device)))
}

const (
	travelOwner = "k1:AbCdEfGhIjKlMnOpQrStUv"
	travelOther = "k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L"
)

// colleagues signs in n other subjects from p, spread over span.
func colleagues(n int, p engPlace, span time.Duration) []*schemas.Event {
	var evs []*schemas.Event
	for i := range n {
		at := span * time.Duration(i) / time.Duration(max(1, n-1))
		evs = append(evs, loginBy(fmt.Sprintf("col-%02d", i), fmt.Sprintf("k1:colleague%013d", i), at, p, fmt.Sprintf("k1:dev-colleague%07d", i)))
	}
	return evs
}

func TestImpossibleTravelDevices(t *testing.T) {
	t.Parallel()
	// A carrier's gateway that geolocates to Frankfurt, give or take 150 km.
	phoneData := engFrankfurt
	phoneData.asn, phoneData.acc = 3209, 150
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []engFinding
		basis  string
	}{
		{
			name: "devices/a laptop at home and a phone on mobile data used in parallel are not travel",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, phoneData, engDevB),
				loginBy("b", travelOwner, time.Hour, engBerlin, engDevA),
				loginBy("c", travelOwner, time.Hour+5*time.Minute, phoneData, engDevB),
				loginBy("d", travelOwner, time.Hour+10*time.Minute, engBerlin, engDevA),
			},
		},
		{
			name: "devices/a known device far from where a new device just was",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engBerlin, engDevA),
				loginBy("b", travelOwner, 2*time.Hour, engSydney, engDevB),
				loginBy("c", travelOwner, 2*time.Hour+10*time.Minute, engBerlin, engDevA),
			},
			want:  []engFinding{{Key: travelOwner, Evidence: []string{"a", "b"}}, {Key: travelOwner, Evidence: []string{"b", "c"}}},
			basis: "new_device",
		},
		{
			name: "devices/two precise places at once are judged even on two devices",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engFrankfurt, engDevB),
				loginBy("b", travelOwner, time.Hour, engBerlin, engDevA),
				loginBy("c", travelOwner, time.Hour+5*time.Minute, engFrankfurt, engDevB),
			},
			want:  []engFinding{{Key: travelOwner, Evidence: []string{"b", "c"}}},
			basis: "new_device",
		},
		{
			name: "devices/a new device far away is judged against the newest location",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engBerlin, engDevA),
				loginBy("b", travelOwner, 30*time.Minute, engSydney, engDevB),
			},
			want:  []engFinding{{Key: travelOwner, Evidence: []string{"a", "b"}}},
			basis: "new_device",
		},
		{
			name: "devices/one device moving too fast",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engFrankfurt, engDevB),
				loginBy("b", travelOwner, time.Hour, engBerlin, engDevA),
				loginBy("c", travelOwner, time.Hour+10*time.Minute, engSydney, engDevB),
			},
			want:  []engFinding{{Key: travelOwner, Evidence: []string{"a", "c"}}},
			basis: "same_device",
		},
		{
			name: "devices/a failed login says nothing of the account's owner",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engBerlin, engDevA),
				engEv("b", time.Minute, engType(schemas.LoginFailed), engSession(""), engFrom(engSydney.on(engDevB))),
				loginBy("c", travelOwner, 2*time.Minute, engBerlin, engDevA),
			},
		},
		{
			name: "devices/the account's familiar network is not travel",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engNewYork, engDevA),
				loginBy("b", travelOwner, 2*time.Hour, engNewYork, engDevA),
				loginBy("c", travelOwner, 20*time.Hour, engBerlin, engDevA),
				loginBy("d", travelOwner, 20*time.Hour+10*time.Minute, engNewYork, engDevA),
			},
		},
		{
			name: "devices/a network seen in one hour only is not familiar yet",
			events: []*schemas.Event{
				loginBy("a", travelOwner, 0, engNewYork, engDevA),
				loginBy("b", travelOwner, 10*time.Minute, engNewYork, engDevA),
				loginBy("c", travelOwner, 20*time.Hour, engBerlin, engDevA),
				loginBy("d", travelOwner, 20*time.Hour+10*time.Minute, engNewYork, engDevA),
			},
			want:  []engFinding{{Key: travelOwner, Evidence: []string{"c", "d"}}},
			basis: "same_device",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts := engObserve(newTestTravel(t, nil), tc.events...)
			require.Equal(t, tc.want, engFindings(alerts))
			for _, a := range alerts {
				require.Equal(t, tc.basis, a.Details["basis"])
			}
		})
	}
}

func TestImpossibleTravelSharedEgress(t *testing.T) {
	t.Parallel()
	vpn := engNewYork
	trip := func(start time.Duration) []*schemas.Event {
		return []*schemas.Event{
			loginBy("home-1", travelOwner, start, engBerlin, engDevA),
			loginBy("vpn-on", travelOwner, start+10*time.Minute, vpn, engDevA),
			loginBy("vpn-off", travelOwner, start+20*time.Minute, engBerlin, engDevA),
		}
	}
	t.Run("egress/a network many accounts use steadily is not travel", func(t *testing.T) {
		t.Parallel()
		d := newTestTravel(t, nil)
		evs := append(colleagues(5, vpn, 20*time.Minute), trip(time.Hour)...)
		require.Empty(t, engObserve(d, evs...))
		got := d.SharedEgresses(10)
		require.Len(t, got, 1)
		require.Equal(t, []string{"shop"}, got[0].Apps)
		require.Equal(t, vpn.prefix, got[0].Prefix)
		require.Equal(t, uint32(6), got[0].Succeeded, "the colleagues' and the owner's")
		require.Contains(t, got[0].Why, "at least 5 signed-in accounts used it within 20m")
	})
	there := engFinding{Key: travelOwner, Evidence: []string{"home-1", "vpn-on"}}
	back := engFinding{Key: travelOwner, Evidence: []string{"vpn-on", "vpn-off"}}
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []engFinding
	}{
		// The owner's own use makes the first two shared before the
		// way back.
		{name: "egress/too few accounts", events: colleagues(4, vpn, 40*time.Minute), want: []engFinding{there}},
		{name: "egress/one burst is not steady use", events: colleagues(20, vpn, 10*time.Minute), want: []engFinding{there}},
		{name: "egress/mostly failing is an attacker's network", events: append(colleagues(5, vpn, 40*time.Minute), failuresFrom(vpn, 12, 45*time.Minute)...),
			want: []engFinding{there, back}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newTestTravel(t, nil)
			require.Empty(t, engObserve(d, tc.events...))
			require.Empty(t, d.SharedEgresses(10))
			require.Equal(t, tc.want, engFindings(engObserve(d, trip(time.Hour)...)))
		})
	}
}

// failuresFrom is n failed logins of other subjects from p from at on.
func failuresFrom(p engPlace, n int, at time.Duration) []*schemas.Event {
	var evs []*schemas.Event
	for i := range n {
		evs = append(evs, engEv(fmt.Sprintf("fail-%02d", i), at+time.Duration(i)*time.Second, engType(schemas.LoginFailed), engSession(""),
			engSubject(fmt.Sprintf("k1:victim%016d", i)), engFrom(p.on(engDevC))))
	}
	return evs
}

func TestImpossibleTravelSnapshotKeepsLearning(t *testing.T) {
	t.Parallel()
	d := newTestTravel(t, nil)
	engObserve(d, colleagues(8, engNewYork, 40*time.Minute)...)
	engObserve(d, loginBy("a", travelOwner, time.Hour, engSydney, engDevA), loginBy("b", travelOwner, 3*time.Hour, engSydney, engDevA))
	w := &stateWriter{}
	d.encodeState(w)
	restored := newTestTravel(t, nil)
	r := &stateReader{b: w.b}
	restored.decodeState(r)
	require.NoError(t, r.err)
	require.Equal(t, d.SharedEgresses(10), restored.SharedEgresses(10))
	require.Empty(t, engObserve(restored,
		loginBy("c", travelOwner, 5*time.Hour, engNewYork, engDevA),
		loginBy("d", travelOwner, 5*time.Hour+10*time.Minute, engSydney, engDevA)),
		"the shared egress and the familiar network came back")
}

func TestImpossibleTravelOneNetwork(t *testing.T) {
	t.Parallel()
	carrierA, carrierB := engBerlin, engFrankfurt
	carrierA.asn, carrierB.asn = 3209, 3209
	require.Empty(t, engObserve(newTestTravel(t, nil),
		loginBy("a", travelOwner, 0, carrierA, engDevA),
		loginBy("b", travelOwner, 5*time.Minute, carrierB, engDevA)),
		"one device moving between two gateways of its carrier")
	got := engObserve(newTestTravel(t, nil),
		loginBy("a", travelOwner, 0, carrierA, engDevA),
		loginBy("b", travelOwner, 5*time.Minute, carrierB, engDevB))
	require.Equal(t, []engFinding{{Key: travelOwner, Evidence: []string{"a", "b"}}}, engFindings(got), "a new device is judged")
}

func TestImpossibleTravelNewDeviceAfterSharedEgress(t *testing.T) {
	t.Parallel()
	gateway := engMobile
	d := newTestTravel(t, nil)
	require.Empty(t, engObserve(d, colleagues(8, gateway, 40*time.Minute)...))
	got := engObserve(d,
		loginBy("phone", travelOwner, time.Hour, gateway, engDevA),
		loginBy("thief", travelOwner, time.Hour+10*time.Minute, engSydney, engDevB),
		loginBy("back", travelOwner, time.Hour+20*time.Minute, gateway, engDevA))
	require.Equal(t, []engFinding{
		{Key: travelOwner, Evidence: []string{"phone", "thief"}},
		{Key: travelOwner, Evidence: []string{"thief", "back"}},
	}, engFindings(got), "an owner seen only on a shared egress is a reference for a new device, and the other way round")
}

func TestImpossibleTravelRelayLearnedFromJumps(t *testing.T) {
	t.Parallel()
	vpn := engNewYork
	d := newTestTravel(t, nil)
	toggle := func(subject, device string, home engPlace, start time.Duration) []schemas.Alert {
		return engObserve(d,
			loginBy(subject+"-home", subject, start, home, device),
			loginBy(subject+"-vpn", subject, start+10*time.Minute, vpn, device))
	}
	require.Len(t, toggle(travelOwner, engDevA, engBerlin, 0), 1, "the first account's jump is reported")
	require.Empty(t, d.SharedEgresses(10))
	require.Empty(t, toggle(travelOther, engDevB, engPotsdam, time.Hour), "a second account's device jumping to the same network: a VPN")
	got := d.SharedEgresses(10)
	require.Len(t, got, 1)
	require.Equal(t, vpn.prefix, got[0].Prefix)
	require.Empty(t, engObserve(d, loginBy("third-home", "k1:Third00000000000000000", 2*time.Hour, engFrankfurt, engDevC),
		loginBy("third-vpn", "k1:Third00000000000000000", 2*time.Hour+time.Minute, vpn, engDevC)))
}

func TestImpossibleTravelForgetLeavesNoTraceInNetworks(t *testing.T) {
	t.Parallel()
	d := newTestTravel(t, nil)
	engObserve(d, loginBy("a", travelOwner, 0, engNewYork, engDevA), loginBy("b", travelOther, time.Minute, engNewYork, engDevB))
	x, ok := d.egress.tab.get(egressKey(engNewYork.prefix))
	require.True(t, ok)
	require.Len(t, x.seen, 2)
	d.Forget(travelOwner)
	x, _ = d.egress.tab.get(egressKey(engNewYork.prefix))
	require.Equal(t, []uint32{uint32(pseudonymHash(travelOther))}, x.seen)
}
