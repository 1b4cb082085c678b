package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestMissingReauth(t *testing.T) *MissingReauth {
	t.Helper()
	d, err := NewMissingReauth(defaultMissingReauthConfig(), DefaultPolicy)
	require.NoError(t, err)
	return d
}

func TestMissingReauthObserve(t *testing.T) {
	t.Parallel()
	sensitive := polAction("export_data", true)
	start := polEv("start", schemas.SessionStarted, 0, polPolicy(1800, 8*3600, 300))
	for _, tc := range []struct {
		name    string
		events  []*schemas.Event
		want    []polHit
		sources []string // auth_source of each alert
	}{
		{
			name: "reauth/stale last_auth_at on the action",
			events: []*schemas.Event{
				start,
				polEv("a1", schemas.ActionPerformed, 91*time.Minute, sensitive, polLastAuth(0)),
			},
			want:    []polHit{{Key: polSessA + "|export_data", At: 91 * time.Minute, Evidence: []string{"a1"}}},
			sources: []string{"session_start"},
		},
		{
			name: "reauth/re-authenticated just before the action",
			events: []*schemas.Event{
				start,
				polEv("r1", schemas.ReauthSucceeded, 90*time.Minute, polLastAuth(90*time.Minute)),
				polEv("a1", schemas.ActionPerformed, 90*time.Minute+30*time.Second, sensitive, polLastAuth(90*time.Minute)),
			},
		},
		{
			name: "reauth/action without last_auth_at uses the observed re-authentication",
			events: []*schemas.Event{
				start,
				polEv("r1", schemas.ReauthSucceeded, 90*time.Minute),
				polEv("a1", schemas.ActionPerformed, 94*time.Minute, sensitive),
			},
		},
		{
			name: "reauth/action without last_auth_at falls back to the session start",
			events: []*schemas.Event{
				start,
				polEv("a1", schemas.ActionPerformed, 6*time.Minute, sensitive),
			},
			want:    []polHit{{Key: polSessA + "|export_data", At: 6 * time.Minute, Evidence: []string{"a1"}}},
			sources: []string{"session_start"},
		},
		{
			name: "reauth/a stale last_auth_at does not hide an observed re-authentication",
			events: []*schemas.Event{
				start,
				polEv("r1", schemas.ReauthSucceeded, 2*time.Hour),
				polEv("a1", schemas.ActionPerformed, 2*time.Hour+time.Minute, sensitive, polLastAuth(0)),
			},
		},
		{
			name: "reauth/a recent last_auth_at on the action is enough",
			events: []*schemas.Event{
				start,
				polEv("a1", schemas.ActionPerformed, 3*time.Hour, sensitive, polLastAuth(3*time.Hour-time.Minute)),
			},
		},
		{
			name: "reauth/window exactly reached",
			events: []*schemas.Event{
				start,
				polEv("a1", schemas.ActionPerformed, 5*time.Minute, sensitive),
			},
		},
		{
			name: "reauth/non-sensitive actions are not judged",
			events: []*schemas.Event{
				start,
				polEv("a1", schemas.ActionPerformed, 3*time.Hour, polAction("view_cart", false)),
			},
		},
		{
			name: "reauth/default window when none was declared",
			events: []*schemas.Event{
				polEv("start", schemas.SessionStarted, 0),
				polEv("a1", schemas.ActionPerformed, 10*time.Minute, sensitive),
				polEv("a2", schemas.ActionPerformed, 16*time.Minute, polAction("change_email", true)),
			},
			want:    []polHit{{Key: polSessA + "|change_email", At: 16 * time.Minute, Evidence: []string{"a2"}}},
			sources: []string{"session_start"},
		},
		{
			name: "reauth/login naming the session counts as authentication",
			events: []*schemas.Event{
				start,
				polEv("l1", schemas.LoginSucceeded, 2*time.Hour),
				polEv("a1", schemas.ActionPerformed, 2*time.Hour+time.Minute, sensitive),
			},
		},
		{
			name: "reauth/each sensitive action is judged",
			events: []*schemas.Event{
				start,
				polEv("a1", schemas.ActionPerformed, time.Hour, sensitive),
				polEv("r1", schemas.ReauthSucceeded, 2*time.Hour),
				polEv("a2", schemas.ActionPerformed, 2*time.Hour+time.Minute, sensitive),
				polEv("a3", schemas.ActionPerformed, 3*time.Hour, polAction("delete_account", true)),
			},
			want: []polHit{
				{Key: polSessA + "|export_data", At: time.Hour, Evidence: []string{"a1"}},
				{Key: polSessA + "|delete_account", At: 3 * time.Hour, Evidence: []string{"a3"}},
			},
			sources: []string{"session_start", "reauth"},
		},
		{
			name: "reauth/action without a session judged on its own last_auth_at",
			events: []*schemas.Event{
				polEv("a1", schemas.ActionPerformed, time.Hour, sensitive, polSession(""), polLastAuth(0)),
			},
			want:    []polHit{{Key: polSubject + "|export_data", At: time.Hour, Evidence: []string{"a1"}}},
			sources: []string{"reported"},
		},
		{
			name: "reauth/nothing known about authentication",
			events: []*schemas.Event{
				polEv("a1", schemas.ActionPerformed, time.Hour, sensitive),
				polEv("a2", schemas.ActionPerformed, 2*time.Hour, sensitive, polSession("")),
			},
		},
		{
			name: "reauth/the session ended: its authentication is forgotten",
			events: []*schemas.Event{
				start,
				polEv("end", schemas.SessionEnded, time.Minute),
				polEv("a1", schemas.ActionPerformed, time.Hour, sensitive),
			},
		},
		{
			name: "reauth/session started without rotation of a tracked pre-login session",
			events: []*schemas.Event{
				polEv("s0", schemas.SessionStarted, 0, polSession(polAnon)),
				polEv("s1", schemas.SessionStarted, 2*time.Hour, polPrevious(polAnon), polPolicy(0, 0, 300)),
				polEv("a1", schemas.ActionPerformed, 2*time.Hour+time.Minute, sensitive),
				polEv("a2", schemas.ActionPerformed, 2*time.Hour+time.Minute, sensitive, polSession(polAnon)),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := tc.want
			if want == nil {
				want = []polHit{}
			}
			got := polRun(t, newTestMissingReauth(t), tc.events...)
			require.Equal(t, want, polHits(got))
			sources := []string{}
			for _, a := range got {
				sources = append(sources, a.Details["auth_source"].(string))
			}
			if tc.sources == nil {
				tc.sources = []string{}
			}
			require.Equal(t, tc.sources, sources)
		})
	}
}

