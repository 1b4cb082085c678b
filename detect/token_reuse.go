package detect

import (
	"errors"
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const tokenReuseName = "token_reuse"

// Variants of token_reuse, in details.variant.
const (
	variantRefreshReuse  = "refresh_reuse"
	variantConcurrentUse = "concurrent_use"
	variantAfterLogout   = "after_logout"
)

// TokenReuseConfig configures the token_reuse detector.
type TokenReuseConfig struct {
	Common `yaml:",inline"`
	// Variants lists the checks to run (default all three:
	// refresh_reuse, concurrent_use, after_logout).
	Variants []string `yaml:"variants"`
	// RaceGrace is how long a repeat from the same device counts as a
	// network race (a client retrying a refresh whose answer it lost, a
	// request in flight at logout) rather than reuse (default 5s).
	RaceGrace Duration `yaml:"race_grace"`
	// RefreshWindow is how long a rotated refresh token is remembered
	// (default 14d, a common refresh token lifetime).
	RefreshWindow Duration `yaml:"refresh_window"`
	// AccessLifetime is assumed for an access token whose expires_at was
	// never seen (default 1h).
	AccessLifetime Duration `yaml:"access_lifetime"`
	// AfterLogoutWindow is how long a revoked token or an ended session is
	// remembered (default 24h).
	AfterLogoutWindow Duration `yaml:"after_logout_window"`
	// MaxKeys caps each table (rotated tokens, access tokens, revoked
	// tokens, ended sessions; default 1000000); beyond it the oldest are
	// forgotten.
	MaxKeys int `yaml:"max_keys"`
}

func defaultTokenReuseConfig() TokenReuseConfig {
	return TokenReuseConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(time.Hour),
		},
		Variants:          []string{variantRefreshReuse, variantConcurrentUse, variantAfterLogout},
		RaceGrace:         Duration(5 * time.Second),
		RefreshWindow:     Duration(14 * 24 * time.Hour),
		AccessLifetime:    Duration(time.Hour),
		AfterLogoutWindow: Duration(24 * time.Hour),
		MaxKeys:           defaultMaxKeys,
	}
}

// TokenReuse flags a token presented where it no longer belongs, in three
// variants (details.variant):
//
//   - refresh_reuse: a second token.refreshed whose token.parent was
//     already rotated into a different token, the theft signal of RFC 6819
//     and the OAuth 2.0 Security BCP (refresh token rotation). A repeat from
//     the same device within race_grace is a client retrying, not theft; a
//     repeat naming the same new token is the same event delivered twice.
//     Its severity is one level above the configured one. Key: the token
//     family (else the parent).
//   - concurrent_use: one access or ID token (kind access, id or unset)
//     used from two devices within its lifetime (its expires_at when seen,
//     else access_lifetime after first sight). Key: the token.
//   - after_logout: a token used (token.used, or presented as the parent
//     of token.refreshed) after token.revoked for it, or with a session
//     after session.ended for that session (unless the session id was
//     started again since), within after_logout_window; from the same
//     device within race_grace it is a request that was in flight. Key:
//     the token.
type TokenReuse struct {
	sharedKeys
	cfg                        TokenReuseConfig
	refresh, concurrent, after bool
	grace                      int64 // ms

	// Tables are keyed by pseudonymHash of the token or session, and
	// devices and subjects are kept as hashes too: state is compared, and
	// alerts take the strings from the event at hand.
	rotated *hashTable[rotation] // by parent token
	access  *hashTable[tokenUse] // by access token
	revoked *hashTable[endMark]  // by token
	ended   *hashTable[endMark]  // by session
}

var _ Detector = (*TokenReuse)(nil)

// rotation is one refresh: parent → child (48 bytes and the event id).
type rotation struct {
	child   uint64 // hashes
	device  uint64
	subject uint64
	at      int64 // Unix ms
	eventID string
}

// tokenUse is the first sighting of an access token with a device.
type tokenUse struct {
	device  uint64 // hashes
	subject uint64
	at      int64 // Unix ms
	expires int64 // Unix ms
	eventID string
}

