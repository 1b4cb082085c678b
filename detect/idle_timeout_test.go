package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestIdleTimeout(t *testing.T, policy PolicyDefaults) *IdleTimeout {
	t.Helper()
	d, err := NewIdleTimeout(defaultIdleTimeoutConfig(), policy)
	require.NoError(t, err)
	return d
}

func TestIdleTimeoutObserve(t *testing.T) {
	t.Parallel()
	const (
		start = schemas.SessionStarted
		act   = schemas.SessionActivity
	)
	for _, tc := range []struct {
		name   string
		policy *PolicyDefaults // nil: DefaultPolicy
		events []*schemas.Event
		want   []polHit
	}{
		{
			name: "idle/gap longer than the declared timeout",
			events: []*schemas.Event{
				polEv("e1", start, 0, polPolicy(1800, 0, 0)),
				polEv("e2", act, 5*time.Minute),
				polEv("e3", act, 2*time.Hour+5*time.Minute),
			},
			want: []polHit{{Key: polSessA, At: 2*time.Hour + 5*time.Minute, Evidence: []string{"e2", "e3"}}},
		},
		{
			name: "idle/gap just under the timeout",
			events: []*schemas.Event{
				polEv("e1", start, 0, polPolicy(1800, 0, 0)),
				polEv("e2", act, 29*time.Minute+59*time.Second),
				polEv("e3", act, 59*time.Minute+58*time.Second),
			},
		},
		{
			name: "idle/gap exactly the timeout",
			events: []*schemas.Event{
				polEv("e1", start, 0, polPolicy(1800, 0, 0)),
				polEv("e2", act, 30*time.Minute),
			},
		},
		{
			name: "idle/session ended and a new one started",
			events: []*schemas.Event{
				polEv("e1", start, 0, polPolicy(1800, 0, 0)),
				polEv("e2", act, 5*time.Minute),
				polEv("e3", schemas.SessionEnded, 10*time.Minute),
				polEv("e4", start, 3*time.Hour, polSession(polSessB), polPolicy(1800, 0, 0)),
				polEv("e5", act, 3*time.Hour+time.Minute, polSession(polSessB)),
				// Use of the ended session is token_reuse's business.
				polEv("e6", act, 3*time.Hour+2*time.Minute),
			},
		},
		{
			name: "idle/the same session id started again",
			events: []*schemas.Event{
				polEv("e1", start, 0, polPolicy(1800, 0, 0)),
				polEv("e2", start, 2*time.Hour, polPolicy(1800, 0, 0)),
				polEv("e3", act, 2*time.Hour+time.Minute),
			},
		},
		{
			name: "idle/the replaced pre-login session is no longer tracked",
			events: []*schemas.Event{
				polEv("e1", start, 0, polSession(polAnon)),
				polEv("e2", start, time.Hour, polPrevious(polAnon)),
				polEv("e3", act, 3*time.Hour, polSession(polAnon)),
			},
		},
		{
			name: "idle/default timeout when none was declared",
			events: []*schemas.Event{
				polEv("e1", start, 0),
				polEv("e2", act, 31*time.Minute),
			},
			want: []polHit{{Key: polSessA, At: 31 * time.Minute, Evidence: []string{"e1", "e2"}}},
		},
		{
			name: "idle/declared timeout longer than the default",
			events: []*schemas.Event{
				polEv("e1", start, 0, polPolicy(7200, 0, 0)),
				polEv("e2", act, time.Hour),
			},
		},
		{
			name:   "idle/no declared and no default timeout",
			policy: &PolicyDefaults{},
			events: []*schemas.Event{
				polEv("e1", start, 0),
				polEv("e2", act, 10*time.Hour),
			},
		},
		{
			name: "idle/start not seen: measured from the first activity",
			events: []*schemas.Event{
				polEv("e1", act, 0),
				polEv("e2", act, 40*time.Minute),
			},
			want: []polHit{{Key: polSessA, At: 40 * time.Minute, Evidence: []string{"e1", "e2"}}},
		},
		{
			name: "idle/once per session",
			events: []*schemas.Event{
				polEv("e1", start, 0),
				polEv("e2", act, time.Hour),
				polEv("e3", act, 3*time.Hour),
			},
			want: []polHit{{Key: polSessA, At: time.Hour, Evidence: []string{"e1", "e2"}}},
		},
		{
			name: "idle/token use, refresh and actions are activity",
			events: []*schemas.Event{
				polEv("e1", start, 0),
				polEv("e2", schemas.TokenUsed, 20*time.Minute, polToken(polTokenA, schemas.TokenAccess, "", 0, -1)),
				polEv("e3", schemas.TokenRefreshed, 40*time.Minute, polToken(polTokenB, schemas.TokenRefresh, "", 0, -1)),
				polEv("e4", schemas.ActionPerformed, time.Hour, polAction("view_cart", false)),
				polEv("e5", schemas.TokenUsed, 2*time.Hour, polToken(polTokenA, schemas.TokenAccess, "", 0, -1)),
			},
			want: []polHit{{Key: polSessA, At: 2 * time.Hour, Evidence: []string{"e4", "e5"}}},
		},
		{
			name: "idle/issuing tokens and re-authenticating do not reset the idle clock",
			events: []*schemas.Event{
				polEv("e1", start, 0),
				polEv("e2", schemas.TokenIssued, 50*time.Minute, polToken(polTokenA, schemas.TokenAccess, "", 50*time.Minute, time.Hour)),
				polEv("e3", schemas.ReauthSucceeded, 55*time.Minute),
				polEv("e4", act, time.Hour),
			},
			want: []polHit{{Key: polSessA, At: time.Hour, Evidence: []string{"e1", "e4"}}},
		},
		{
			name: "idle/sessions are independent",
			events: []*schemas.Event{
				polEv("e1", start, 0),
				polEv("e2", start, 0, polSession(polSessB), polSubjectOf(polSubject2)),
				polEv("e3", act, 20*time.Minute, polSession(polSessB), polSubjectOf(polSubject2)),
				polEv("e4", act, 40*time.Minute, polSession(polSessB), polSubjectOf(polSubject2)),
				polEv("e5", act, 45*time.Minute),
			},
			want: []polHit{{Key: polSessA, At: 45 * time.Minute, Evidence: []string{"e1", "e5"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			policy := DefaultPolicy
			if tc.policy != nil {
				policy = *tc.policy
			}
			got := polRun(t, newTestIdleTimeout(t, policy), tc.events...)
			want := tc.want
			if want == nil {
				want = []polHit{}
			}
			require.Equal(t, want, polHits(got))
		})
	}
}

func TestIdleTimeoutAlert(t *testing.T) {
	t.Parallel()
	d := newTestIdleTimeout(t, DefaultPolicy)
	got := polRun(t, d,
		polEv("e1", schemas.SessionStarted, 0, polPolicy(1800, 0, 0)),
		polEv("e2", schemas.SessionActivity, 5*time.Minute),
		polEv("e3", schemas.SessionActivity, 2*time.Hour+10*time.Minute),
	)
	require.Equal(t, []schemas.Alert{{
		Detector: "idle_timeout_exceeded",
		Severity: schemas.SeverityMedium,
		Time:     schemas.At(polBase.Add(2*time.Hour + 10*time.Minute)),
		App:      polApp,
		Subject:  polSubject,
		Session:  polSessA,
		Title:    "Idle session was not expired",
		Summary:  "Session k1:Sessi… was active 2h05m after its last activity; its idle timeout is 30m.",
		Details: map[string]any{
			"gap_s":            int64(7500),
			"idle_timeout_s":   int64(1800),
			"policy_source":    "declared",
			"last_activity_at": "2026-11-25T10:05:00.000Z",
			"event_type":       "session.activity",
		},
		Evidence: []string{"e2", "e3"},
		Key:      polSessA,
	}}, got)
}

func TestIdleTimeoutState(t *testing.T) {
	t.Parallel()
	start := func(id, session, subject string, at time.Duration) *schemas.Event {
		return polEv(id, schemas.SessionStarted, at, polSession(session), polSubjectOf(subject))
	}
	act := func(id, session, subject string, at time.Duration) *schemas.Event {
		return polEv(id, schemas.SessionActivity, at, polSession(session), polSubjectOf(subject))
	}

	t.Run("idle/expire keeps a session within state_ttl", func(t *testing.T) {
		t.Parallel()
		d := newTestIdleTimeout(t, DefaultPolicy)
		polRun(t, d, start("e1", polSessA, polSubject, 0))
		d.Expire(polBase.Add(23 * time.Hour))
		require.Len(t, polRun(t, d, act("e2", polSessA, polSubject, 23*time.Hour)), 1)
	})
	t.Run("idle/expire drops a session quiet for longer than state_ttl", func(t *testing.T) {
		t.Parallel()
		d := newTestIdleTimeout(t, DefaultPolicy)
		polRun(t, d, start("e1", polSessA, polSubject, 0))
		d.Expire(polBase.Add(24*time.Hour + time.Second))
		require.Zero(t, d.sessions.size())
		require.Empty(t, polRun(t, d, act("e2", polSessA, polSubject, 25*time.Hour)))
	})
	t.Run("idle/a long declared timeout is remembered for twice its length", func(t *testing.T) {
		t.Parallel()
		d := newTestIdleTimeout(t, DefaultPolicy)
		polRun(t, d, polEv("e1", schemas.SessionStarted, 0, polPolicy(48*3600, 0, 0)))
		d.Expire(polBase.Add(95 * time.Hour))
		require.Len(t, polRun(t, d, act("e2", polSessA, polSubject, 95*time.Hour)), 1)
	})
	t.Run("idle/forget drops only that subject", func(t *testing.T) {
		t.Parallel()
		d := newTestIdleTimeout(t, DefaultPolicy)
		polRun(t, d, start("e1", polSessA, polSubject, 0), start("e2", polSessB, polSubject2, 0))
		d.Forget(polSubject)
		require.Empty(t, polRun(t, d, act("e3", polSessA, polSubject, time.Hour)))
		require.Len(t, polRun(t, d, act("e4", polSessB, polSubject2, time.Hour)), 1)
	})
	t.Run("idle/max_sessions evicts the least recently active", func(t *testing.T) {
		t.Parallel()
		cfg := defaultIdleTimeoutConfig()
		cfg.MaxSessions = 1
		d, err := NewIdleTimeout(cfg, DefaultPolicy)
		require.NoError(t, err)
		polRun(t, d, start("e1", polSessA, polSubject, 0), start("e2", polSessB, polSubject2, time.Minute))
		require.Equal(t, 1, d.sessions.size())
		require.Len(t, polRun(t, d, act("e3", polSessB, polSubject2, time.Hour)), 1)
	})
}

func TestIdleTimeoutConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(*IdleTimeoutConfig, *PolicyDefaults)
		errors []string
	}{
		{name: "idle/defaults are valid", edit: func(*IdleTimeoutConfig, *PolicyDefaults) {}},
		{
			name: "idle/every problem is named",
			edit: func(c *IdleTimeoutConfig, _ *PolicyDefaults) {
				c.Severity, c.DedupWindow, c.StateTTL, c.MaxSessions = "urgent", -1, 0, 0
			},
			errors: []string{
				"detectors.idle_timeout_exceeded.severity:",
				"detectors.idle_timeout_exceeded.dedup_window:",
				"detectors.idle_timeout_exceeded.state_ttl: must be positive",
				"detectors.idle_timeout_exceeded.max_sessions: must be positive",
			},
		},
		{
			name: "idle/state_ttl must outlast the default idle timeout",
			edit: func(c *IdleTimeoutConfig, p *PolicyDefaults) {
				c.StateTTL, p.IdleTimeout = Duration(time.Hour), Duration(time.Hour)
			},
			errors: []string{"detectors.idle_timeout_exceeded.state_ttl: must be longer than the default idle timeout"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, policy := defaultIdleTimeoutConfig(), DefaultPolicy
			tc.edit(&cfg, &policy)
			d, err := NewIdleTimeout(cfg, policy)
			if len(tc.errors) == 0 {
				require.NoError(t, err)
				require.Equal(t, "idle_timeout_exceeded", d.Name())
				return
			}
			require.Error(t, err)
			require.Nil(t, d)
			for _, msg := range tc.errors {
				require.ErrorContains(t, err, msg)
			}
		})
	}
}

func TestIdleTimeoutScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "idle_timeout_fires",
			want: []polScenarioHit{
				{Detector: "idle_timeout_exceeded", Key: "k1:Ss1dLeF1resSessionAAA", Time: "2026-11-25T12:10:00.000Z", Evidence: []string{"itf-004", "itf-005"}},
			},
		},
		{name: "idle_timeout_new_session"},
		{name: "idle_timeout_under"},
	})
}
