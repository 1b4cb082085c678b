package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// polRetire is a key.retired event for kid, published by app.
func polRetire(id, app, kid string, at time.Duration) *schemas.Event {
	return polEv(id, schemas.KeyRetired, at, polSession(""), polSubjectOf("k1:KeyAdminAAAAAAAAAAAAA"), func(e *schemas.Event) {
		e.App, e.Key = app, &schemas.Key{KID: kid}
	})
}

func polSigned(id string, typ schemas.Type, at time.Duration, token, kid string) *schemas.Event {
	return polEv(id, typ, at, polToken(token, schemas.TokenAccess, kid, 0, -1))
}

func TestRetiredSigningKeyObserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		perApp bool
		events []*schemas.Event
		want   []polHit
	}{
		{
			name: "retired/token used after its key was retired",
			events: []*schemas.Event{
				polSigned("u0", schemas.TokenUsed, 0, polTokenA, "key-2026-10"),
				polRetire("r1", polApp, "key-2026-10", time.Minute),
				polSigned("u1", schemas.TokenUsed, 5*time.Minute, polTokenA, "key-2026-10"),
			},
			want: []polHit{{Key: "key-2026-10|" + polTokenA, At: 5 * time.Minute, Evidence: []string{"r1", "u1"}}},
		},
		{
			name: "retired/token issued and refreshed with a retired key",
			events: []*schemas.Event{
				polRetire("r1", polApp, "key-2026-10", 0),
				polSigned("i1", schemas.TokenIssued, time.Hour, polTokenA, "key-2026-10"),
				polSigned("f1", schemas.TokenRefreshed, 2*time.Hour, polTokenB, "key-2026-10"),
			},
			want: []polHit{
				{Key: "key-2026-10|" + polTokenA, At: time.Hour, Evidence: []string{"r1", "i1"}},
				{Key: "key-2026-10|" + polTokenB, At: 2 * time.Hour, Evidence: []string{"r1", "f1"}},
			},
		},
		{
			name: "retired/used before the retirement",
			events: []*schemas.Event{
				polSigned("u1", schemas.TokenUsed, 0, polTokenA, "key-2026-10"),
				polRetire("r1", polApp, "key-2026-10", time.Minute),
			},
		},
		{
			name: "retired/used in the same millisecond as the retirement",
			events: []*schemas.Event{
				polRetire("r1", polApp, "key-2026-10", time.Minute),
				polSigned("u1", schemas.TokenUsed, time.Minute, polTokenA, "key-2026-10"),
			},
		},
		{
			name: "retired/kid never retired",
			events: []*schemas.Event{
				polRetire("r1", polApp, "key-2026-10", 0),
				polSigned("u1", schemas.TokenUsed, time.Hour, polTokenA, "key-2026-11"),
			},
		},
		{
			name: "retired/revocation is not use",
			events: []*schemas.Event{
				polRetire("r1", polApp, "key-2026-10", 0),
				polSigned("v1", schemas.TokenRevoked, time.Hour, polTokenA, "key-2026-10"),
			},
		},
		{
			name: "retired/a second retirement keeps the first",
			events: []*schemas.Event{
				polRetire("r1", polApp, "key-2026-10", 0),
				polRetire("r2", polApp, "key-2026-10", 2*time.Hour),
				polSigned("u1", schemas.TokenUsed, time.Hour, polTokenA, "key-2026-10"),
			},
			want: []polHit{{Key: "key-2026-10|" + polTokenA, At: time.Hour, Evidence: []string{"r1", "u1"}}},
		},
		{
			name: "retired/kids are global by default",
			events: []*schemas.Event{
				polRetire("r1", "idp", "key-2026-10", 0),
				polSigned("u1", schemas.TokenUsed, time.Hour, polTokenA, "key-2026-10"),
			},
			want: []polHit{{Key: "key-2026-10|" + polTokenA, At: time.Hour, Evidence: []string{"r1", "u1"}}},
		},
		{
			name:   "retired/per_app scopes kids to the retiring app",
			perApp: true,
			events: []*schemas.Event{
				polRetire("r1", "idp", "key-2026-10", 0),
				polSigned("u1", schemas.TokenUsed, time.Hour, polTokenA, "key-2026-10"),
				polRetire("r2", polApp, "key-2026-10", 2*time.Hour),
				polSigned("u2", schemas.TokenUsed, 3*time.Hour, polTokenA, "key-2026-10"),
			},
			want: []polHit{{Key: "key-2026-10|" + polTokenA, At: 3 * time.Hour, Evidence: []string{"r2", "u2"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultRetiredSigningKeyConfig()
			cfg.PerApp = tc.perApp
			d, err := NewRetiredSigningKey(cfg)
			require.NoError(t, err)
			want := tc.want
			if want == nil {
				want = []polHit{}
			}
			require.Equal(t, want, polHits(polRun(t, d, tc.events...)))
		})
	}
}

func TestRetiredSigningKeyAlert(t *testing.T) {
	t.Parallel()
	d, err := NewRetiredSigningKey(defaultRetiredSigningKeyConfig())
	require.NoError(t, err)
	got := polRun(t, d,
		polRetire("r1", polApp, "key-2026-10", time.Minute),
		polSigned("u1", schemas.TokenUsed, 5*time.Minute, polTokenA, "key-2026-10"))
	require.Equal(t, []schemas.Alert{{
		Detector: "retired_signing_key",
		Severity: schemas.SeverityHigh,
		Time:     schemas.At(polBase.Add(5 * time.Minute)),
		App:      polApp,
		Subject:  polSubject,
		Session:  polSessA,
		Title:    "Token signed with a retired key",
		Summary:  `Token k1:Token… was used with key "key-2026-10" 4m after that key was retired.`,
		Details: map[string]any{
			"kid":                "key-2026-10",
			"token":              polTokenA,
			"usage":              "used",
			"retired_at":         "2026-11-25T10:01:00.000Z",
			"since_retirement_s": int64(240),
		},
		Evidence: []string{"r1", "u1"},
		Key:      "key-2026-10|" + polTokenA,
	}}, got)
}

func TestRetiredSigningKeyState(t *testing.T) {
	t.Parallel()
	t.Run("retired/expire forgets retirements older than state_ttl", func(t *testing.T) {
		t.Parallel()
		d, err := NewRetiredSigningKey(defaultRetiredSigningKeyConfig())
		require.NoError(t, err)
		polRun(t, d, polRetire("r1", polApp, "old", 0), polRetire("r2", polApp, "new", 20*24*time.Hour))
		d.Expire(polBase.Add(31 * 24 * time.Hour))
		require.Equal(t, 1, d.retired.size())
		require.Empty(t, polRun(t, d, polSigned("u1", schemas.TokenUsed, 31*24*time.Hour, polTokenA, "old")))
		require.Len(t, polRun(t, d, polSigned("u2", schemas.TokenUsed, 31*24*time.Hour, polTokenA, "new")), 1)
	})
	t.Run("retired/max_keys forgets the earliest retired", func(t *testing.T) {
		t.Parallel()
		cfg := defaultRetiredSigningKeyConfig()
		cfg.MaxKeys = 3
		d, err := NewRetiredSigningKey(cfg)
		require.NoError(t, err)
		for i := range 4 {
			polRun(t, d, polRetire(fmt.Sprintf("r%d", i), polApp, fmt.Sprintf("kid-%d", i), time.Duration(i)*time.Minute))
		}
		require.Equal(t, 3, d.retired.size())
		_, ok := d.retired.get("kid-0")
		require.False(t, ok)
	})
	t.Run("retired/forget keeps retirements", func(t *testing.T) {
		t.Parallel()
		d, err := NewRetiredSigningKey(defaultRetiredSigningKeyConfig())
		require.NoError(t, err)
		polRun(t, d, polRetire("r1", polApp, "kid", 0))
		d.Forget("k1:KeyAdminAAAAAAAAAAAAA")
		require.Equal(t, 1, d.retired.size())
	})
}

func TestRetiredSigningKeyConfig(t *testing.T) {
	t.Parallel()
	cfg := defaultRetiredSigningKeyConfig()
	cfg.StateTTL, cfg.MaxKeys = 0, 0
	d, err := NewRetiredSigningKey(cfg)
	require.Nil(t, d)
	require.ErrorContains(t, err, "detectors.retired_signing_key.state_ttl: must be positive")
	require.ErrorContains(t, err, "detectors.retired_signing_key.max_keys: must be positive")
}

func TestRetiredSigningKeyScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "retired_signing_key_fires",
			want: []polScenarioHit{
				{Detector: "retired_signing_key", Key: "key-2026-10|k1:TkRet1redKeyAccessAA", Time: "2026-11-25T10:05:00.000Z", Evidence: []string{"rkf-003", "rkf-004"}},
			},
		},
		{name: "retired_signing_key_before_retirement"},
	})
}