// endMark is a revocation or a session end.
type endMark struct {
	device  uint64 // hashes
	subject uint64
	at      int64 // Unix ms
	eventID string
}

// NewTokenReuse returns the token_reuse detector, or an error naming every
// invalid setting.
func NewTokenReuse(cfg TokenReuseConfig) (*TokenReuse, error) {
	errs := []error{cfg.Validate(tokenReuseName)}
	d := &TokenReuse{cfg: cfg, grace: cfg.RaceGrace.D().Milliseconds()}
	for _, v := range cfg.Variants {
		switch v {
		case variantRefreshReuse:
			d.refresh = true
		case variantConcurrentUse:
			d.concurrent = true
		case variantAfterLogout:
			d.after = true
		default:
			errs = append(errs, fmt.Errorf("detectors.%s.variants: %q is not one of refresh_reuse, concurrent_use, after_logout", tokenReuseName, v))
		}
	}
	positive := func(field string, v Duration) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("detectors.%s.%s: must be positive (got %s)", tokenReuseName, field, v.D()))
		}
	}
	if cfg.RaceGrace < 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.race_grace: must not be negative (got %s)", tokenReuseName, cfg.RaceGrace.D()))
	}
	positive("refresh_window", cfg.RefreshWindow)
	positive("access_lifetime", cfg.AccessLifetime)
	positive("after_logout_window", cfg.AfterLogoutWindow)
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", tokenReuseName, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.rotated = newHashTable(cfg.MaxKeys, func(r rotation) int64 { return r.at })
	d.access = newHashTable(cfg.MaxKeys, func(u tokenUse) int64 { return u.at })
	d.revoked = newHashTable(cfg.MaxKeys, func(m endMark) int64 { return m.at })
	d.ended = newHashTable(cfg.MaxKeys, func(m endMark) int64 { return m.at })
	return d, nil
}

// Name returns "token_reuse".
func (d *TokenReuse) Name() string { return tokenReuseName }

// Observe tracks rotations, first uses, revocations and session ends, and
// alerts on reuse.
func (d *TokenReuse) Observe(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	switch e.Type {
	case schemas.TokenRefreshed:
		if e.Token == nil || e.Token.Parent == "" {
			return
		}
		if d.after {
			d.checkAfterLogout(e, e.Token.Parent, at, emit)
		}
		if d.refresh {
			d.checkRefresh(e, at, emit)
		}
	case schemas.TokenIssued:
		if d.concurrent && concurrentKind(e.Token) && device(e) != "" {
			if k := pseudonymHash(e.Token.ID); !d.access.has(k) {
				d.access.put(k, d.firstUse(e, at))
			}
		}
	case schemas.TokenUsed:
		if e.Token == nil {
			return
		}
		if d.after {
			d.checkAfterLogout(e, e.Token.ID, at, emit)
		}
		if d.concurrent && concurrentKind(e.Token) {
			d.checkConcurrent(e, at, emit)
		}
	case schemas.TokenRevoked:
		if d.after && e.Token != nil {
			d.mark(d.revoked, e.Token.ID, e, at)
		}
	case schemas.SessionEnded:
		if d.after {
			d.mark(d.ended, e.Session, e, at)
		}
	case schemas.SessionStarted:
		// A session id started again (after its end) is live again.
		if d.after {
			if k := d.sessionKey(e); d.ended.has(k) {
				if m, _ := d.ended.get(k); m.at <= at {
					d.ended.delete(k)
				}
			}
		}
	}
}

// mark records the earliest revocation or end of key.
func (d *TokenReuse) mark(t *hashTable[endMark], key string, e *schemas.Event, at int64) {
	k := pseudonymHash(key)
	if m, ok := t.get(k); ok && m.at <= at {
		return
	}
	t.put(k, endMark{device: pseudonymHash(device(e)), eventID: e.ID, subject: d.subjectKey(e), at: at})
}

