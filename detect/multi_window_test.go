package detect

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// Tests of the long windows of brute_force and credential_stuffing.

func TestBruteForceLongWindows(t *testing.T) {
	t.Parallel()
	login := func(at time.Duration) *schemas.Event {
		return engEv("ok", at, engType(schemas.LoginSucceeded), engSession(""), engFrom(engSaoPaulo.withoutGeo()))
	}
	type want struct {
		outcome  string
		window   int64 // s
		failures int
	}
	for _, tc := range []struct {
		name   string
		edit   func(*BruteForceConfig)
		events []*schemas.Event
		want   []want
	}{
		{
			name:   "slow/one failure every 6 minutes fills the 2h window",
			events: bfFails(15, 0, 6*time.Minute),
			want:   []want{{"failing", 7200, 15}},
		},
		{
			name:   "slow/one failure every 50 minutes fills the 24h window",
			events: bfFails(25, 0, 50*time.Minute),
			want:   []want{{"failing", 86400, 25}},
		},
		{
			name:   "slow/a success after slow guessing",
			events: append(bfFails(15, 0, 6*time.Minute), login(15*6*time.Minute)),
			want:   []want{{"failing", 7200, 15}, {"succeeded", 7200, 15}},
		},
		{
			name:   "slow/a fast burst names the short window",
			events: bfFails(10, 0, 10*time.Second),
			want:   []want{{"failing", 600, 10}},
		},
		{
			name:   "slow/a user failing a few times a day stays quiet",
			events: append(bfFails(6, 0, 3*time.Hour), login(17*time.Hour)),
		},
		{
			name: "slow/a burst reported once is not reported again by the long windows",
			events: append(bfFails(20, 0, 5*time.Second),
				bfFail("later", 70*time.Minute), bfFail("later2", 80*time.Minute)),
			want: []want{{"failing", 600, 10}, {"failing", 600, 11}, {"failing", 600, 12}, {"failing", 600, 13}, {"failing", 600, 14},
				{"failing", 600, 15}, {"failing", 600, 16}, {"failing", 600, 17}, {"failing", 600, 18}, {"failing", 600, 19}, {"failing", 600, 20}},
		},
		{
			name:   "slow/without long windows only bursts count",
			edit:   func(c *BruteForceConfig) { c.LongWindows = nil },
			events: bfFails(25, 0, 6*time.Minute),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultBruteForceConfig()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			d, err := NewBruteForce(cfg)
			require.NoError(t, err)
			var got []want
			for _, a := range engObserve(d, tc.events...) {
				got = append(got, want{a.Details["outcome"].(string), a.Details["window_s"].(int64), a.Details["failures"].(int)})
				require.LessOrEqual(t, len(a.Evidence), cfg.Threshold+1, "evidence lists the newest threshold failures")
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBruteForceLongWindowAlert(t *testing.T) {
	t.Parallel()
	other := engSaoPaulo
	other.prefix = "100.64.9.0/24"
	var evs []*schemas.Event
	for i := range 15 {
		p := engSaoPaulo
		if i%2 == 1 {
			p = other
		}
		evs = append(evs, engEv(fmt.Sprintf("f%d", i), time.Duration(i)*7*time.Minute, engType(schemas.LoginFailed), engSession(""), engFrom(p.withoutGeo())))
	}
	alerts := engObserve(newTestBruteForce(t), evs...)
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "15 failed logins for one account in 1h38m (threshold 15 in 2h).", a.Summary)
	require.Equal(t, 2, a.Details["networks"])
	require.Equal(t, bfIDs(5, 15), a.Evidence)
	require.Equal(t, "2026-11-20T09:00:00.000Z", a.Details["first_failure"])
}

func TestBruteForceLongWindowState(t *testing.T) {
	t.Parallel()
	d := newTestBruteForce(t)
	engObserve(d, bfFails(40, 0, time.Minute)...)
	f, ok := d.subjects.get("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.True(t, ok)
	require.Len(t, f.fails, 25, "at most the largest threshold of failures")
	require.Len(t, f.idList(), 10, "event IDs of the newest threshold failures")
	require.Equal(t, 24*time.Hour, d.StateHorizon())
	d.Expire(engEv("x", 39*time.Minute+24*time.Hour-time.Second).Time.Time)
	require.Equal(t, 1, d.StateKeys())
	d.Expire(engEv("x", 39*time.Minute+24*time.Hour).Time.Time)
	require.Zero(t, d.StateKeys())
}

// TestBruteForceLongWindowsFromYAML: long_windows replaces the default
// list.
func TestBruteForceLongWindowsFromYAML(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("detectors:\n  brute_force:\n    long_windows: [{window: 1h, threshold: 12}]\n"))
	require.NoError(t, err)
	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	for _, d := range dets {
		if bf, ok := d.(*BruteForce); ok {
			require.Equal(t, []CountWindow{{Duration(10 * time.Minute), 10}, {Duration(time.Hour), 12}}, bf.windows)
		}
	}
}

// csLogin is a successful login of the i-th account from p.
func csLogin(i int, at time.Duration, p engPlace) *schemas.Event {
	return engEv(fmt.Sprintf("ok%d", i), at, engType(schemas.LoginSucceeded), engSession(""), engSubject(csVictim(i)), engFrom(p.withoutGeo()))
}

// csTypos returns n accounts failing once from p, each logging in after
// back, every step.
func csTypos(n int, step, back time.Duration, p engPlace, reason string) []*schemas.Event {
	var out []*schemas.Event
	for i, f := range csFails(n, step, p, nil) {
		f.Reason = reason
		out = append(out, f, csLogin(i, time.Duration(i)*step+back, p))
	}
	sortEvents(out)
	return out
}

func sortEvents(evs []*schemas.Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Time.Before(evs[j-1].Time.Time); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func TestCredentialStuffingLongWindows(t *testing.T) {
	t.Parallel()
	perPrefix := func(i int) string { return fmt.Sprintf("100.72.%d.0/24", i%60) }
	type want struct {
		by      string
		window  int64
		n       int
		nets    int
		ratio   float64
		unknown int
	}
	for _, tc := range []struct {
		name   string
		edit   func(*CredentialStuffingConfig)
		events []*schemas.Event
		want   []want
	}{
		{
			name:   "campaign/one account every two minutes from 60 networks of one ASN",
			events: csFails(50, 2*time.Minute, engMobile, perPrefix),
			want:   []want{{"asn", 7200, 50, 50, 0, 0}},
		},
		{
			name:   "campaign/one account every 20 minutes from one network fills the 24h window",
			events: csFails(60, 20*time.Minute, engSaoPaulo, nil),
			want:   []want{{"ip_prefix", 86400, 60, 1, 0, 0}},
		},
		{
			name:   "campaign/an office where people mistype and then log in",
			events: csTypos(20, 25*time.Second, 40*time.Second, engSaoPaulo, "bad_password"),
		},
		{
			name:   "campaign/the same office without the success ratio",
			edit:   func(c *CredentialStuffingConfig) { c.MaxSuccessRatio = 1 },
			events: csTypos(20, 25*time.Second, 40*time.Second, engSaoPaulo, "bad_password"),
			want:   []want{{"ip_prefix", 600, 20, 1, 0.9, 0}},
		},
		{
			name:   "campaign/accounts that do not exist are stuffing even when some log in",
			events: csTypos(20, 25*time.Second, 40*time.Second, engSaoPaulo, "unknown_user"),
			want:   []want{{"ip_prefix", 600, 20, 1, 0.9, 20}},
		},
		{
			name:   "campaign/unknown_share 0 ignores unknown accounts",
			edit:   func(c *CredentialStuffingConfig) { c.UnknownShare = 0 },
			events: csTypos(20, 25*time.Second, 40*time.Second, engSaoPaulo, "unknown_user"),
		},
		{
			name: "campaign/two apps count apart",
			events: func() []*schemas.Event {
				evs := csFails(30, 10*time.Second, engSaoPaulo, nil)
				for i, e := range evs {
					if i%2 == 1 {
						e.App = "blog"
					}
				}
				return evs
			}(),
		},
		{
			name: "campaign/a burst reported once is not reported again by the long windows",
			events: append(csFails(30, 2*time.Second, engSaoPaulo, nil),
				engEv("later", 70*time.Minute, engType(schemas.LoginFailed), engSession(""), engSubject(csVictim(99)), engFrom(engSaoPaulo.withoutGeo()))),
			want: []want{{"ip_prefix", 600, 20, 1, 0, 0}, {"ip_prefix", 600, 21, 1, 0, 0}, {"ip_prefix", 600, 22, 1, 0, 0}, {"ip_prefix", 600, 23, 1, 0, 0},
				{"ip_prefix", 600, 24, 1, 0, 0}, {"ip_prefix", 600, 25, 1, 0, 0}, {"ip_prefix", 600, 26, 1, 0, 0}, {"ip_prefix", 600, 27, 1, 0, 0},
				{"ip_prefix", 600, 28, 1, 0, 0}, {"ip_prefix", 600, 29, 1, 0, 0}, {"ip_prefix", 600, 30, 1, 0, 0}},
		},
		{
			name:   "campaign/asn_threshold 0 turns the ASN off in the long windows too",
			edit:   func(c *CredentialStuffingConfig) { c.ASNThreshold = 0 },
			events: csFails(50, 2*time.Minute, engMobile, perPrefix),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var edits []func(*CredentialStuffingConfig)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			var got []want
			for _, a := range engObserve(newTestStuffing(t, nil, edits...), tc.events...) {
				d := a.Details
				got = append(got, want{d["by"].(string), d["window_s"].(int64), d["distinct_subjects"].(int), d["networks"].(int),
					d["success_ratio"].(float64), d["unknown_accounts"].(int)})
				require.Empty(t, a.Subject)
				for _, v := range d {
					if s, ok := v.(string); ok {
						require.NotContains(t, s, "k1:", "no pseudonym in the details")
					}
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestCredentialStuffingCampaignAlert(t *testing.T) {
	t.Parallel()
	perPrefix := func(i int) string { return fmt.Sprintf("100.72.%d.0/24", i) }
	alerts := engObserve(newTestStuffing(t, nil), csFails(50, 2*time.Minute, engMobile, perPrefix)...)
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "50 different accounts failed to log in from 50 networks of AS3209 in 1h38m (threshold 50 in 2h).", a.Summary)
	require.Equal(t, &schemas.Source{ASN: 3209}, a.Source)
	require.Equal(t, "asn:AS3209", a.Key)
	require.Len(t, a.Evidence, 50)
}

// TestSnapshotRestoreKeepsLongWindows: an engine restored from a snapshot
// taken in the middle of slow guessing and of a spread campaign raises the
// alerts of an uninterrupted run, and a snapshot of an older state layout
// is refused (the state version is part of the configuration hash).
func TestSnapshotRestoreKeepsLongWindows(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	var events []*schemas.Event
	for _, e := range bfFails(20, 0, 6*time.Minute) {
		e.App = "shop"
		events = append(events, e)
	}
	events = append(events, engEv("ok", 121*time.Minute, engType(schemas.LoginSucceeded), engSession(""), engFrom(engSaoPaulo.withoutGeo())))
	for _, e := range csFails(60, 2*time.Minute, engMobile, func(i int) string { return fmt.Sprintf("100.72.%d.0/24", i) }) {
		e.App = "shop"
		events = append(events, e)
	}
	sortEvents(events)
	want := runEngine(t, cfg, events)
	require.NotEmpty(t, want)
	var detectors []string
	for _, a := range want {
		detectors = append(detectors, a.Detector)
	}
	require.Contains(t, detectors, bruteForceName)
	require.Contains(t, detectors, credentialStuffingName)
	for _, split := range []int{10, len(events) / 2, len(events) - 5} {
		got := runSplit(t, cfg, events, split)
		require.Equal(t, alertIDs(want), alertIDs(got), "snapshot after %d events", split)
		require.Equal(t, want, got, "snapshot after %d events", split)
	}

	bf, err := NewBruteForce(defaultBruteForceConfig())
	require.NoError(t, err)
	require.Contains(t, fmt.Sprintf("%+v", bf.stateConfig()), "StateVersion:2")
	cs, err := NewCredentialStuffing(defaultCredentialStuffingConfig(), nil)
	require.NoError(t, err)
	require.Contains(t, fmt.Sprintf("%+v", cs.stateConfig()), "StateVersion:2")
}

// TestBruteForceStateBytesPerAttackedSubject measures the heap brute_force
// holds for a subject under attack, its failures at the cap: under 1 KiB.
func TestBruteForceStateBytesPerAttackedSubject(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 20000 subjects")
	}
	const subjects = 20_000
	d := newTestBruteForce(t)
	before := heapAlloc()
	for s := range subjects {
		subject := fmt.Sprintf("k1:attacked%013d", s)
		for i := range 30 {
			// Fresh strings per event, as a decoder makes them.
			e := engEv(fmt.Sprintf("0193a5e2-7c4b-7d1e-9f00-%07d%05d", s, i), time.Duration(i)*time.Minute, engType(schemas.LoginFailed),
				engSubject(subject), engFrom(engSaoPaulo.withoutGeo()))
			d.Observe(e, func(schemas.Alert) {})
		}
	}
	after := heapAlloc()
	per := float64(after-before) / subjects
	t.Logf("brute_force: %.0f bytes per attacked subject", per)
	require.Less(t, per, 1024.0)
	runtime.KeepAlive(d)
}
