package detect

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const longLivedTokenName = "long_lived_token"

// LongLivedTokenConfig configures the long_lived_token detector.
type LongLivedTokenConfig struct {
	Common `yaml:",inline"`
	// MaxLifetime is the longest acceptable lifetime (expires_at minus
	// issued_at) of an access or ID token (default 1h).
	MaxLifetime Duration `yaml:"max_lifetime"`
}

func defaultLongLivedTokenConfig() LongLivedTokenConfig {
	return LongLivedTokenConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityMedium,
			DedupWindow: Duration(24 * time.Hour),
		},
		MaxLifetime: Duration(time.Hour),
	}
}

// LongLivedToken flags an access or ID token whose lifetime exceeds
// max_lifetime: a stolen bearer token stays useful for that long. It judges
// token.issued, token.refreshed and token.used events whose token has kind
// access or id and both issued_at and expires_at. Refresh tokens and API
// keys are long-lived by design, and a token without a kind is not judged.
// The dedup key is the token id. It keeps no state.
type LongLivedToken struct {
	cfg LongLivedTokenConfig
}

var _ Detector = (*LongLivedToken)(nil)

// NewLongLivedToken returns the long_lived_token detector, or an error
// naming every invalid setting.
func NewLongLivedToken(cfg LongLivedTokenConfig) (*LongLivedToken, error) {
	var errs []error
	if cfg.MaxLifetime <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_lifetime: must be positive (got %s)", longLivedTokenName, cfg.MaxLifetime.D()))
	}
	if err := errorsOf(cfg.Validate(longLivedTokenName), errs); err != nil {
		return nil, err
	}
	return &LongLivedToken{cfg: cfg}, nil
}

// Name returns "long_lived_token".
func (d *LongLivedToken) Name() string { return longLivedTokenName }

// Observe alerts on an access or ID token that lives too long.
func (d *LongLivedToken) Observe(e *schemas.Event, emit Emit) {
	t := e.Token
	switch {
	case t == nil || t.IssuedAt == nil || t.ExpiresAt == nil:
		return
	case e.Type != schemas.TokenIssued && e.Type != schemas.TokenRefreshed && e.Type != schemas.TokenUsed:
		return
	case t.Kind != schemas.TokenAccess && t.Kind != schemas.TokenID:
		return
	}
	life := t.ExpiresAt.Sub(t.IssuedAt.Time)
	if life <= d.cfg.MaxLifetime.D() {
		return
	}
	kind := "access token"
	if t.Kind == schemas.TokenID {
		kind = "ID token"
	}
	emit(schemas.Alert{
		Detector: longLivedTokenName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Long-lived " + kind,
		Summary: fmt.Sprintf("The %s %s of app %s is valid for %s; the maximum is %s.",
			kind, pseudonymHint(t.ID), e.App, durationText(life), durationText(d.cfg.MaxLifetime.D())),
		Details: map[string]any{
			"token":          t.ID,
			"kind":           t.Kind,
			"lifetime_s":     int64(life / time.Second),
			"max_lifetime_s": int64(d.cfg.MaxLifetime.D() / time.Second),
			"issued_at":      msTime(t.IssuedAt.UnixMilli()),
			"expires_at":     msTime(t.ExpiresAt.UnixMilli()),
		},
		Evidence: []string{e.ID},
		Key:      t.ID,
	})
}

// Expire does nothing: the detector keeps no state.
func (d *LongLivedToken) Expire(time.Time) {}

// Forget does nothing: the detector keeps no state.
func (d *LongLivedToken) Forget(string) {}