func (d *TokenReuse) checkRefresh(e *schemas.Event, at int64, emit Emit) {
	parent := e.Token.Parent
	pk, dev := pseudonymHash(parent), device(e)
	r, ok := d.rotated.get(pk)
	// Windows are checked here, not only by Expire, so that results do
	// not depend on when the engine sweeps.
	if !ok || abs(at-r.at) > d.cfg.RefreshWindow.D().Milliseconds() {
		d.rotated.put(pk, rotation{
			child: pseudonymHash(e.Token.ID), device: pseudonymHash(dev),
			subject: d.subjectKey(e), eventID: e.ID, at: at,
		})
		return
	}
	sameDevice := dev != "" && r.device == pseudonymHash(dev)
	switch {
	case r.child == pseudonymHash(e.Token.ID):
		return // the same refresh, delivered again
	case sameDevice && abs(at-r.at) <= d.grace:
		return // the client retried within the grace window
	}
	first, second := r.eventID, e.ID
	if at < r.at {
		first, second = second, first
	}
	key := e.Token.Family
	if key == "" {
		key = parent
	}
	details := map[string]any{
		"variant":         variantRefreshReuse,
		"parent":          parent,
		"child":           e.Token.ID,
		"elapsed_s":       abs(at-r.at) / 1000,
		"same_device":     sameDevice,
		"race_grace_s":    d.grace / 1000,
		"first_refreshed": msTime(min(at, r.at)),
	}
	if e.Token.Family != "" {
		details["token_family"] = e.Token.Family
	}
	if dev != "" {
		details["device"] = dev
	}
	emit(schemas.Alert{
		Detector: tokenReuseName,
		Severity: raise(d.cfg.Severity),
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Refresh token reused after rotation",
		Summary: fmt.Sprintf("Refresh token %s was rotated twice, %s apart, %s: a sign it was stolen.",
			pseudonymHint(parent), durationText(time.Duration(abs(at-r.at))*time.Millisecond), deviceText(r.device, dev)),
		Details:  details,
		Evidence: []string{first, second},
		Key:      variantRefreshReuse + ":" + key,
	})
}

func (d *TokenReuse) firstUse(e *schemas.Event, at int64) tokenUse {
	exp := at + d.cfg.AccessLifetime.D().Milliseconds()
	if t := e.Token.ExpiresAt; t != nil && !t.IsZero() {
		exp = t.UnixMilli()
	}
	return tokenUse{device: pseudonymHash(device(e)), eventID: e.ID, subject: d.subjectKey(e), at: at, expires: exp}
}

func (d *TokenReuse) checkConcurrent(e *schemas.Event, at int64, emit Emit) {
	dev := device(e)
	k := pseudonymHash(e.Token.ID)
	u, ok := d.access.get(k)
	if !ok || at > u.expires {
		if dev != "" {
			d.access.put(k, d.firstUse(e, at))
		}
		return
	}
	if dev == "" || pseudonymHash(dev) == u.device {
		return
	}
	first, second := u.eventID, e.ID
	if at < u.at {
		first, second = second, first
	}
	emit(schemas.Alert{
		Detector: tokenReuseName,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Access token used from two devices",
		Summary: fmt.Sprintf("Access token %s was used from a second device %s after the first, within its lifetime.",
			pseudonymHint(e.Token.ID), durationText(time.Duration(abs(at-u.at))*time.Millisecond)),
		Details: map[string]any{
			"variant":    variantConcurrentUse,
			"token":      e.Token.ID,
			"device":     dev,
			"elapsed_s":  abs(at-u.at) / 1000,
			"expires_at": msTime(u.expires),
		},
		Evidence: []string{first, second},
		Key:      variantConcurrentUse + ":" + e.Token.ID,
	})
}

