package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestHijack(t *testing.T) *SessionHijack {
	t.Helper()
	d, err := NewSessionHijack(defaultSessionHijackConfig())
	require.NoError(t, err)
	return d
}

// shSeen is session activity from place p.
func shSeen(id string, at time.Duration, p engPlace) *schemas.Event {
	return engEv(id, at, engFrom(p.withoutGeo()))
}

func TestSessionHijackObserve(t *testing.T) {
	t.Parallel()
	const session = "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X"
	start := engEv("s", 0, engType(schemas.SessionStarted), engFrom(engBerlin.on(engDevA).withoutGeo()))
	berlinB := engBerlin.on(engDevB)
	berlinB.asn = 6805 // another German network
	for _, tc := range []struct {
		name    string
		events  []*schemas.Event
		want    []engFinding
		changed []string
	}{
		{
			name:    "hijack/another device in another country",
			events:  []*schemas.Event{start, shSeen("a", time.Minute, engBerlin.on(engDevA)), shSeen("b", 12*time.Minute, engSaoPaulo.on(engDevC))},
			want:    []engFinding{{Key: session, Evidence: []string{"s", "b"}}},
			changed: []string{"country,asn"},
		},
		{
			name:    "hijack/another device on another network of the same country",
			events:  []*schemas.Event{start, shSeen("a", time.Minute, berlinB)},
			want:    []engFinding{{Key: session, Evidence: []string{"s", "a"}}},
			changed: []string{"asn"},
		},
		{
			name:   "hijack/the same phone from wifi to mobile",
			events: []*schemas.Event{start, shSeen("a", time.Minute, engBerlin.on(engDevA)), shSeen("b", 9*time.Minute, engMobile.on(engDevA))},
		},
		{
			name:   "hijack/another device on the same network",
			events: []*schemas.Event{start, shSeen("a", time.Minute, engBerlin.on(engDevB))},
		},
		{
			name:   "hijack/an event without a device is not judged",
			events: []*schemas.Event{start, shSeen("a", time.Minute, engSaoPaulo)},
		},
		{
			name: "hijack/no network details to compare",
			events: []*schemas.Event{start, engEv("a", time.Minute, func(e *schemas.Event) {
				e.Client = &schemas.Client{Device: engDevC}
			})},
		},
		{
			name: "hijack/a late session.started is the origin",
			events: []*schemas.Event{
				shSeen("a", time.Minute, engSaoPaulo.on(engDevC)),
				start,
				shSeen("b", 2*time.Minute, engSaoPaulo.on(engDevC)),
			},
			want:    []engFinding{{Key: session, Evidence: []string{"s", "b"}}},
			changed: []string{"country,asn"},
		},
		{
			name:   "hijack/after state_ttl of silence the session starts afresh",
			events: []*schemas.Event{start, shSeen("a", 25*time.Hour, engSaoPaulo.on(engDevC))},
		},
		{
			name: "hijack/other sessions are apart",
			events: []*schemas.Event{start, engEv("a", time.Minute, engSession("k1:ses-Ph1On2Es3Es4Si5On6"),
				engFrom(engSaoPaulo.on(engDevC).withoutGeo()))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts := engObserve(newTestHijack(t), tc.events...)
			require.Equal(t, tc.want, engFindings(alerts))
			var changed []string
			for _, a := range alerts {
				changed = append(changed, a.Details["changed"].(string))
			}
			require.Equal(t, tc.changed, changed)
		})
	}
}

func TestSessionHijackAlert(t *testing.T) {
	t.Parallel()
	alerts := engObserve(newTestHijack(t),
		engEv("s", 0, engType(schemas.SessionStarted), engFrom(engBerlin.on(engDevA).withoutGeo())),
		shSeen("b", 12*time.Minute, engSaoPaulo.on(engDevC)))
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "session_hijack", a.Detector)
	require.Equal(t, schemas.SeverityHigh, a.Severity)
	require.Equal(t, "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X", a.Session)
	require.Equal(t, "Session k1:ses-T…, started on one device in DE (AS3320), was used 12m later from another device in BR (AS28573).", a.Summary)
	require.Equal(t, map[string]any{
		"changed": "country,asn",
		"device":  engDevC,
		"origin":  map[string]any{"country": "DE", "asn": uint32(3320), "time": "2026-11-20T09:00:00.000Z"},
		"seen":    map[string]any{"country": "BR", "asn": uint32(28573), "ip_prefix": "100.64.5.0/24", "time": "2026-11-20T09:12:00.000Z"},
	}, a.Details)
}

func TestSessionHijackState(t *testing.T) {
	t.Parallel()
	d := newTestHijack(t)
	engObserve(d, shSeen("a", 0, engBerlin.on(engDevA)), shSeen("b", 23*time.Hour, engBerlin.on(engDevA)))
	require.Equal(t, 1, d.StateKeys())
	d.Expire(engEv("x", 46*time.Hour).Time.Time)
	require.Equal(t, 1, d.StateKeys(), "state_ttl counts from the last event")
	d.Expire(engEv("x", 48*time.Hour).Time.Time)
	require.Zero(t, d.StateKeys())
	engObserve(d, shSeen("c", 49*time.Hour, engBerlin.on(engDevA)))
	d.Forget("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.Zero(t, d.StateKeys())
}

func TestSessionHijackConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*SessionHijackConfig)
		want string
	}{
		{name: "config/state ttl", edit: func(c *SessionHijackConfig) { c.StateTTL = 0 }, want: "detectors.session_hijack.state_ttl: must be positive"},
		{name: "config/max keys", edit: func(c *SessionHijackConfig) { c.MaxKeys = 0 }, want: "detectors.session_hijack.max_keys: must be positive"},
		{name: "config/severity", edit: func(c *SessionHijackConfig) { c.Severity = "urgent" }, want: `detectors.session_hijack.severity: must be low, medium, high or critical (got "urgent")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultSessionHijackConfig()
			tc.edit(&cfg)
			_, err := NewSessionHijack(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
