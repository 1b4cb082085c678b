package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestLongLivedTokenObserve(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		maxLife time.Duration // 0: the default
		event   *schemas.Event
		want    []polHit
	}{
		{
			name:  "long_lived/access token valid for 30 days",
			event: polEv("t1", schemas.TokenIssued, time.Minute, polToken(polTokenA, schemas.TokenAccess, "k", time.Minute, 30*day)),
			want:  []polHit{{Key: polTokenA, At: time.Minute, Evidence: []string{"t1"}}},
		},
		{
			name:  "long_lived/ID token valid for 2 hours",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenID, "", 0, 2*time.Hour)),
			want:  []polHit{{Key: polTokenA, At: 0, Evidence: []string{"t1"}}},
		},
		{
			name:  "long_lived/access token from a refresh",
			event: polEv("t1", schemas.TokenRefreshed, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, 8*time.Hour)),
			want:  []polHit{{Key: polTokenA, At: 0, Evidence: []string{"t1"}}},
		},
		{
			name:  "long_lived/access token used, lifetime reported",
			event: polEv("t1", schemas.TokenUsed, 3*time.Hour, polToken(polTokenA, schemas.TokenAccess, "", 0, 4*time.Hour)),
			want:  []polHit{{Key: polTokenA, At: 3 * time.Hour, Evidence: []string{"t1"}}},
		},
		{
			name:  "long_lived/access token of exactly the maximum",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, time.Hour)),
		},
		{
			name:  "long_lived/refresh token valid for 14 days",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenRefresh, "", 0, 14*day)),
		},
		{
			name:  "long_lived/API key valid for a year",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAPIKey, "", 0, 365*day)),
		},
		{
			name:  "long_lived/token of unknown kind",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, "", "", 0, 30*day)),
		},
		{
			name:  "long_lived/lifetime not reported",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1)),
		},
		{
			name:  "long_lived/revocation is not judged",
			event: polEv("t1", schemas.TokenRevoked, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, 30*day)),
		},
		{
			name:    "long_lived/configured maximum of a day",
			maxLife: day,
			event:   polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, 12*time.Hour)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultLongLivedTokenConfig()
			if tc.maxLife > 0 {
				cfg.MaxLifetime = Duration(tc.maxLife)
			}
			d, err := NewLongLivedToken(cfg)
			require.NoError(t, err)
			want := tc.want
			if want == nil {
				want = []polHit{}
			}
			require.Equal(t, want, polHits(polRun(t, d, tc.event)))
		})
	}
}

func TestLongLivedTokenAlert(t *testing.T) {
	t.Parallel()
	d, err := NewLongLivedToken(defaultLongLivedTokenConfig())
	require.NoError(t, err)
	got := polRun(t, d, polEv("t1", schemas.TokenIssued, time.Minute,
		polToken(polTokenA, schemas.TokenAccess, "key-1", time.Minute, 30*24*time.Hour, "sub", "iat", "exp")))
	require.Equal(t, []schemas.Alert{{
		Detector: "long_lived_token",
		Severity: schemas.SeverityMedium,
		Time:     schemas.At(polBase.Add(time.Minute)),
		App:      polApp,
		Subject:  polSubject,
		Session:  polSessA,
		Title:    "Long-lived access token",
		Summary:  "The access token k1:Token… of app shop is valid for 30d; the maximum is 1h.",
		Details: map[string]any{
			"token":          polTokenA,
			"kind":           "access",
			"lifetime_s":     int64(30 * 24 * 3600),
			"max_lifetime_s": int64(3600),
			"issued_at":      "2026-11-25T10:01:00.000Z",
			"expires_at":     "2026-12-25T10:01:00.000Z",
		},
		Evidence: []string{"t1"},
		Key:      polTokenA,
	}}, got)
}

func TestLongLivedTokenConfig(t *testing.T) {
	t.Parallel()
	cfg := defaultLongLivedTokenConfig()
	cfg.MaxLifetime, cfg.Severity = 0, "none"
	d, err := NewLongLivedToken(cfg)
	require.Nil(t, d)
	require.ErrorContains(t, err, "detectors.long_lived_token.max_lifetime: must be positive (got 0s)")
	require.ErrorContains(t, err, "detectors.long_lived_token.severity:")
}

func TestLongLivedTokenScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "long_lived_token_fires",
			want: []polScenarioHit{
				{Detector: "long_lived_token", Key: "k1:TkL0ngL1vedAccess30dA", Time: "2026-11-25T10:00:00.040Z", Evidence: []string{"ltf-003"}},
			},
		},
		{name: "long_lived_token_refresh"},
	})
}
