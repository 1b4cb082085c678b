package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const tokenPIIClaimsName = "token_pii_claims"

// defaultPIIClaims are the OpenID Connect standard claims that carry
// personal data, plus the directory claims that usually hold an e-mail
// address or a login name. Booleans (email_verified) and settings (locale,
// zoneinfo) are left out.
var defaultPIIClaims = []string{
	"name", "given_name", "family_name", "middle_name", "nickname",
	"preferred_username", "profile", "picture", "website",
	"email", "phone_number", "address", "birthdate", "gender",
	"upn", "unique_name",
}

// TokenPIIClaimsConfig configures the token_pii_claims detector.
type TokenPIIClaimsConfig struct {
	Common `yaml:",inline"`
	// Claims lists the claim names that carry personal data. Setting it
	// replaces the default list (the OIDC standard personal claims, upn and
	// unique_name). Names match case-insensitively, and a namespaced claim
	// matches by its last segment ("https://shop.example/email" is email).
	Claims []string `yaml:"claims"`
	// SkipIDTokens ignores ID tokens, whose purpose is to tell the client
	// who the user is (default false).
	SkipIDTokens bool `yaml:"skip_id_tokens"`
}

func defaultTokenPIIClaimsConfig() TokenPIIClaimsConfig {
	return TokenPIIClaimsConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityMedium,
			DedupWindow: Duration(24 * time.Hour),
		},
		Claims: slices.Clone(defaultPIIClaims),
	}
}

// TokenPIIClaims flags a token carrying personal-data claims: tokens travel
// through browsers, proxies and logs, so GDPR's data minimization asks them
// to carry pseudonymous identifiers only. It judges the claim names of
// token.issued, token.refreshed and token.used. The dedup key is the token
// id. It keeps no state.
type TokenPIIClaims struct {
	cfg    TokenPIIClaimsConfig
	claims map[string]struct{} // normalized names
}

var _ Detector = (*TokenPIIClaims)(nil)

// NewTokenPIIClaims returns the token_pii_claims detector, or an error
// naming every invalid setting.
func NewTokenPIIClaims(cfg TokenPIIClaimsConfig) (*TokenPIIClaims, error) {
	var errs []error
	if len(cfg.Claims) == 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.claims: must list at least one claim name (to turn the detector off, set enabled: false)", tokenPIIClaimsName))
	}
	claims := make(map[string]struct{}, len(cfg.Claims))
	for i, c := range cfg.Claims {
		n := claimBase(c)
		if n == "" || strings.TrimSpace(c) != c {
			errs = append(errs, fmt.Errorf("detectors.%s.claims[%d]: must be a claim name: not blank, no spaces, no trailing / or : (got %q)", tokenPIIClaimsName, i, c))
			continue
		}
		claims[n] = struct{}{}
	}
	if err := errorsOf(cfg.Validate(tokenPIIClaimsName), errs); err != nil {
		return nil, err
	}
	return &TokenPIIClaims{cfg: cfg, claims: claims}, nil
}

// claimBase normalizes a claim name for matching: lower case, and only the
// segment after the last '/' or ':' of a namespaced name.
func claimBase(c string) string {
	if i := strings.LastIndexAny(c, "/:"); i >= 0 {
		c = c[i+1:]
	}
	return strings.ToLower(c)
}

// Name returns "token_pii_claims".
func (d *TokenPIIClaims) Name() string { return tokenPIIClaimsName }

// Observe alerts on a token whose claim names include personal data.
func (d *TokenPIIClaims) Observe(e *schemas.Event, emit Emit) {
	t := e.Token
	switch {
	case t == nil || len(t.Claims) == 0:
		return
	case e.Type != schemas.TokenIssued && e.Type != schemas.TokenRefreshed && e.Type != schemas.TokenUsed:
		return
	case d.cfg.SkipIDTokens && t.Kind == schemas.TokenID:
		return
	}
	var found []string
	for _, c := range t.Claims {
		if _, ok := d.claims[claimBase(c)]; ok && !slices.Contains(found, c) {
			found = append(found, c)
		}
	}
	if len(found) == 0 {
		return
	}
	kind := "token"
	switch t.Kind {
	case schemas.TokenAccess:
		kind = "access token"
	case schemas.TokenRefresh:
		kind = "refresh token"
	case schemas.TokenID:
		kind = "ID token"
	case schemas.TokenAPIKey:
		kind = "API key"
	}
	emit(schemas.Alert{
		Detector: tokenPIIClaimsName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Personal data in token claims",
		Summary: fmt.Sprintf("The %s %s of app %s carries personal-data claims (%s); tokens should carry pseudonymous identifiers only.",
			kind, pseudonymHint(t.ID), e.App, strings.Join(found, ", ")),
		Details: map[string]any{
			"token":      t.ID,
			"kind":       t.Kind,
			"pii_claims": found,
		},
		Evidence: []string{e.ID},
		Key:      t.ID,
	})
}

// Expire does nothing: the detector keeps no state.
func (d *TokenPIIClaims) Expire(time.Time) {}

// Forget does nothing: the detector keeps no state.
func (d *TokenPIIClaims) Forget(string) {}
