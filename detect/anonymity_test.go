package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

// Networks of the anonymity tests, with what the test databases say of them.
var (
	anonVPN     = engPlace{prefix: "203.0.113.0/24", asn: 9009, country: "US", city: "New York", lat: 40.7128, lon: -74.006, acc: 20}
	anonTor     = engPlace{prefix: "192.0.2.0/24", asn: 60729, country: "NL", city: "Amsterdam", lat: 52.37, lon: 4.89, acc: 50}
	anonHosting = engPlace{prefix: "198.51.100.0/24", asn: 16509, country: "DE", city: "Frankfurt", lat: 50.11, lon: 8.68, acc: 50}
)

// anonResolver opens test databases placing engBerlin, engSydney and the
// anonymous networks above; withAnonymous adds the anonymous-IP database
// (anonVPN a VPN, anonTor a Tor exit, anonHosting a hosting provider).
func anonResolver(t *testing.T, withAnonymous bool) *geo.Resolver {
	t.Helper()
	facts := func(p engPlace, anon ...string) geotest.Facts {
		lat, lon := p.lat, p.lon
		return geotest.Facts{Country: p.country, City: p.city, Lat: &lat, Lon: &lon, AccuracyKM: p.acc, ASN: p.asn, Anonymous: anon}
	}
	paths := geotest.WriteDatabases(t, map[string]geotest.Facts{
		engBerlin.prefix:   facts(engBerlin),
		engSydney.prefix:   facts(engSydney),
		anonVPN.prefix:     facts(anonVPN, "anonymous_vpn"),
		anonTor.prefix:     facts(anonTor, "tor_exit_node"),
		anonHosting.prefix: facts(anonHosting, "hosting_provider"),
	})
	cfg := geo.Config{CityPaths: []string{paths.City}, ASNPaths: []string{paths.ASN}}
	if withAnonymous {
		cfg.AnonymousIPPath = paths.Anonymous
	}
	r, err := geo.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// sdkFrom sets the event's client to what the SDK sends from p: the device
// and the network prefix, no location.
func sdkFrom(p engPlace) func(*schemas.Event) {
	return func(e *schemas.Event) { e.Client = &schemas.Client{Device: p.device, IPPrefix: p.prefix} }
}

// runGeo runs events through every default detector with r's enrichment
// and returns the alerts of detector.
func runGeo(t *testing.T, r *geo.Resolver, detector string, events ...*schemas.Event) []schemas.Alert {
	t.Helper()
	var out []schemas.Alert
	for _, a := range runEngine(t, DefaultConfig(), events, WithGeo(r)) {
		if a.Detector == detector {
			out = append(out, a)
		}
	}
	return out
}

func TestImpossibleTravelThroughAnonymousNetwork(t *testing.T) {
	t.Parallel()
	login := func(id string, at time.Duration, p engPlace) *schemas.Event {
		return engEv(id, at, engType(schemas.LoginSucceeded), engSession(""), sdkFrom(p))
	}
	events := func() []*schemas.Event {
		return []*schemas.Event{login("a", 0, engBerlin), login("b", 10*time.Minute, anonVPN), login("c", 2*time.Hour, engBerlin)}
	}

	// Without the anonymous-IP database the VPN exit is a trip to New York
	// and back.
	plain := runGeo(t, anonResolver(t, false), impossibleTravelName, events()...)
	require.Len(t, plain, 2)
	for _, a := range plain {
		require.Equal(t, schemas.SeverityHigh, a.Severity)
		require.NotContains(t, a.Details, "network")
	}

	// With it, the hop is reported with its class at network_severity, and
	// the exit never becomes the reference: the way back is no trip.
	alerts := runGeo(t, anonResolver(t, true), impossibleTravelName, events()...)
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, schemas.SeverityLow, a.Severity)
	require.Equal(t, map[string]any{"kind": "anonymous", "classes": []string{"vpn"}}, a.Details["network"])
	require.Contains(t, a.Summary, "through an anonymous network (vpn)")
	require.Equal(t, []string{"a", "b"}, a.Evidence)
}

