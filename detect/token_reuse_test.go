package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// Token pseudonyms of the token_reuse tests.
const (
	trFam = "k1:fam-Fa1Mi2Ly3To4Ke5N6x"
	trR1  = "k1:tok-Rf1Aa2Bb3Cc4Dd5Ee"
	trR2  = "k1:tok-Rf2Ff3Gg4Hh5Ii6Jj"
	trR3  = "k1:tok-Rf3Kk4Ll5Mm6Nn7Oo"
	trA1  = "k1:tok-Ac1Pp2Qq3Rr4Ss5Tt"
	trA2  = "k1:tok-Ac2Uu3Vv4Ww5Xx6Yy"
)

func newTestTokenReuse(t *testing.T, edit ...func(*TokenReuseConfig)) *TokenReuse {
	t.Helper()
	cfg := defaultTokenReuseConfig()
	for _, f := range edit {
		f(&cfg)
	}
	d, err := NewTokenReuse(cfg)
	require.NoError(t, err)
	return d
}

// trRefresh is token.refreshed rotating parent into child on device.
func trRefresh(id string, at time.Duration, child, parent, device string) *schemas.Event {
	return engEv(id, at, engType(schemas.TokenRefreshed), engToken(child, schemas.TokenRefresh, trFam, parent), engFrom(engBerlin.on(device)))
}

// trUse is token.used of an access token on device.
func trUse(id string, at time.Duration, token, device string) *schemas.Event {
	return engEv(id, at, engType(schemas.TokenUsed), engToken(token, schemas.TokenAccess, "", ""), engFrom(engBerlin.on(device)))
}

// trIssue is token.issued of an access token on device, valid for life.
func trIssue(id string, at time.Duration, token, device string, life time.Duration) *schemas.Event {
	e := engEv(id, at, engType(schemas.TokenIssued), engToken(token, schemas.TokenAccess, "", ""), engFrom(engBerlin.on(device)))
	exp := schemas.At(e.Time.Add(life))
	e.Token.IssuedAt, e.Token.ExpiresAt = &e.Time, &exp
	return e
}

func TestTokenReuseRefresh(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []engFinding
	}{
		{
			name:   "refresh/rotated parent presented again from another device",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", 15*time.Minute, trR3, trR1, engDevC)},
			want:   []engFinding{{Key: "refresh_reuse:" + trFam, Evidence: []string{"a", "b"}}},
		},
		{
			name:   "refresh/same device retrying within the grace window is a race",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", 2*time.Second, trR3, trR1, engDevA)},
		},
		{
			name:   "refresh/same device after the grace window is reuse",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", 6*time.Second, trR3, trR1, engDevA)},
			want:   []engFinding{{Key: "refresh_reuse:" + trFam, Evidence: []string{"a", "b"}}},
		},
		{
			name:   "refresh/another device within the grace window is reuse",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", time.Second, trR3, trR1, engDevB)},
			want:   []engFinding{{Key: "refresh_reuse:" + trFam, Evidence: []string{"a", "b"}}},
		},
		{
			name:   "refresh/the same rotation delivered twice",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("a2", time.Minute, trR2, trR1, engDevC)},
		},
		{
			name:   "refresh/a chain of rotations",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", time.Hour, trR3, trR2, engDevA)},
		},
		{
			name:   "refresh/after refresh_window the parent is forgotten",
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", 15*24*time.Hour, trR3, trR1, engDevC)},
		},
		{
			name: "refresh/without a family the parent is the key",
			events: []*schemas.Event{
				engEv("a", 0, engType(schemas.TokenRefreshed), engToken(trR2, schemas.TokenRefresh, "", trR1), engFrom(engBerlin.on(engDevA))),
				engEv("b", time.Minute, engType(schemas.TokenRefreshed), engToken(trR3, schemas.TokenRefresh, "", trR1), engFrom(engBerlin.on(engDevC))),
			},
			want: []engFinding{{Key: "refresh_reuse:" + trR1, Evidence: []string{"a", "b"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, engFindings(engObserve(newTestTokenReuse(t), tc.events...)))
		})
	}
}

