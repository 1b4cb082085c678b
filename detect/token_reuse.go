package detect

import (
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// RefreshGrace is how long after a rotation the same device may
	// present the rotated refresh token again without an alert: a client
	// that lost the answer to its refresh (a network error) retries with
	// the token it still holds, and identity providers accept that within
	// a grace period (Okta's default is 30s). Default 30s.
	RefreshGrace Duration `yaml:"refresh_grace"`
	// Apps overrides settings for the events of one app (by its app
	// name), e.g. apps: {shop: {refresh_grace: 10s}}.
	Apps map[string]TokenReuseAppConfig `yaml:"apps"`
	// RaceGrace is how long after a logout or revocation a request from
	// the same device counts as one that was in flight (default 5s).
	RaceGrace Duration `yaml:"race_grace"`
	// RefreshWindow is how long a rotated refresh token is remembered
	// (default 14d, a common refresh token lifetime). The longest of
	// refresh_window, access_lifetime and after_logout_window bounds how
	// long any token_reuse state is kept.
	RefreshWindow Duration `yaml:"refresh_window"`
	// AccessLifetime is assumed for an access token whose expires_at was
	// never seen (default 1h).
	AccessLifetime Duration `yaml:"access_lifetime"`
	// AfterLogoutWindow is how long a revoked token or an ended session is
	// remembered at least (default 24h); longer while the token, or a
	// token issued in the session, has not expired.
	AfterLogoutWindow Duration `yaml:"after_logout_window"`
	// MaxKeys caps each table (rotated tokens, access tokens, live
	// sessions, and revocations and session ends together; default
	// 1000000); beyond it the oldest are forgotten.
	MaxKeys int `yaml:"max_keys"`
	// MaxLogoutsPerSubject caps the revocations and session ends kept per
	// subject (default 64); beyond it the subject's oldest is forgotten.
	MaxLogoutsPerSubject int `yaml:"max_logouts_per_subject"`
}

// TokenReuseAppConfig overrides token_reuse settings for one app.
type TokenReuseAppConfig struct {
	// RefreshGrace replaces refresh_grace for the app's events.
	RefreshGrace *Duration `yaml:"refresh_grace"`
}

// Defaults of token_reuse's bounds.
const (
	defaultRefreshGrace         = 30 * time.Second
	defaultMaxLogoutsPerSubject = 64
)

func defaultTokenReuseConfig() TokenReuseConfig {
	return TokenReuseConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(time.Hour),
		},
		Variants:             []string{variantRefreshReuse, variantConcurrentUse, variantAfterLogout},
		RefreshGrace:         Duration(defaultRefreshGrace),
		RaceGrace:            Duration(5 * time.Second),
		RefreshWindow:        Duration(14 * 24 * time.Hour),
		AccessLifetime:       Duration(time.Hour),
		AfterLogoutWindow:    Duration(24 * time.Hour),
		MaxKeys:              defaultMaxKeys,
		MaxLogoutsPerSubject: defaultMaxLogoutsPerSubject,
	}
}