func TestSessionHijackToAnonymousNetwork(t *testing.T) {
	t.Parallel()
	r := anonResolver(t, true)
	const session = "k1:ses-Hj1Ac2Kt3Or4Ex5It6Z"
	ev := func(id string, at time.Duration, typ schemas.Type, p engPlace) *schemas.Event {
		return engEv(id, at, engType(typ), engSession(session), sdkFrom(p))
	}
	for _, tc := range []struct {
		name    string
		origin  engPlace
		later   engPlace
		changed string
		classes []string
	}{
		{name: "same device, then a Tor exit", origin: engBerlin.on(engDevA), later: anonTor.on(engDevA), changed: "anonymity", classes: []string{"tor_exit"}},
		{name: "same device, then a hosting network", origin: engBerlin.on(engDevA), later: anonHosting.on(engDevA), changed: "anonymity", classes: []string{"hosting"}},
		{name: "another device on a Tor exit", origin: engBerlin.on(engDevA), later: anonTor.on(engDevB), changed: "country,asn,anonymity", classes: []string{"tor_exit"}},
		{name: "same device, then a VPN: people switch them on", origin: engBerlin.on(engDevA), later: anonVPN.on(engDevA)},
		{name: "started on a Tor exit, stays on one", origin: anonTor.on(engDevA), later: anonTor.on(engDevA)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts := runGeo(t, r, sessionHijackName,
				ev("s1", 0, schemas.SessionStarted, tc.origin),
				ev("s2", 30*time.Minute, schemas.SessionActivity, tc.later))
			if tc.changed == "" {
				require.Empty(t, alerts)
				return
			}
			require.Len(t, alerts, 1)
			a := alerts[0]
			require.Equal(t, tc.changed, a.Details["changed"])
			require.Equal(t, tc.classes, a.Details["seen"].(map[string]any)["anonymity"])
			require.Equal(t, "Session used from an anonymous network", a.Title)
			require.Contains(t, a.Summary, "on an anonymous network ("+tc.classes[0]+")")
			require.Equal(t, []string{"s1", "s2"}, a.Evidence)
		})
	}

	// anonymous_classes: [] turns the check off.
	cfg := defaultSessionHijackConfig()
	cfg.AnonymousClasses = nil
	d, err := NewSessionHijack(cfg)
	require.NoError(t, err)
	started := ev("s1", 0, schemas.SessionStarted, engBerlin.on(engDevA))
	tor := ev("s2", time.Minute, schemas.SessionActivity, anonTor.on(engDevA))
	r.Enrich(started.Client)
	r.Enrich(tor.Client)
	require.Empty(t, engObserve(d, started, tor))

	cfg.AnonymousClasses = []string{"tor"}
	_, err = NewSessionHijack(cfg)
	require.ErrorContains(t, err, `detectors.session_hijack.anonymous_classes: unknown anonymous-network class "tor"`)
}

func TestCredentialStuffingFromAnonymousNetwork(t *testing.T) {
	t.Parallel()
	var events []*schemas.Event
	for i := range 20 {
		events = append(events, engEv(fmt.Sprintf("f%02d", i), time.Duration(i)*time.Second, engType(schemas.LoginFailed), engSession(""),
			engSubject(fmt.Sprintf("k1:Sub%019d", i)), sdkFrom(anonHosting)))
	}
	alerts := runGeo(t, anonResolver(t, true), credentialStuffingName, events...)
	require.Len(t, alerts, 1, "by prefix (the ASN threshold is 100)")
	a := alerts[0]
	require.Equal(t, schemas.SeverityHigh, a.Severity, "an anonymous source keeps the severity; only configured networks lower it")
	require.Equal(t, map[string]any{"kind": "anonymous", "classes": []string{"hosting"}}, a.Details["network"])
}

func TestBruteForceFromAnonymousNetwork(t *testing.T) {
	t.Parallel()
	// Enrichment fills the events' clients: each run gets its own.
	events := func() []*schemas.Event {
		var out []*schemas.Event
		for i := range 10 {
			out = append(out, engEv(fmt.Sprintf("f%02d", i), time.Duration(i)*time.Second, engType(schemas.LoginFailed), engSession(""), sdkFrom(anonTor)))
		}
		return append(out, engEv("ok", time.Minute, engType(schemas.LoginSucceeded), sdkFrom(anonTor)))
	}
	alerts := runGeo(t, anonResolver(t, true), bruteForceName, events()...)
	require.Len(t, alerts, 2)
	failing, succeeded := alerts[0], alerts[1]
	require.Equal(t, "failing", failing.Details["outcome"])
	require.Equal(t, 10, failing.Details["anonymous_failures"])
	require.Equal(t, []string{"tor_exit"}, failing.Details["anonymous_classes"])
	require.Equal(t, "succeeded", succeeded.Details["outcome"])
	require.Equal(t, []string{"tor_exit"}, succeeded.Details["login_anonymity"])
	require.Equal(t, schemas.SeverityCritical, succeeded.Severity, "medium, raised for the success and again for the anonymous network")
	require.Contains(t, succeeded.Summary, "The login came from an anonymous network (tor_exit).")

	// Without the anonymous-IP database: the success is one level up only.
	plain := runGeo(t, anonResolver(t, false), bruteForceName, events()...)
	require.Len(t, plain, 2)
	require.Equal(t, schemas.SeverityHigh, plain[1].Severity)
	require.NotContains(t, plain[1].Details, "login_anonymity")
}
