package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func newTestAbsoluteTimeout(t *testing.T) *AbsoluteTimeout {
	t.Helper()
	d, err := NewAbsoluteTimeout(defaultAbsoluteTimeoutConfig(), DefaultPolicy)
	require.NoError(t, err)
	return d
}

// polSteady returns session.activity every 20 minutes from start (exclusive)
// to end (exclusive), with ids act1, act2, ...
func polSteady(start, end time.Duration) []*schemas.Event {
	var out []*schemas.Event
	for i, at := 1, start+20*time.Minute; at < end; i, at = i+1, at+20*time.Minute {
		out = append(out, polEv(fmt.Sprintf("act%d", i), schemas.SessionActivity, at))
	}
	return out
}

func TestAbsoluteTimeoutObserve(t *testing.T) {
	t.Parallel()
	start := func(opts ...func(*schemas.Event)) *schemas.Event {
		return polEv("start", schemas.SessionStarted, 0, opts...)
	}
	for _, tc := range []struct {
		name   string
		policy *PolicyDefaults // nil: DefaultPolicy
		events []*schemas.Event
		want   []polHit
	}{
		{
			// Never idle for long, so only the absolute timeout applies;
			// one alert although every event after 8h is late.
			name:   "absolute/steady activity past the declared timeout",
			events: append([]*schemas.Event{start(polPolicy(1800, 8*3600, 300))}, polSteady(0, 11*time.Hour)...),
			want:   []polHit{{Key: polSessA, At: 8*time.Hour + 20*time.Minute, Evidence: []string{"act25"}}},
		},
		{
			name: "absolute/activity just under the timeout",
			events: []*schemas.Event{
				start(polPolicy(0, 8*3600, 0)),
				polEv("e2", schemas.SessionActivity, 7*time.Hour+59*time.Minute+59*time.Second),
				polEv("e3", schemas.SessionActivity, 8*time.Hour),
			},
		},
		{
			name: "absolute/default timeout when none was declared",
			events: []*schemas.Event{
				start(),
				polEv("e2", schemas.ActionPerformed, 12*time.Hour+time.Second, polAction("view", false)),
			},
			want: []polHit{{Key: polSessA, At: 12*time.Hour + time.Second, Evidence: []string{"e2"}}},
		},
		{
			name: "absolute/declared timeout longer than the default",
			events: []*schemas.Event{
				start(polPolicy(0, 24*3600, 0)),
				polEv("e2", schemas.SessionActivity, 13*time.Hour),
			},
		},
		{
			name: "absolute/session ended and a new one started",
			events: []*schemas.Event{
				start(),
				polEv("e2", schemas.SessionEnded, time.Hour),
				polEv("e3", schemas.SessionStarted, 11*time.Hour, polSession(polSessB), polPrevious(polAnon)),
				polEv("e4", schemas.SessionActivity, 13*time.Hour, polSession(polSessB)),
			},
		},
		{
			name: "absolute/start not seen: measured from the first event",
			events: []*schemas.Event{
				polEv("e1", schemas.TokenUsed, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1)),
				polEv("e2", schemas.TokenUsed, 12*time.Hour+time.Minute, polToken(polTokenA, schemas.TokenAccess, "", 0, -1)),
			},
			want: []polHit{{Key: polSessA, At: 12*time.Hour + time.Minute, Evidence: []string{"e2"}}},
		},
		{
			name:   "absolute/no default and nothing declared",
			policy: &PolicyDefaults{},
			events: []*schemas.Event{
				start(polPolicy(1800, 0, 0)),
				polEv("e2", schemas.SessionActivity, 30*time.Hour),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			policy := DefaultPolicy
			if tc.policy != nil {
				policy = *tc.policy
			}
			d, err := NewAbsoluteTimeout(defaultAbsoluteTimeoutConfig(), policy)
			require.NoError(t, err)
			want := tc.want
			if want == nil {
				want = []polHit{}
			}
			require.Equal(t, want, polHits(polRun(t, d, tc.events...)))
		})
	}
}