// TokenReuse flags a token presented where it no longer belongs, in three
// variants (details.variant):
//
//   - refresh_reuse: a second token.refreshed whose token.parent was
//     already rotated into a different token, the theft signal of RFC 6819
//     and the OAuth 2.0 Security BCP (refresh token rotation). A repeat
//     from the same device within refresh_grace (per app) is a client
//     retrying, not theft; a repeat naming the same new token is the same
//     event delivered twice. Its severity is always critical. Key: the
//     token family (else the parent).
//   - concurrent_use: one access or ID token (kind access, id or unset)
//     used from two devices within its lifetime (its expires_at when seen,
//     else access_lifetime after first sight). Key: the token.
//   - after_logout: a token used (token.used, or presented as the parent
//     of token.refreshed) after token.revoked for it, or after
//     session.ended for its session (the event's, else the one its
//     token.issued named; unless the session id was started again since).
//     A revocation is remembered until the token's expiry, a session end
//     until the latest expiry of the tokens issued in it, each at least
//     after_logout_window and at most StateHorizon. A token.used whose
//     own expires_at has passed is not judged: the token had expired. From
//     the same device within race_grace it is a request that was in
//     flight. Key: the token.
type TokenReuse struct {
	sharedKeys
	cfg                        TokenReuseConfig
	refresh, concurrent, after bool
	raceGrace, refreshGrace    int64            // ms
	appGrace                   map[string]int64 // ms, refresh_grace by app
	horizon                    int64            // ms, StateHorizon

	// Tables are keyed by pseudonymHash of the token, session or subject,
	// and devices and subjects are kept as hashes too: state is compared,
	// and alerts take the strings from the event at hand.
	rotated  *hashTable[rotation]    // by parent token
	access   *hashTable[tokenUse]    // by access token
	sessions *hashTable[sessionLife] // by session, until it ends
	logouts  *markTable              // by subject
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

// tokenUse is the first sighting of an access token (with a device, or
// issued in a session).
type tokenUse struct {
	device  uint64 // hashes
	subject uint64
	session uint64 // where it was issued or first used
	at      int64  // Unix ms
	expires int64  // Unix ms
	eventID string
}

// sessionLife is the latest expiry of the tokens issued in a live session.
type sessionLife struct {
	subject uint64 // hash
	until   int64  // Unix ms
}

// NewTokenReuse returns the token_reuse detector, or an error naming every
// invalid setting.
func NewTokenReuse(cfg TokenReuseConfig) (*TokenReuse, error) {
	errs := []error{cfg.Validate(tokenReuseName)}
	d := &TokenReuse{
		cfg:          cfg,
		raceGrace:    cfg.RaceGrace.D().Milliseconds(),
		refreshGrace: cfg.RefreshGrace.D().Milliseconds(),
		appGrace:     map[string]int64{},
		horizon:      max(cfg.RefreshWindow.D(), cfg.AfterLogoutWindow.D(), cfg.AccessLifetime.D()).Milliseconds(),
	}
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
	grace := func(field string, v Duration) {
		if v < 0 || v >= cfg.RefreshWindow {
			errs = append(errs, fmt.Errorf("detectors.%s.%s: must be at least 0 and shorter than refresh_window (got %s)", tokenReuseName, field, v.D()))
		}
	}
	if cfg.RaceGrace < 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.race_grace: must not be negative (got %s)", tokenReuseName, cfg.RaceGrace.D()))
	}
	grace("refresh_grace", cfg.RefreshGrace)
	for _, app := range slices.Sorted(maps.Keys(cfg.Apps)) {
		path := "apps." + app
		switch o := cfg.Apps[app]; {
		case !schemas.ValidApp(app):
			errs = append(errs, fmt.Errorf("detectors.%s.%s: not an app name (1 to 64 letters, digits, _ and -)", tokenReuseName, path))
		case o.RefreshGrace == nil:
			errs = append(errs, fmt.Errorf("detectors.%s.%s: sets nothing (known: refresh_grace)", tokenReuseName, path))
		default:
			grace(path+".refresh_grace", *o.RefreshGrace)
			d.appGrace[app] = o.RefreshGrace.D().Milliseconds()
		}
	}
	positive("refresh_window", cfg.RefreshWindow)
	positive("access_lifetime", cfg.AccessLifetime)
	positive("after_logout_window", cfg.AfterLogoutWindow)
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", tokenReuseName, cfg.MaxKeys))
	}
	if cfg.MaxLogoutsPerSubject <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_logouts_per_subject: must be positive (got %d)", tokenReuseName, cfg.MaxLogoutsPerSubject))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.rotated = newHashTable(cfg.MaxKeys, func(r rotation) int64 { return r.at })
	d.access = newHashTable(cfg.MaxKeys, func(u tokenUse) int64 { return u.at })
	d.sessions = newHashTable(cfg.MaxKeys, func(s sessionLife) int64 { return s.until })
	d.logouts = newMarkTable(cfg.MaxKeys, cfg.MaxLogoutsPerSubject)
	return d, nil
}

// Name returns "token_reuse".
func (d *TokenReuse) Name() string { return tokenReuseName }