// checkAfterLogout alerts when token (used or presented for refresh) was
// revoked, or e's session ended, before e.
func (d *TokenReuse) checkAfterLogout(e *schemas.Event, token string, at int64, emit Emit) {
	window := d.cfg.AfterLogoutWindow.D().Milliseconds()
	after := func(m endMark, ok bool) bool { return ok && at > m.at && at-m.at <= window }
	reason, m, ok := "token_revoked", endMark{}, false
	if token != "" {
		m, ok = d.revoked.get(pseudonymHash(token))
	}
	if !after(m, ok) {
		reason, ok = "session_ended", false
		if e.Session != "" {
			m, ok = d.ended.get(d.sessionKey(e))
		}
		if !after(m, ok) {
			return
		}
	}
	dev := device(e)
	sameDevice := dev != "" && m.device == pseudonymHash(dev)
	if sameDevice && at-m.at <= d.grace {
		return // a request in flight at logout
	}
	what := "its revocation"
	if reason == "session_ended" {
		what = "its session ended"
	}
	emit(schemas.Alert{
		Detector: tokenReuseName,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Token used after logout",
		Summary: fmt.Sprintf("Token %s was presented %s after %s, %s.",
			pseudonymHint(token), durationText(time.Duration(at-m.at)*time.Millisecond), what, deviceText(m.device, dev)),
		Details: map[string]any{
			"variant":     variantAfterLogout,
			"reason":      reason,
			"token":       token,
			"event_type":  string(e.Type),
			"ended_at":    msTime(m.at),
			"elapsed_s":   (at - m.at) / 1000,
			"same_device": sameDevice,
		},
		Evidence: []string{m.eventID, e.ID},
		Key:      variantAfterLogout + ":" + token,
	})
}

// Expire forgets rotations older than refresh_window, access tokens past
// their expiry, and revocations and session ends older than
// after_logout_window.
func (d *TokenReuse) Expire(watermark time.Time) {
	wm := watermark.UnixMilli()
	refresh, after := wm-d.cfg.RefreshWindow.D().Milliseconds(), wm-d.cfg.AfterLogoutWindow.D().Milliseconds()
	d.rotated.dropOlder(refresh, func(r rotation) bool { return r.at < refresh })
	d.access.dropIf(func(u tokenUse) bool { return u.expires < wm })
	d.revoked.dropOlder(after, func(m endMark) bool { return m.at < after })
	d.ended.dropOlder(after, func(m endMark) bool { return m.at < after })
}

// Forget drops every token and session of subject.
func (d *TokenReuse) Forget(subject string) {
	h := pseudonymHash(subject)
	d.rotated.dropIf(func(r rotation) bool { return r.subject == h })
	d.access.dropIf(func(u tokenUse) bool { return u.subject == h })
	d.revoked.dropIf(func(m endMark) bool { return m.subject == h })
	d.ended.dropIf(func(m endMark) bool { return m.subject == h })
}

// StateHorizon is the longest of the detector's windows.
func (d *TokenReuse) StateHorizon() time.Duration {
	return max(d.cfg.RefreshWindow.D(), d.cfg.AfterLogoutWindow.D(), d.cfg.AccessLifetime.D())
}

// StateKeys returns the number of tokens and sessions tracked.
func (d *TokenReuse) StateKeys() int {
	return d.rotated.size() + d.access.size() + d.revoked.size() + d.ended.size()
}

// concurrentKind reports whether t is a token that one device holds: an
// access or ID token, or one of unknown kind. API keys are shared by design.
func concurrentKind(t *schemas.Token) bool {
	if t == nil || t.ID == "" {
		return false
	}
	switch t.Kind {
	case "", schemas.TokenAccess, schemas.TokenID:
		return true
	}
	return false
}

// device returns e's device pseudonym, or "".
func device(e *schemas.Event) string {
	if e.Client == nil {
		return ""
	}
	return e.Client.Device
}

// deviceText says whether two sightings came from the same device, given
// the first one's device hash and the second one's device.
func deviceText(first uint64, second string) string {
	switch {
	case first == 0 || second == "":
		return "device unknown"
	case first == pseudonymHash(second):
		return "from the same device"
	}
	return "from a different device"
}

// raise returns the severity one level above s (critical stays).
func raise(s schemas.Severity) schemas.Severity {
	switch s {
	case schemas.SeverityLow:
		return schemas.SeverityMedium
	case schemas.SeverityMedium:
		return schemas.SeverityHigh
	}
	return schemas.SeverityCritical
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
