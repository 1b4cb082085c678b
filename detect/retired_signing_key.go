package detect

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const retiredSigningKeyName = "retired_signing_key"

// RetiredSigningKeyConfig configures the retired_signing_key detector.
type RetiredSigningKeyConfig struct {
	Common `yaml:",inline"`
	// StateTTL is how long a retirement is remembered (default 30d); keep it
	// longer than your longest token lifetime.
	StateTTL Duration `yaml:"state_ttl"`
	// MaxKeys caps the retired kids remembered; beyond it the earliest
	// retired are forgotten (default 10000).
	MaxKeys int `yaml:"max_keys"`
	// PerApp scopes kids to the app that retired them (default false: a kid
	// retired by one app, e.g. the identity provider, is retired for all).
	PerApp bool `yaml:"per_app"`
}

func defaultRetiredSigningKeyConfig() RetiredSigningKeyConfig {
	return RetiredSigningKeyConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(24 * time.Hour),
		},
		StateTTL: Duration(30 * 24 * time.Hour),
		MaxKeys:  10_000,
	}
}

// RetiredSigningKey flags a token issued, refreshed or used with a kid
// strictly after a key.retired event for that kid: the app still signs with
// (or still accepts) a key it meant to stop using. A token used before the
// retirement, or with a kid never retired, is fine. The dedup key is the kid
// and the token id.
type RetiredSigningKey struct {
	cfg     RetiredSigningKeyConfig
	retired *keyTable[retiredKey]
}

var _ Detector = (*RetiredSigningKey)(nil)

// retiredKey is one retirement.
type retiredKey struct {
	eventID string // the key.retired event
	at      int64  // its time, Unix ms
}

// NewRetiredSigningKey returns the retired_signing_key detector, or an error
// naming every invalid setting.
func NewRetiredSigningKey(cfg RetiredSigningKeyConfig) (*RetiredSigningKey, error) {
	var errs []error
	if cfg.StateTTL <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.state_ttl: must be positive (got %s)", retiredSigningKeyName, cfg.StateTTL.D()))
	}
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", retiredSigningKeyName, cfg.MaxKeys))
	}
	if err := errorsOf(cfg.Validate(retiredSigningKeyName), errs); err != nil {
		return nil, err
	}
	retired := newKeyTable(cfg.MaxKeys, func(k retiredKey) int64 { return k.at })
	return &RetiredSigningKey{cfg: cfg, retired: retired}, nil
}

// Name returns "retired_signing_key".
func (d *RetiredSigningKey) Name() string { return retiredSigningKeyName }

func (d *RetiredSigningKey) keyOf(app, kid string) string {
	if d.cfg.PerApp {
		return app + "\x00" + kid
	}
	return kid
}

// Observe records retirements and alerts on tokens that use a retired kid.
func (d *RetiredSigningKey) Observe(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	if e.Type == schemas.KeyRetired {
		if e.Key == nil || e.Key.KID == "" {
			return
		}
		k := d.keyOf(e.App, e.Key.KID)
		// A second retirement of the same kid keeps the first.
		if r, ok := d.retired.get(k); !ok || at < r.at {
			d.retired.put(k, retiredKey{eventID: e.ID, at: at})
		}
		return
	}
	var usage string
	switch e.Type {
	case schemas.TokenIssued:
		usage = "issued"
	case schemas.TokenRefreshed:
		usage = "refreshed"
	case schemas.TokenUsed:
		usage = "used"
	default:
		return
	}
	t := e.Token
	if t == nil || t.KID == "" {
		return
	}
	r, ok := d.retired.get(d.keyOf(e.App, t.KID))
	if !ok || at <= r.at {
		return
	}
	since := time.Duration(at-r.at) * time.Millisecond
	emit(schemas.Alert{
		Detector: retiredSigningKeyName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Token signed with a retired key",
		Summary: fmt.Sprintf("Token %s was %s with key %q %s after that key was retired.",
			pseudonymHint(t.ID), usage, t.KID, durationText(since)),
		Details: map[string]any{
			"kid":                t.KID,
			"token":              t.ID,
			"usage":              usage,
			"retired_at":         msTime(r.at),
			"since_retirement_s": int64(since / time.Second),
		},
		Evidence: []string{r.eventID, e.ID},
		Key:      t.KID + "|" + t.ID,
	})
}

// Expire forgets retirements older than state_ttl.
func (d *RetiredSigningKey) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.cfg.StateTTL.D().Milliseconds()
	d.retired.dropOlder(cutoff, func(k retiredKey) bool { return k.at < cutoff })
}

// Forget does nothing: retirements are about keys, not subjects.
func (d *RetiredSigningKey) Forget(string) {}