func TestTokenReuseConcurrent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []engFinding
	}{
		{
			name:   "concurrent/second device within the lifetime",
			events: []*schemas.Event{trIssue("a", 0, trA1, engDevA, time.Hour), trUse("b", time.Minute, trA1, engDevA), trUse("c", 12*time.Minute, trA1, engDevB)},
			want:   []engFinding{{Key: "concurrent_use:" + trA1, Evidence: []string{"a", "c"}}},
		},
		{
			name:   "concurrent/first sighting is a use",
			events: []*schemas.Event{trUse("a", 0, trA1, engDevA), trUse("b", time.Minute, trA1, engDevB)},
			want:   []engFinding{{Key: "concurrent_use:" + trA1, Evidence: []string{"a", "b"}}},
		},
		{
			name: "concurrent/two devices, each with its own token",
			events: []*schemas.Event{
				trIssue("a", 0, trA1, engDevA, time.Hour), trIssue("b", time.Minute, trA2, engDevB, time.Hour),
				trUse("c", 2*time.Minute, trA1, engDevA), trUse("d", 3*time.Minute, trA2, engDevB),
			},
		},
		{
			name:   "concurrent/after the token expired",
			events: []*schemas.Event{trIssue("a", 0, trA1, engDevA, 5*time.Minute), trUse("b", 6*time.Minute, trA1, engDevB)},
		},
		{
			name:   "concurrent/unknown lifetime defaults to access_lifetime",
			events: []*schemas.Event{trUse("a", 0, trA1, engDevA), trUse("b", 61*time.Minute, trA1, engDevB)},
		},
		{
			name:   "concurrent/a use without a device says nothing",
			events: []*schemas.Event{trUse("a", 0, trA1, engDevA), trUse("b", time.Minute, trA1, "")},
		},
		{
			name: "concurrent/API keys are shared by design",
			events: []*schemas.Event{
				engEv("a", 0, engType(schemas.TokenUsed), engToken(trA1, schemas.TokenAPIKey, "", ""), engFrom(engBerlin.on(engDevA))),
				engEv("b", time.Minute, engType(schemas.TokenUsed), engToken(trA1, schemas.TokenAPIKey, "", ""), engFrom(engBerlin.on(engDevB))),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, engFindings(engObserve(newTestTokenReuse(t), tc.events...)))
		})
	}
}

func TestTokenReuseAfterLogout(t *testing.T) {
	t.Parallel()
	revoke := func(id string, at time.Duration, token, device string) *schemas.Event {
		return engEv(id, at, engType(schemas.TokenRevoked), engToken(token, schemas.TokenRefresh, trFam, ""), engFrom(engBerlin.on(device)))
	}
	end := func(id string, at time.Duration) *schemas.Event {
		return engEv(id, at, engType(schemas.SessionEnded), engFrom(engBerlin.on(engDevA)), func(e *schemas.Event) { e.Reason = "logout" })
	}
	for _, tc := range []struct {
		name    string
		events  []*schemas.Event
		want    []engFinding
		reasons []string
	}{
		{
			name:    "logout/token used after its revocation",
			events:  []*schemas.Event{revoke("a", 0, trA1, engDevA), engEv("b", time.Minute, engType(schemas.TokenUsed), engSession(""), engToken(trA1, schemas.TokenAccess, "", ""), engFrom(engBerlin.on(engDevA)))},
			want:    []engFinding{{Key: "after_logout:" + trA1, Evidence: []string{"a", "b"}}},
			reasons: []string{"token_revoked"},
		},
		{
			name:    "logout/token used with its session after the session ended",
			events:  []*schemas.Event{end("a", 0), trUse("b", 8*time.Minute, trA1, engDevA)},
			want:    []engFinding{{Key: "after_logout:" + trA1, Evidence: []string{"a", "b"}}},
			reasons: []string{"session_ended"},
		},
		{
			name:    "logout/revoked refresh token presented for a refresh",
			events:  []*schemas.Event{revoke("a", 0, trR1, engDevA), trRefresh("b", time.Hour, trR2, trR1, engDevC)},
			want:    []engFinding{{Key: "after_logout:" + trR1, Evidence: []string{"a", "b"}}},
			reasons: []string{"token_revoked"},
		},
		{
			name:   "logout/a request in flight from the same device",
			events: []*schemas.Event{end("a", 0), trUse("b", time.Second, trA1, engDevA)},
		},
		{
			name:    "logout/another device within the grace window",
			events:  []*schemas.Event{end("a", 0), trUse("b", time.Second, trA1, engDevB)},
			want:    []engFinding{{Key: "after_logout:" + trA1, Evidence: []string{"a", "b"}}},
			reasons: []string{"session_ended"},
		},
		{
			name: "logout/the session id started again",
			events: []*schemas.Event{
				end("a", 0),
				engEv("b", time.Minute, engType(schemas.SessionStarted), engFrom(engBerlin.on(engDevA))),
				trUse("c", 2*time.Minute, trA1, engDevA),
			},
		},
		{
			name:   "logout/use before the logout",
			events: []*schemas.Event{trUse("b", 0, trA1, engDevA), end("a", time.Minute)},
		},
		{
			name:   "logout/after after_logout_window",
			events: []*schemas.Event{end("a", 0), trUse("b", 25*time.Hour, trA1, engDevB)},
		},
		{
			name:   "logout/another session of the subject",
			events: []*schemas.Event{end("a", 0), engEv("b", time.Minute, engType(schemas.TokenUsed), engSession("k1:ses-Ph1On2Es3Es4Si5On6"), engToken(trA2, schemas.TokenAccess, "", ""), engFrom(engBerlin.on(engDevA)))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts := engObserve(newTestTokenReuse(t), tc.events...)
			require.Equal(t, tc.want, engFindings(alerts))
			var reasons []string
			for _, a := range alerts {
				reasons = append(reasons, a.Details["reason"].(string))
			}
			require.Equal(t, tc.reasons, reasons)
		})
	}
}

