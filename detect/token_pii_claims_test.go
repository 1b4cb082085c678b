package detect

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestTokenPIIClaimsObserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		edit      func(*TokenPIIClaimsConfig)
		event     *schemas.Event
		wantFound []string // nil: no alert
	}{
		{
			name:      "pii/e-mail, name and phone number in an access token",
			event:     polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "sub", "email", "name", "phone_number")),
			wantFound: []string{"email", "name", "phone_number"},
		},
		{
			name:      "pii/every OIDC personal claim",
			event:     polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "given_name", "family_name", "birthdate", "address", "preferred_username")),
			wantFound: []string{"given_name", "family_name", "birthdate", "address", "preferred_username"},
		},
		{
			name:  "pii/only non-personal claims",
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "sub", "iat", "exp", "scope", "aud", "jti", "email_verified", "locale")),
		},
		{
			name:      "pii/namespaced and upper-case claims match",
			event:     polEv("t1", schemas.TokenUsed, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "https://shop.example/email", "urn:shop:Phone_Number", "sub")),
			wantFound: []string{"https://shop.example/email", "urn:shop:Phone_Number"},
		},
		{
			name:      "pii/a claim listed twice is reported once",
			event:     polEv("t1", schemas.TokenRefreshed, 0, polToken(polTokenA, schemas.TokenRefresh, "", 0, -1, "email", "email")),
			wantFound: []string{"email"},
		},
		{
			name:      "pii/ID tokens are judged by default",
			event:     polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenID, "", 0, -1, "sub", "email")),
			wantFound: []string{"email"},
		},
		{
			name:  "pii/ID tokens skipped when configured",
			edit:  func(c *TokenPIIClaimsConfig) { c.SkipIDTokens = true },
			event: polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenID, "", 0, -1, "sub", "email")),
		},
		{
			name:      "pii/a configured list replaces the defaults",
			edit:      func(c *TokenPIIClaimsConfig) { c.Claims = []string{"employee_number"} },
			event:     polEv("t1", schemas.TokenIssued, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "email", "employee_number")),
			wantFound: []string{"employee_number"},
		},
		{
			name:  "pii/revocation is not judged",
			event: polEv("t1", schemas.TokenRevoked, 0, polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "email")),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultTokenPIIClaimsConfig()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			d, err := NewTokenPIIClaims(cfg)
			require.NoError(t, err)
			got := polRun(t, d, tc.event)
			if tc.wantFound == nil {
				require.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			require.Equal(t, tc.wantFound, got[0].Details["pii_claims"])
			require.Equal(t, polTokenA, got[0].Key)
			require.Equal(t, []string{"t1"}, got[0].Evidence)
		})
	}
}

func TestTokenPIIClaimsAlert(t *testing.T) {
	t.Parallel()
	d, err := NewTokenPIIClaims(defaultTokenPIIClaimsConfig())
	require.NoError(t, err)
	got := polRun(t, d, polEv("t1", schemas.TokenIssued, 0,
		polToken(polTokenA, schemas.TokenAccess, "", 0, -1, "sub", "email", "name")))
	require.Equal(t, []schemas.Alert{{
		Detector: "token_pii_claims",
		Severity: schemas.SeverityMedium,
		Time:     schemas.At(polBase),
		App:      polApp,
		Subject:  polSubject,
		Session:  polSessA,
		Title:    "Personal data in token claims",
		Summary:  "The access token k1:Token… of app shop carries personal-data claims (email, name); tokens should carry pseudonymous identifiers only.",
		Details: map[string]any{
			"token":      polTokenA,
			"kind":       "access",
			"pii_claims": []string{"email", "name"},
		},
		Evidence: []string{"t1"},
		Key:      polTokenA,
	}}, got)
}

func TestTokenPIIClaimsConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		claims []string
		errors []string
	}{
		{
			name:   "pii/empty list",
			claims: []string{},
			errors: []string{"detectors.token_pii_claims.claims: must list at least one claim name"},
		},
		{
			name:   "pii/blank and padded names",
			claims: []string{"email", "", " name", "https://x/"},
			errors: []string{
				`detectors.token_pii_claims.claims[1]: must be a claim name: not blank, no spaces, no trailing / or : (got "")`,
				`detectors.token_pii_claims.claims[2]: must be a claim name: not blank, no spaces, no trailing / or : (got " name")`,
				`detectors.token_pii_claims.claims[3]: must be a claim name: not blank, no spaces, no trailing / or : (got "https://x/")`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultTokenPIIClaimsConfig()
			cfg.Claims = tc.claims
			d, err := NewTokenPIIClaims(cfg)
			require.Nil(t, d)
			for _, msg := range tc.errors {
				require.ErrorContains(t, err, msg)
			}
		})
	}
}

func TestTokenPIIClaimsScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "token_pii_claims_fires",
			want: []polScenarioHit{
				{Detector: "token_pii_claims", Key: "k1:TkP11ClaimsAccessAAA", Time: "2026-11-25T10:00:00.040Z", Evidence: []string{"tpf-003"}},
			},
		},
	})
}
