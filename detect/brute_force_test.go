package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestBruteForce(t *testing.T) *BruteForce {
	t.Helper()
	d, err := NewBruteForce(defaultBruteForceConfig())
	require.NoError(t, err)
	return d
}

// bfFail is a login.failed for the default subject.
func bfFail(id string, at time.Duration) *schemas.Event {
	return engEv(id, at, engType(schemas.LoginFailed), engSession(""), engFrom(engSaoPaulo.withoutGeo()))
}

// bfFails returns n failures every step from start, ids f0, f1, ...
func bfFails(n int, start, step time.Duration) []*schemas.Event {
	var out []*schemas.Event
	for i := range n {
		out = append(out, bfFail(fmt.Sprintf("f%d", i), start+time.Duration(i)*step))
	}
	return out
}

func bfIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("f%d", i))
	}
	return out
}

func TestBruteForceObserve(t *testing.T) {
	t.Parallel()
	const subject = "k1:AbCdEfGhIjKlMnOpQrStUv"
	login := engEv("ok", 5*time.Minute, engType(schemas.LoginSucceeded), engSession(""), engFrom(engSaoPaulo.withoutGeo()))
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []engFinding
	}{
		{
			name:   "brute/ten failures in a minute and a half",
			events: bfFails(10, 0, 10*time.Second),
			want:   []engFinding{{Key: subject, Evidence: bfIDs(0, 10)}},
		},
		{
			name:   "brute/nine failures stay below the threshold",
			events: bfFails(9, 0, 10*time.Second),
		},
		{
			name:   "brute/ten failures spread over more than the window",
			events: bfFails(10, 0, 70*time.Second),
		},
		{
			name:   "brute/every failure past the threshold is a finding (the engine deduplicates)",
			events: bfFails(12, 0, 10*time.Second),
			want: []engFinding{
				{Key: subject, Evidence: bfIDs(0, 10)},
				{Key: subject, Evidence: bfIDs(1, 11)},
				{Key: subject, Evidence: bfIDs(2, 12)},
			},
		},
		{
			name:   "brute/two typos, then the right password",
			events: append(bfFails(2, 0, 9*time.Second), login),
		},
		{
			name:   "brute/a success after the threshold",
			events: append(bfFails(10, 0, 10*time.Second), login),
			want: []engFinding{
				{Key: subject, Evidence: bfIDs(0, 10)},
				{Key: subject + ":succeeded", Evidence: append(bfIDs(0, 10), "ok")},
			},
		},
		{
			name:   "brute/the same event delivered twice counts once",
			events: append(bfFails(9, 0, 10*time.Second), bfFail("f8", 80*time.Second)),
		},
		{
			name: "brute/a late failure is counted in time order",
			events: append(bfFails(5, 0, 10*time.Second),
				bfFail("f9", 90*time.Second), bfFail("f5", 50*time.Second), bfFail("f6", 60*time.Second),
				bfFail("f7", 70*time.Second), bfFail("f8", 80*time.Second)),
			want: []engFinding{{Key: subject, Evidence: bfIDs(0, 10)}},
		},
		{
			name: "brute/other subjects count apart",
			events: func() []*schemas.Event {
				evs := bfFails(9, 0, 10*time.Second)
				return append(evs, engEv("x", 95*time.Second, engType(schemas.LoginFailed), engSubject("k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L")))
			}(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, engFindings(engObserve(newTestBruteForce(t), tc.events...)))
		})
	}
}

func TestBruteForceAlert(t *testing.T) {
	t.Parallel()
	alerts := engObserve(newTestBruteForce(t), append(bfFails(10, 0, 10*time.Second),
		engEv("ok", 2*time.Minute, engType(schemas.LoginSucceeded), engFrom(engSaoPaulo.withoutGeo())))...)
	require.Len(t, alerts, 2)
	a := alerts[0]
	require.Equal(t, "brute_force", a.Detector)
	require.Equal(t, schemas.SeverityMedium, a.Severity)
	require.Equal(t, "Brute force against one account", a.Title)
	require.Equal(t, "10 failed logins for one account in 1m30s (threshold 10 in 10m).", a.Summary)
	require.Equal(t, map[string]any{
		"failures": 10, "threshold": 10, "window_s": int64(600), "first_failure": "2026-11-20T09:00:00.000Z",
		"outcome": "failing", "ip_prefix": "100.64.5.0/24", "asn": uint32(28573),
		"networks": 1, "successes": 0,
	}, a.Details)
	require.Empty(t, a.Session)

	s := alerts[1]
	require.Equal(t, schemas.SeverityHigh, s.Severity)
	require.Equal(t, "Successful login after brute force", s.Title)
	require.Equal(t, "succeeded", s.Details["outcome"])
	require.Equal(t, "A login succeeded after 10 failed logins for the account in 2m (threshold 10 in 10m).", s.Summary)
	require.Equal(t, "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X", s.Session)
}

func TestBruteForceState(t *testing.T) {
	t.Parallel()
	// Only the short window: state lives as long as the longest window.
	cfg := defaultBruteForceConfig()
	cfg.LongWindows = nil
	d, err := NewBruteForce(cfg)
	require.NoError(t, err)
	engObserve(d, bfFails(3, 0, time.Second)...)
	require.Equal(t, 1, d.StateKeys())
	d.Expire(engEv("x", 10*time.Minute).Time.Time)
	require.Equal(t, 1, d.StateKeys())
	d.Expire(engEv("x", 10*time.Minute+2*time.Second).Time.Time)
	require.Zero(t, d.StateKeys())
	engObserve(d, bfFails(3, time.Hour, time.Second)...)
	d.Forget("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.Zero(t, d.StateKeys())
}

func TestBruteForceConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*BruteForceConfig)
		want string
	}{
		{name: "config/threshold", edit: func(c *BruteForceConfig) { c.Threshold = 1 }, want: "detectors.brute_force.threshold: must be between 2 and 1000 (got 1)"},
		{name: "config/window", edit: func(c *BruteForceConfig) { c.Window = 0 }, want: "detectors.brute_force.window: must be positive"},
		{name: "config/max keys", edit: func(c *BruteForceConfig) { c.MaxKeys = 0 }, want: "detectors.brute_force.max_keys: must be positive"},
		{name: "config/dedup", edit: func(c *BruteForceConfig) { c.DedupWindow = Duration(-time.Second) }, want: "detectors.brute_force.dedup_window: must not be negative"},
		{name: "config/long window not longer", edit: func(c *BruteForceConfig) { c.LongWindows[0].Window = Duration(5 * time.Minute) },
			want: "detectors.brute_force.long_windows[0].window: must be longer than 10m0s (got 5m0s)"},
		{name: "config/long windows out of order", edit: func(c *BruteForceConfig) { c.LongWindows[1].Window = Duration(time.Hour) },
			want: "detectors.brute_force.long_windows[1].window: must be longer than 2h0m0s (got 1h0m0s)"},
		{name: "config/long window threshold", edit: func(c *BruteForceConfig) { c.LongWindows[1].Threshold = 1 },
			want: "detectors.brute_force.long_windows[1].threshold: must be between 2 and 1000 (got 1)"},
		{name: "config/too many long windows", edit: func(c *BruteForceConfig) {
			for i := range 4 {
				c.LongWindows = append(c.LongWindows, CountWindow{Window: Duration(time.Duration(25+i) * time.Hour), Threshold: 30})
			}
		}, want: "detectors.brute_force.long_windows: at most 4 (got 6)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultBruteForceConfig()
			tc.edit(&cfg)
			_, err := NewBruteForce(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
