package detect

import (
	"fmt"
	"slices"
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
			events: []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", 31*time.Second, trR3, trR1, engDevA)},
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
		"refresh_grace_s": int64(30),
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

func TestTokenReuseRefreshGrace(t *testing.T) {
	t.Parallel()
	retry := func(at time.Duration, device string) []*schemas.Event {
		return []*schemas.Event{trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", at, trR3, trR1, device)}
	}
	reuse := []engFinding{{Key: "refresh_reuse:" + trFam, Evidence: []string{"a", "b"}}}
	tenSeconds := func(c *TokenReuseConfig) {
		g := Duration(10 * time.Second)
		c.Apps = map[string]TokenReuseAppConfig{"shop": {RefreshGrace: &g}}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*TokenReuseConfig)
		app    string
		events []*schemas.Event
		want   []engFinding
	}{
		{name: "grace/same device retries after 5s", events: retry(5*time.Second, engDevA)},
		{name: "grace/same device retries after 15s", events: retry(15*time.Second, engDevA)},
		{name: "grace/same device at exactly 30s", events: retry(30*time.Second, engDevA)},
		{name: "grace/same device after 31s", events: retry(31*time.Second, engDevA), want: reuse},
		{name: "grace/another device after 5s", events: retry(5*time.Second, engDevB), want: reuse},
		{name: "grace/no device is never a retry", events: retry(5*time.Second, ""), want: reuse},
		{name: "grace/app override shorter", edit: tenSeconds, events: retry(15*time.Second, engDevA), want: reuse},
		{name: "grace/app override within", edit: tenSeconds, events: retry(9*time.Second, engDevA)},
		{name: "grace/other apps keep the default", edit: tenSeconds, app: "admin", events: retry(15*time.Second, engDevA)},
		{name: "grace/zero grace", edit: func(c *TokenReuseConfig) { c.RefreshGrace = 0 }, events: retry(time.Second, engDevA), want: reuse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			edit := func(*TokenReuseConfig) {}
			if tc.edit != nil {
				edit = tc.edit
			}
			if tc.app != "" {
				for _, e := range tc.events {
					e.App = tc.app
				}
			}
			alerts := engObserve(newTestTokenReuse(t, edit), tc.events...)
			require.Equal(t, tc.want, engFindings(alerts))
			for _, a := range alerts {
				require.Equal(t, schemas.SeverityCritical, a.Severity)
			}
		})
	}
}

func TestTokenReuseRefreshIsCriticalAtAnyConfiguredSeverity(t *testing.T) {
	t.Parallel()
	d := newTestTokenReuse(t, func(c *TokenReuseConfig) { c.Severity = schemas.SeverityLow })
	alerts := engObserve(d, trRefresh("a", 0, trR2, trR1, engDevA), trRefresh("b", time.Minute, trR3, trR1, engDevB))
	require.Len(t, alerts, 1)
	require.Equal(t, schemas.SeverityCritical, alerts[0].Severity)
}

