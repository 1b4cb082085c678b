package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// polCookie sets a cookie block; "" leaves secure or http_only unreported.
func polCookie(name, secure, httpOnly, sameSite string) func(*schemas.Event) {
	flag := func(s string) *bool {
		if s == "" {
			return nil
		}
		v := s == "true"
		return &v
	}
	return func(e *schemas.Event) {
		e.Cookie = &schemas.Cookie{Name: name, Secure: flag(secure), HTTPOnly: flag(httpOnly), SameSite: sameSite}
	}
}

func TestInsecureCookieObserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		allowNone   bool
		cookie      func(*schemas.Event)
		wantKey     string
		wantFlaws   []string
		wantSummary string
	}{
		{
			name:        "cookie/neither Secure nor HttpOnly, SameSite=None",
			cookie:      polCookie("sid", "false", "false", "none"),
			wantKey:     "shop|sid|secure,http_only,same_site_none",
			wantFlaws:   []string{"secure", "http_only", "same_site_none"},
			wantSummary: `The session cookie "sid" of app shop is set without Secure and HttpOnly and with SameSite=None.`,
		},
		{
			name:        "cookie/not Secure",
			cookie:      polCookie("sid", "false", "true", "lax"),
			wantKey:     "shop|sid|secure",
			wantFlaws:   []string{"secure"},
			wantSummary: `The session cookie "sid" of app shop is set without Secure.`,
		},
		{
			name:        "cookie/not HttpOnly, unnamed",
			cookie:      polCookie("", "true", "false", "strict"),
			wantKey:     "shop||http_only",
			wantFlaws:   []string{"http_only"},
			wantSummary: "The session cookie of app shop is set without HttpOnly.",
		},
		{
			name:        "cookie/SameSite=None",
			cookie:      polCookie("__Host-sid", "true", "true", "none"),
			wantKey:     "shop|__Host-sid|same_site_none",
			wantFlaws:   []string{"same_site_none"},
			wantSummary: `The session cookie "__Host-sid" of app shop is set with SameSite=None.`,
		},
		{
			name:      "cookie/SameSite=None allowed by configuration",
			allowNone: true,
			cookie:    polCookie("__Host-sid", "true", "true", "none"),
		},
		{
			name:        "cookie/allowing SameSite=None still requires Secure",
			allowNone:   true,
			cookie:      polCookie("sid", "false", "true", "none"),
			wantKey:     "shop|sid|secure",
			wantFlaws:   []string{"secure"},
			wantSummary: `The session cookie "sid" of app shop is set without Secure.`,
		},
		{
			name:   "cookie/secure cookie",
			cookie: polCookie("__Host-sid", "true", "true", "lax"),
		},
		{
			name:   "cookie/unreported attributes are not held against it",
			cookie: polCookie("sid", "", "", ""),
		},
		{
			name:   "cookie/no cookie block",
			cookie: func(*schemas.Event) {},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultInsecureCookieConfig()
			cfg.AllowSameSiteNone = tc.allowNone
			d, err := NewInsecureCookie(cfg)
			require.NoError(t, err)
			got := polRun(t, d, polEv("s1", schemas.SessionStarted, time.Minute, polPrevious(polAnon), tc.cookie))
			if tc.wantKey == "" {
				require.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			require.Equal(t, tc.wantKey, got[0].Key)
			require.Equal(t, tc.wantFlaws, got[0].Details["flaws"])
			require.Equal(t, tc.wantSummary, got[0].Summary)
			require.Equal(t, []string{"s1"}, got[0].Evidence)
			require.Equal(t, schemas.SeverityMedium, got[0].Severity)
			require.Equal(t, polSessA, got[0].Session)
		})
	}
}

func TestInsecureCookieConfig(t *testing.T) {
	t.Parallel()
	cfg := defaultInsecureCookieConfig()
	cfg.DedupWindow = -1
	d, err := NewInsecureCookie(cfg)
	require.Nil(t, d)
	require.ErrorContains(t, err, "detectors.insecure_cookie.dedup_window: must not be negative")
}

func TestInsecureCookieScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "insecure_cookie_fires",
			want: []polScenarioHit{
				{Detector: "insecure_cookie", Key: "shop|sid|secure,http_only,same_site_none", Time: "2026-11-25T10:00:00.020Z", Evidence: []string{"icf-002"}},
			},
		},
	})
}