func TestTokenReuseAlert(t *testing.T) {
	t.Parallel()
	alerts := engObserve(newTestTokenReuse(t), trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", 15*time.Minute, trR3, trR1, engDevC))
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "token_reuse", a.Detector)
	require.Equal(t, schemas.SeverityCritical, a.Severity, "one above the configured high")
	require.Equal(t, "Refresh token reused after rotation", a.Title)
	require.Equal(t, "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X", a.Session)
	require.Equal(t, "Refresh token k1:tok-R… was rotated twice, 15m apart, from a different device: a sign it was stolen.", a.Summary)
	require.Equal(t, map[string]any{
		"variant":         "refresh_reuse",
		"parent":          trR1,
		"child":           trR3,
		"token_family":    trFam,
		"device":          engDevC,
		"same_device":     false,
		"elapsed_s":       int64(900),
		"race_grace_s":    int64(5),
		"first_refreshed": "2026-11-20T09:00:00.000Z",
	}, a.Details)
}

func TestTokenReuseVariantsCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	d := newTestTokenReuse(t, func(c *TokenReuseConfig) { c.Variants = []string{variantAfterLogout} })
	require.Empty(t, engObserve(d,
		trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", time.Minute, trR3, trR1, engDevC),
		trUse("c", 2*time.Minute, trA1, engDevA), trUse("d", 3*time.Minute, trA1, engDevB),
	))
	require.Zero(t, d.StateKeys())
}

func TestTokenReuseState(t *testing.T) {
	t.Parallel()
	d := newTestTokenReuse(t)
	engObserve(d,
		trRefresh("a", 0, trR2, trR1, engDevA),
		trIssue("b", 0, trA1, engDevA, time.Hour),
		engEv("c", time.Minute, engType(schemas.SessionEnded), engFrom(engBerlin.on(engDevA))),
		engEv("d", time.Minute, engType(schemas.TokenRevoked), engToken(trR2, schemas.TokenRefresh, trFam, "")),
	)
	require.Equal(t, 4, d.StateKeys())
	d.Expire(engEv("x", 2*time.Hour).Time.Time)
	require.Equal(t, 3, d.StateKeys(), "the access token expired")
	d.Expire(engEv("x", 26*time.Hour).Time.Time)
	require.Equal(t, 1, d.StateKeys(), "revocations and ends are kept for after_logout_window")
	d.Expire(engEv("x", 15*24*time.Hour).Time.Time)
	require.Zero(t, d.StateKeys())

	engObserve(d, trRefresh("a", 16*24*time.Hour, trR2, trR1, engDevA), trUse("b", 16*24*time.Hour, trA1, engDevA))
	engObserve(d, trUse("c", 16*24*time.Hour, trA2, engDevA), engEv("d", 16*24*time.Hour, engSubject("k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L"), engType(schemas.TokenUsed), engToken(trR3, "", "", ""), engFrom(engBerlin.on(engDevB))))
	require.Equal(t, 4, d.StateKeys())
	d.Forget("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.Equal(t, 1, d.StateKeys(), "only the other subject's token is left")
}

func TestTokenReuseConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*TokenReuseConfig)
		want string
	}{
		{name: "config/variant", edit: func(c *TokenReuseConfig) { c.Variants = []string{"replay"} }, want: `detectors.token_reuse.variants: "replay" is not one of refresh_reuse, concurrent_use, after_logout`},
		{name: "config/grace", edit: func(c *TokenReuseConfig) { c.RaceGrace = Duration(-time.Second) }, want: "detectors.token_reuse.race_grace: must not be negative"},
		{name: "config/refresh window", edit: func(c *TokenReuseConfig) { c.RefreshWindow = 0 }, want: "detectors.token_reuse.refresh_window: must be positive"},
		{name: "config/access lifetime", edit: func(c *TokenReuseConfig) { c.AccessLifetime = 0 }, want: "detectors.token_reuse.access_lifetime: must be positive"},
		{name: "config/after logout window", edit: func(c *TokenReuseConfig) { c.AfterLogoutWindow = 0 }, want: "detectors.token_reuse.after_logout_window: must be positive"},
		{name: "config/max keys", edit: func(c *TokenReuseConfig) { c.MaxKeys = -1 }, want: "detectors.token_reuse.max_keys: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultTokenReuseConfig()
			tc.edit(&cfg)
			_, err := NewTokenReuse(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
