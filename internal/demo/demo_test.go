package demo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

func generate(t *testing.T, seed int64, end time.Time) []sdk.Event {
	t.Helper()
	p, err := sdk.NewPseudonymizer(KeyID, Key)
	require.NoError(t, err)
	return Generate(p, Options{Users: 50, Seed: seed, End: end})
}

func TestGenerateIsValidOrderedAndRepeatable(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	events := generate(t, 7, end)
	require.Greater(t, len(events), 1000)

	types := map[schemas.Type]int{}
	for i := range events {
		ev := events[i]
		ev.ID = "demo-" + string(rune('a'+i%26))
		_, err := schemas.FromSDK(&ev, App, end)
		require.NoError(t, err, "event %d (%s)", i, events[i].Type)
		if i > 0 {
			require.False(t, events[i].Time.Before(events[i-1].Time), "events must be in time order")
		}
		require.False(t, events[i].Time.After(end.Add(time.Minute)), "event %d is after the timeline's end", i)
		types[events[i].Type]++
	}
	for _, ty := range schemas.Types {
		require.Positive(t, types[ty], "demo traffic has no %s event", ty)
	}
	require.Equal(t, events, generate(t, 7, end), "the same seed must give the same traffic")
	require.NotEqual(t, events, generate(t, 8, end))
}

func TestGenerateHasEveryAttack(t *testing.T) {
	t.Parallel()
	events := generate(t, 1, time.Now())
	var fixation, insecure, longLived, pii, retired, failedLogins int
	for _, e := range events {
		switch {
		case e.Type == schemas.SessionStarted && !e.PreviousSession.IsZero() && e.PreviousSession == e.Session:
			fixation++
		case e.Cookie != nil && e.Cookie.Secure != nil && !*e.Cookie.Secure:
			insecure++
		case e.Type == schemas.TokenIssued && e.Token.Kind == schemas.TokenAccess && e.Token.ExpiresAt.Sub(e.Token.IssuedAt) > 24*time.Hour:
			longLived++
		case e.Token != nil && contains(e.Token.Claims, "email"):
			pii++
		case e.Type == schemas.KeyRetired:
			retired++
		case e.Type == schemas.LoginFailed:
			failedLogins++
		}
	}
	require.Equal(t, attacksPerKind, fixation)
	require.Equal(t, attacksPerKind, insecure)
	require.Equal(t, attacksPerKind, longLived)
	require.Equal(t, attacksPerKind, pii)
	require.Equal(t, attacksPerKind, retired)
	require.GreaterOrEqual(t, failedLogins, attacksPerKind*(40+60), "brute force and credential stuffing")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