func TestMissingReauthAlert(t *testing.T) {
	t.Parallel()
	got := polRun(t, newTestMissingReauth(t),
		polEv("start", schemas.SessionStarted, 0, polPolicy(1800, 8*3600, 300), polLastAuth(-20*time.Millisecond)),
		polEv("act", schemas.SessionActivity, time.Hour),
		polEv("a1", schemas.ActionPerformed, 91*time.Minute, polAction("export_data", true), polLastAuth(0)),
	)
	require.Equal(t, []schemas.Alert{{
		Detector: "missing_reauth",
		Severity: schemas.SeverityHigh,
		Time:     schemas.At(polBase.Add(91 * time.Minute)),
		App:      polApp,
		Subject:  polSubject,
		Session:  polSessA,
		Title:    "Sensitive action without recent re-authentication",
		Summary:  `Sensitive action "export_data" in session k1:Sessi… came 1h31m after the last authentication; the re-authentication window is 5m.`,
		Details: map[string]any{
			"action":          "export_data",
			"auth_age_s":      int64(5460),
			"reauth_window_s": int64(300),
			"last_auth_at":    "2026-11-25T10:00:00.000Z",
			"auth_source":     "reported",
			"policy_source":   "declared",
		},
		Evidence: []string{"a1"},
		Key:      polSessA + "|export_data",
	}}, got)
}

func TestMissingReauthState(t *testing.T) {
	t.Parallel()
	sensitive := polAction("export_data", true)
	t.Run("reauth/expire forgets quiet sessions", func(t *testing.T) {
		t.Parallel()
		d := newTestMissingReauth(t)
		polRun(t, d, polEv("s1", schemas.SessionStarted, 0))
		d.Expire(polBase.Add(23 * time.Hour))
		require.Equal(t, 1, d.sessions.size())
		d.Expire(polBase.Add(25 * time.Hour))
		require.Zero(t, d.sessions.size())
		require.Empty(t, polRun(t, d, polEv("a1", schemas.ActionPerformed, 25*time.Hour, sensitive)),
			"nothing is known about authentication any more")
	})
	t.Run("reauth/events without auth information create no state", func(t *testing.T) {
		t.Parallel()
		d := newTestMissingReauth(t)
		polRun(t, d, polEv("e1", schemas.SessionActivity, 0), polEv("e2", schemas.ActionPerformed, 0, sensitive))
		require.Zero(t, d.sessions.size())
	})
	t.Run("reauth/forget drops the subject's sessions", func(t *testing.T) {
		t.Parallel()
		d := newTestMissingReauth(t)
		polRun(t, d,
			polEv("s1", schemas.SessionStarted, 0),
			polEv("s2", schemas.SessionStarted, 0, polSession(polSessB), polSubjectOf(polSubject2)))
		d.Forget(polSubject2)
		require.Equal(t, 1, d.sessions.size())
		_, ok := d.sessions.get(pseudonymHash(polSessA))
		require.True(t, ok)
	})
}

func TestMissingReauthConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(*MissingReauthConfig)
		errors []string
	}{
		{name: "reauth/defaults are valid", edit: func(*MissingReauthConfig) {}},
		{
			name: "reauth/every problem is named",
			edit: func(c *MissingReauthConfig) { c.DedupWindow, c.StateTTL, c.MaxSessions = -1, 0, 0 },
			errors: []string{
				"detectors.missing_reauth.dedup_window: must not be negative",
				"detectors.missing_reauth.state_ttl: must be positive",
				"detectors.missing_reauth.max_sessions: must be positive",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultMissingReauthConfig()
			tc.edit(&cfg)
			d, err := NewMissingReauth(cfg, DefaultPolicy)
			if len(tc.errors) == 0 {
				require.NoError(t, err)
				require.Equal(t, "missing_reauth", d.Name())
				return
			}
			require.Nil(t, d)
			for _, msg := range tc.errors {
				require.ErrorContains(t, err, msg)
			}
		})
	}
}

func TestMissingReauthScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "missing_reauth_fires",
			want: []polScenarioHit{
				{Detector: "missing_reauth", Key: "k1:SsM1ss1ngReauthF1res1|export_data", Time: "2026-11-25T11:31:00.000Z", Evidence: []string{"mrf-007"}},
			},
		},
		{name: "missing_reauth_recent_reauth"},
	})
}