func TestAbsoluteTimeoutAlert(t *testing.T) {
	t.Parallel()
	got := polRun(t, newTestAbsoluteTimeout(t),
		polEv("e1", schemas.SessionActivity, 0),
		polEv("e2", schemas.SessionActivity, 12*time.Hour+10*time.Minute),
	)
	require.Len(t, got, 1)
	require.Equal(t, "Session k1:Sessi… was active 12h10m after it was first seen; its absolute timeout is 12h.", got[0].Summary)
	require.Equal(t, map[string]any{
		"age_s":              int64(43800),
		"absolute_timeout_s": int64(43200),
		"policy_source":      "default",
		"started_at":         "2026-11-25T10:00:00.000Z",
		"start_seen":         false,
		"event_type":         "session.activity",
	}, got[0].Details)
	require.Equal(t, schemas.SeverityMedium, got[0].Severity)
	require.Equal(t, polSessA, got[0].Session)

	got = polRun(t, newTestAbsoluteTimeout(t),
		polEv("s1", schemas.SessionStarted, 0, polPolicy(0, 8*3600, 0)),
		polEv("s2", schemas.SessionActivity, 9*time.Hour),
	)
	require.Len(t, got, 1)
	require.Equal(t, "Session k1:Sessi… was active 9h after it started; its absolute timeout is 8h.", got[0].Summary)
	require.Equal(t, "declared", got[0].Details["policy_source"])
	require.Equal(t, true, got[0].Details["start_seen"])
}

func TestAbsoluteTimeoutState(t *testing.T) {
	t.Parallel()
	t.Run("absolute/active sessions survive expiry", func(t *testing.T) {
		t.Parallel()
		d := newTestAbsoluteTimeout(t)
		polRun(t, d, polEv("e1", schemas.SessionStarted, 0))
		for h := time.Duration(1); h <= 11; h++ {
			polRun(t, d, polEv(fmt.Sprintf("a%d", h), schemas.SessionActivity, h*time.Hour))
			d.Expire(polBase.Add(h * time.Hour))
		}
		require.Len(t, polRun(t, d, polEv("a12", schemas.SessionActivity, 12*time.Hour+time.Minute)), 1)
	})
	t.Run("absolute/quiet sessions expire after state_ttl", func(t *testing.T) {
		t.Parallel()
		d := newTestAbsoluteTimeout(t)
		polRun(t, d, polEv("e1", schemas.SessionStarted, 0))
		d.Expire(polBase.Add(25 * time.Hour))
		require.Zero(t, d.sessions.size())
	})
	t.Run("absolute/forget drops the subject's sessions", func(t *testing.T) {
		t.Parallel()
		d := newTestAbsoluteTimeout(t)
		polRun(t, d,
			polEv("e1", schemas.SessionStarted, 0),
			polEv("e2", schemas.SessionStarted, 0, polSession(polSessB), polSubjectOf(polSubject2)))
		d.Forget(polSubject)
		require.Equal(t, 1, d.sessions.size())
		_, ok := d.sessions.get(pseudonymHash(polSessB))
		require.True(t, ok)
	})
}

func TestAbsoluteTimeoutConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(*AbsoluteTimeoutConfig)
		errors []string
	}{
		{name: "absolute/defaults are valid", edit: func(*AbsoluteTimeoutConfig) {}},
		{
			name: "absolute/every problem is named",
			edit: func(c *AbsoluteTimeoutConfig) { c.Severity, c.StateTTL, c.MaxSessions = "", -1, -5 },
			errors: []string{
				"detectors.absolute_timeout_exceeded.severity:",
				"detectors.absolute_timeout_exceeded.state_ttl: must be positive",
				"detectors.absolute_timeout_exceeded.max_sessions: must be positive (got -5)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultAbsoluteTimeoutConfig()
			tc.edit(&cfg)
			d, err := NewAbsoluteTimeout(cfg, DefaultPolicy)
			if len(tc.errors) == 0 {
				require.NoError(t, err)
				require.Equal(t, "absolute_timeout_exceeded", d.Name())
				return
			}
			require.Nil(t, d)
			for _, msg := range tc.errors {
				require.ErrorContains(t, err, msg)
			}
		})
	}
}

func TestAbsoluteTimeoutScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "absolute_timeout_fires",
			want: []polScenarioHit{
				{Detector: "absolute_timeout_exceeded", Key: "k1:SsAbs0luteF1resSess1n", Time: "2026-11-25T18:20:00.000Z", Evidence: []string{"atf-027"}},
			},
		},
	})
}