// Observe tracks rotations, first uses, token lifetimes, revocations and
// session ends, and alerts on reuse.
func (d *TokenReuse) Observe(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	switch e.Type {
	case schemas.TokenRefreshed:
		if e.Token == nil {
			return
		}
		if d.after {
			d.noteLifetime(e, at)
		}
		if e.Token.Parent == "" {
			return
		}
		if d.after {
			d.checkAfterLogout(e, e.Token.Parent, at, emit)
		}
		if d.refresh {
			d.checkRefresh(e, at, emit)
		}
	case schemas.TokenIssued:
		if e.Token == nil {
			return
		}
		if d.after {
			d.noteLifetime(e, at)
		}
		// after_logout needs the session of a token used without one.
		if concurrentKind(e.Token) && ((d.concurrent && device(e) != "") || (d.after && e.Session != "")) {
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
		if d.after && e.Token != nil && e.Token.ID != "" {
			d.markRevoked(e, at)
		}
	case schemas.SessionEnded:
		if d.after && e.Session != "" {
			d.markEnded(e, at)
		}
	case schemas.SessionStarted:
		// A session id started again (after its end) is live again.
		if d.after {
			subject := d.subjectKey(e)
			if m, ok := findMark(d.logouts.of(subject), d.sessionKey(e), true); ok && m.at <= at {
				d.logouts.remove(subject, m.key, true)
			}
		}
	}
}

// noteLifetime extends the lifetime of e's session to its token's expiry,
// when the event says it.
func (d *TokenReuse) noteLifetime(e *schemas.Event, at int64) {
	t := e.Token.ExpiresAt
	if e.Session == "" || t == nil || t.IsZero() {
		return
	}
	until := min(t.UnixMilli(), at+d.horizon)
	k := d.sessionKey(e)
	if s, ok := d.sessions.get(k); ok && s.until >= until {
		return
	}
	d.sessions.put(k, sessionLife{subject: d.subjectKey(e), until: until})
}

// keep returns until when a mark made at at is kept: at least
// after_logout_window, up to expires when later, at most the horizon.
func (d *TokenReuse) keep(at, expires int64) int64 {
	return min(max(at+d.cfg.AfterLogoutWindow.D().Milliseconds(), expires), at+d.horizon)
}

// markRevoked remembers the revocation of e's token until its expiry: the
// event's expires_at, else the one its token.issued said.
func (d *TokenReuse) markRevoked(e *schemas.Event, at int64) {
	k := pseudonymHash(e.Token.ID)
	var expires int64
	if t := e.Token.ExpiresAt; t != nil && !t.IsZero() {
		expires = t.UnixMilli()
	} else if u, ok := d.access.get(k); ok && at <= u.expires {
		expires = u.expires
	}
	d.logouts.put(d.subjectKey(e), logoutMark{key: k, device: pseudonymHash(device(e)), at: at, until: d.keep(at, expires), eventID: e.ID})
}

// markEnded remembers the end of e's session until the latest expiry of
// the tokens issued in it.
func (d *TokenReuse) markEnded(e *schemas.Event, at int64) {
	k := d.sessionKey(e)
	var expires int64
	if s, ok := d.sessions.get(k); ok {
		expires = s.until
		d.sessions.delete(k)
	}
	d.logouts.put(d.subjectKey(e), logoutMark{key: k, session: true, device: pseudonymHash(device(e)), at: at, until: d.keep(at, expires), eventID: e.ID})
}

// refreshGraceOf returns the refresh grace of app, in ms.
func (d *TokenReuse) refreshGraceOf(app string) int64 {
	if g, ok := d.appGrace[app]; ok {
		return g
	}
	return d.refreshGrace
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
	grace := d.refreshGraceOf(e.App)
	switch {
	case r.child == pseudonymHash(e.Token.ID):
		return // the same refresh, delivered again
	case sameDevice && abs(at-r.at) <= grace:
		return // the client retried within the grace period
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
		"refresh_grace_s": grace / 1000,
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
		// The theft signal of refresh token rotation is always critical.
		Severity: schemas.SeverityCritical,
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
	return tokenUse{device: pseudonymHash(device(e)), eventID: e.ID, subject: d.subjectKey(e), session: d.sessionKey(e), at: at, expires: exp}
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
	if dev == "" {
		return
	}
	if u.device == 0 {
		// Issued without a device: this is its first sighting on one.
		u.device, u.at, u.eventID = pseudonymHash(dev), at, e.ID
		d.access.put(k, u)
		return
	}
	if pseudonymHash(dev) == u.device {
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
// revoked, or its session ended, before e and is still remembered.
func (d *TokenReuse) checkAfterLogout(e *schemas.Event, token string, at int64, emit Emit) {
	marks := d.logouts.of(d.subjectKey(e))
	if len(marks) == 0 {
		return
	}
	if t := e.Token.ExpiresAt; e.Type == schemas.TokenUsed && t != nil && !t.IsZero() && at > t.UnixMilli() {
		return // the token had expired: not a reuse
	}
	tk := pseudonymHash(token)
	after := func(m logoutMark, ok bool) bool { return ok && at > m.at && at <= m.until }
	reason := "token_revoked"
	m, ok := findMark(marks, tk, false)
	if !after(m, ok) {
		reason = "session_ended"
		session := d.sessionKey(e)
		if session == 0 {
			if u, found := d.access.get(tk); found && at <= u.expires {
				session = u.session
			}
		}
		if m, ok = findMark(marks, session, true); !after(m, ok) {
			return
		}
	}
	dev := device(e)
	sameDevice := dev != "" && m.device == pseudonymHash(dev)
	if sameDevice && at-m.at <= d.raceGrace {
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

// Expire forgets rotations older than refresh_window, access tokens and
// sessions' lifetimes past their expiry, and revocations and session ends
// past theirs.
func (d *TokenReuse) Expire(watermark time.Time) {
	wm := watermark.UnixMilli()
	refresh := wm - d.cfg.RefreshWindow.D().Milliseconds()
	d.rotated.dropOlder(refresh, func(r rotation) bool { return r.at < refresh })
	d.access.dropIf(func(u tokenUse) bool { return u.expires < wm })
	d.sessions.dropOlder(wm, func(s sessionLife) bool { return s.until < wm })
	d.logouts.dropExpired(wm)
}

// Forget drops every token and session of subject.
func (d *TokenReuse) Forget(subject string) {
	h := pseudonymHash(subject)
	d.rotated.dropIf(func(r rotation) bool { return r.subject == h })
	d.access.dropIf(func(u tokenUse) bool { return u.subject == h })
	d.sessions.dropIf(func(s sessionLife) bool { return s.subject == h })
	d.logouts.forget(h)
}

// StateHorizon is the longest of the detector's windows, which also bounds
// how long a revocation or session end is remembered.
func (d *TokenReuse) StateHorizon() time.Duration {
	return time.Duration(d.horizon) * time.Millisecond
}

// StateKeys returns the number of tokens, sessions and logouts tracked.
func (d *TokenReuse) StateKeys() int {
	return d.rotated.size() + d.access.size() + d.sessions.size() + d.logouts.size()
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