func TestTokenReuseLogoutLastsTheTokenLifetime(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	issue := func(life time.Duration) *schemas.Event { return trIssue("i", 0, trA1, engDevA, life) }
	end := engEv("e", time.Hour, engType(schemas.SessionEnded), engFrom(engBerlin.on(engDevA)), func(e *schemas.Event) { e.Reason = "logout" })
	use := func(at time.Duration, session string, exp *time.Duration) *schemas.Event {
		e := trUse("u", at, trA1, engDevA)
		e.Session = session
		if exp != nil {
			t := schemas.At(engEv("x", *exp).Time.Time)
			e.Token.ExpiresAt = &t
		}
		return e
	}
	sess := "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X"
	exp24 := day
	after := []engFinding{{Key: "after_logout:" + trA1, Evidence: []string{"e", "u"}}}
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []engFinding
	}{
		{name: "lifetime/24h token used 23h after the end", events: []*schemas.Event{issue(day), end, use(time.Hour+23*time.Hour-time.Minute, sess, nil)}, want: after},
		{name: "lifetime/48h token used 30h after the end", events: []*schemas.Event{issue(2 * day), end, use(31*time.Hour, sess, nil)}, want: after},
		{name: "lifetime/48h token used without a session", events: []*schemas.Event{issue(2 * day), end, use(31*time.Hour, "", nil)}, want: after},
		{name: "lifetime/after the session's tokens expired", events: []*schemas.Event{issue(2 * day), end, use(2*day+time.Minute, sess, nil)}},
		{name: "lifetime/unknown lifetime: after_logout_window", events: []*schemas.Event{end, use(23*time.Hour, sess, nil)}, want: after},
		{name: "lifetime/unknown lifetime: after after_logout_window", events: []*schemas.Event{end, use(26*time.Hour, sess, nil)}},
		{name: "lifetime/the use says the token expired", events: []*schemas.Event{issue(2 * day), end, use(30*time.Hour, sess, &exp24)}},
		{name: "lifetime/capped at refresh_window", events: []*schemas.Event{issue(30 * day), end, use(15*day, sess, nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newTestTokenReuse(t)
			var alerts []schemas.Alert
			for _, e := range tc.events {
				// A sweep before every event: results do not depend on it.
				d.Expire(e.Time.Time)
				d.Observe(e, func(a schemas.Alert) { alerts = append(alerts, a) })
			}
			require.Equal(t, tc.want, engFindings(alerts))
		})
	}

	t.Run("lifetime/revoked token kept until its expiry", func(t *testing.T) {
		t.Parallel()
		d := newTestTokenReuse(t)
		revoke := engEv("r", time.Hour, engType(schemas.TokenRevoked), engToken(trA1, schemas.TokenAccess, "", ""), engFrom(engBerlin.on(engDevA)))
		alerts := engObserve(d, issue(3*day), revoke)
		d.Expire(engEv("x", 2*day).Time.Time)
		alerts = append(alerts, engObserve(d, use(2*day+time.Hour, "", nil))...)
		require.Equal(t, []engFinding{{Key: "after_logout:" + trA1, Evidence: []string{"r", "u"}}}, engFindings(alerts))
		require.Equal(t, "token_revoked", alerts[0].Details["reason"])
	})
}

func TestTokenReuseLogoutBounds(t *testing.T) {
	t.Parallel()
	end := func(subject string, i int) *schemas.Event {
		return engEv(fmt.Sprintf("e%d", i), time.Duration(i)*time.Second, engType(schemas.SessionEnded), engSubject(subject),
			engSession(fmt.Sprintf("k1:ses-%020d", i)), engFrom(engBerlin.on(engDevA)))
	}
	useOf := func(subject string, i int) *schemas.Event {
		e := trUse("u", time.Hour, trA1, engDevB)
		e.Subject, e.Session = subject, fmt.Sprintf("k1:ses-%020d", i)
		return e
	}
	const one, other = "k1:AbCdEfGhIjKlMnOpQrStUv", "k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L"

	t.Run("bounds/per subject", func(t *testing.T) {
		t.Parallel()
		d := newTestTokenReuse(t, func(c *TokenReuseConfig) { c.MaxLogoutsPerSubject = 3 })
		engObserve(d, end(other, 0))
		for i := 1; i <= 5; i++ {
			engObserve(d, end(one, i))
		}
		require.Equal(t, 4, d.StateKeys(), "three of one subject, one of the other")
		require.Empty(t, engObserve(d, useOf(one, 2)), "the subject's oldest were forgotten")
		require.Len(t, engObserve(d, useOf(one, 3)), 1)
		require.Len(t, engObserve(d, useOf(other, 0)), 1, "other subjects keep theirs")
	})
	t.Run("bounds/in all", func(t *testing.T) {
		t.Parallel()
		d := newTestTokenReuse(t, func(c *TokenReuseConfig) { c.MaxKeys = 4 })
		for i := range 4 {
			engObserve(d, end(fmt.Sprintf("k1:subject-%016d", i), i))
		}
		engObserve(d, end(one, 9))
		require.Equal(t, 4, d.StateKeys())
		require.Empty(t, engObserve(d, useOf("k1:subject-0000000000000000", 0)), "the oldest mark was forgotten")
		require.Len(t, engObserve(d, useOf("k1:subject-0000000000000001", 1)), 1)
		require.Len(t, engObserve(d, useOf(one, 9)), 1)
	})
}

func TestTokenReuseAppConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{name: "apps/unknown setting", yaml: "detectors: {token_reuse: {apps: {shop: {refresh_grase: 10s}}}}",
			want: "line 1: detectors.token_reuse.apps.shop.refresh_grase: unknown key (known: refresh_grace)"},
		{name: "apps/nothing set", yaml: "detectors: {token_reuse: {apps: {shop: {}}}}", want: "detectors.token_reuse.apps.shop: sets nothing"},
		{name: "apps/bad name", yaml: "detectors: {token_reuse: {apps: {'my shop': {refresh_grace: 10s}}}}", want: "detectors.token_reuse.apps.my shop: not an app name"},
		{name: "apps/negative", yaml: "detectors: {token_reuse: {apps: {shop: {refresh_grace: -1s}}}}", want: "detectors.token_reuse.apps.shop.refresh_grace: must be at least 0"},
		{name: "apps/default too long", yaml: "detectors: {token_reuse: {refresh_grace: 15d}}", want: "detectors.token_reuse.refresh_grace: must be at least 0 and shorter than refresh_window"},
		{name: "apps/per subject cap", yaml: "detectors: {token_reuse: {max_logouts_per_subject: 0}}", want: "detectors.token_reuse.max_logouts_per_subject: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig([]byte(tc.yaml))
			require.ErrorContains(t, err, tc.want)
		})
	}
	cfg, err := ParseConfig([]byte("detectors: {token_reuse: {refresh_grace: 20s, apps: {shop: {refresh_grace: 10s}}}}"))
	require.NoError(t, err)
	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	for _, d := range dets {
		if tr, ok := d.(*TokenReuse); ok {
			require.Equal(t, int64(20_000), tr.refreshGraceOf("admin"))
			require.Equal(t, int64(10_000), tr.refreshGraceOf("shop"))
		}
	}
}

// TestTokenReuseSnapshotKeepsLogouts: a session end and the lifetime of
// its token survive a snapshot, and the use a day later alerts after the
// restore as without it.
func TestTokenReuseSnapshotKeepsLogouts(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	before := []*schemas.Event{
		trIssue("i", 0, trA1, engDevA, 48*time.Hour),
		engEv("e", time.Hour, engType(schemas.SessionEnded), engFrom(engBerlin.on(engDevA))),
		engEv("r", time.Hour, engType(schemas.TokenRevoked), engToken(trR1, schemas.TokenRefresh, trFam, ""), engFrom(engBerlin.on(engDevA))),
		trIssue("j", 2*time.Hour, trA2, engDevB, 48*time.Hour),
	}
	after := []*schemas.Event{trUse("u", 30*time.Hour, trA1, engDevA)}
	after[0].Session = ""
	want := runEngine(t, cfg, append(slices.Clone(before), after...))
	require.True(t, slices.ContainsFunc(want, func(a schemas.Alert) bool { return a.Key == "after_logout:"+trA1 }), "alerts: %v", want)
	got := runSplit(t, cfg, append(before, after...), len(before))
	require.Equal(t, want, got)

	first := snapshotEngine(t, cfg)
	for _, e := range before {
		first.Process(e)
	}
	first.Flush()
	restored := restoredEngine(t, cfg, snapshotOf(t, first))
	var a, b *TokenReuse
	for i := range first.dets {
		if d, ok := first.dets[i].(*TokenReuse); ok {
			a, b = d, restored.dets[i].(*TokenReuse)
		}
	}
	require.NotNil(t, a)
	require.Equal(t, a.logouts.subjects, b.logouts.subjects)
	require.Equal(t, a.logouts.n, b.logouts.n)
	require.Equal(t, a.sessions.m, b.sessions.m)
	require.Equal(t, a.access.m, b.access.m)
}
