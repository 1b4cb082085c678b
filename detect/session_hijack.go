package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const sessionHijackName = "session_hijack"

// SessionHijackConfig configures the session_hijack detector.
type SessionHijackConfig struct {
	Common `yaml:",inline"`
	// StateTTL is how long after its last event a session's origin is
	// remembered (default 24h).
	StateTTL Duration `yaml:"state_ttl"`
	// MaxKeys caps the sessions tracked (default 1000000); beyond it the
	// least recently active are forgotten.
	MaxKeys int `yaml:"max_keys"`
}

func defaultSessionHijackConfig() SessionHijackConfig {
	return SessionHijackConfig{
		Common: Common{
			Enabled:     true,
			Severity:    SeverityHigh,
			DedupWindow: Duration(24 * time.Hour),
		},
		StateTTL: Duration(24 * time.Hour),
		MaxKeys:  defaultMaxKeys,
	}
}

// SessionHijack flags a session id seen from a different device and a
// different network (country or ASN) than it started on: a stolen session
// cookie replayed elsewhere. The origin is the session's first event that
// names a device. A change of network alone on the same device (wifi to
// mobile, a VPN switched on) is normal, and so is another device on the
// same network; an event without a device, or without network details to
// compare, is not judged. The dedup key is the session.
type SessionHijack struct {
	sharedKeys
	cfg      SessionHijackConfig
	sessions *hashTable[sessionOrigin] // by session
}

var _ Detector = (*SessionHijack)(nil)

// sessionOrigin is where a session started: 48 bytes plus the event id,
// which is shared with the event it came from.
type sessionOrigin struct {
	device   uint64 // hashes
	subject  uint64
	at, last int64 // Unix ms: the origin event, the newest event
	eventID  string
	asn      uint32
	country  country
}

// NewSessionHijack returns the session_hijack detector, or an error naming
// every invalid setting.
func NewSessionHijack(cfg SessionHijackConfig) (*SessionHijack, error) {
	errs := []error{cfg.Validate(sessionHijackName)}
	if cfg.StateTTL <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.state_ttl: must be positive (got %s)", sessionHijackName, cfg.StateTTL.D()))
	}
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", sessionHijackName, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &SessionHijack{
		cfg:      cfg,
		sessions: newHashTable(cfg.MaxKeys, func(o sessionOrigin) int64 { return o.last }),
	}, nil
}

// Name returns "session_hijack".
func (d *SessionHijack) Name() string { return sessionHijackName }

// Observe compares each event of a session with where the session started.
func (d *SessionHijack) Observe(e *schemas.Event, emit Emit) {
	c := e.Client
	if e.Session == "" || c == nil || c.Device == "" {
		return
	}
	at, key, dev := e.Time.UnixMilli(), d.sessionKey(e), pseudonymHash(c.Device)
	o, ok := d.sessions.get(key)
	switch {
	case !ok || at-o.last > d.cfg.StateTTL.D().Milliseconds() || (e.Type == schemas.SessionStarted && at < o.at):
		// The first sighting (or the first after state_ttl, checked here
		// so that results do not depend on when the engine sweeps), or
		// a late session.started: this is the origin.
		d.sessions.put(key, sessionOrigin{
			device: dev, country: countryOf(c.Country), asn: c.ASN,
			eventID: e.ID, subject: d.subjectKey(e), at: at, last: max(at, o.last),
		})
		return
	case at > o.last:
		o.last = at
		d.sessions.update(key, o)
	}
	if dev == o.device {
		return
	}
	var changed []string
	if cc := countryOf(c.Country); cc != (country{}) && o.country != (country{}) && cc != o.country {
		changed = append(changed, "country")
	}
	if c.ASN != 0 && o.asn != 0 && c.ASN != o.asn {
		changed = append(changed, "asn")
	}
	if len(changed) == 0 {
		return
	}
	emit(Alert{
		Detector: sessionHijackName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Session used from another device and network",
		Summary: fmt.Sprintf("Session %s, started on one device in %s, was used %s later from another device in %s.",
			pseudonymHint(e.Session), networkText(o.country.String(), o.asn), durationText(time.Duration(at-o.at)*time.Millisecond), networkText(c.Country, c.ASN)),
		Details: map[string]any{
			"changed": strings.Join(changed, ","),
			"origin":  originDetails(o.country.String(), "", o.asn, msTime(o.at)),
			"seen":    originDetails(c.Country, c.IPPrefix, c.ASN, msTime(at)),
			"device":  c.Device,
		},
		Evidence: []string{o.eventID, e.ID},
		Key:      e.Session,
	})
}

func originDetails(country, prefix string, asn uint32, at string) map[string]any {
	m := map[string]any{"time": at}
	if country != "" {
		m["country"] = country
	}
	if prefix != "" {
		m["ip_prefix"] = prefix
	}
	if asn != 0 {
		m["asn"] = asn
	}
	return m
}

// networkText writes a network for people: "DE (AS3320)".
func networkText(country string, asn uint32) string {
	switch {
	case country != "" && asn != 0:
		return fmt.Sprintf("%s (AS%d)", country, asn)
	case country != "":
		return country
	case asn != 0:
		return fmt.Sprintf("AS%d", asn)
	}
	return "an unknown network"
}

// Expire forgets sessions idle for longer than state_ttl.
func (d *SessionHijack) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.cfg.StateTTL.D().Milliseconds()
	d.sessions.dropOlder(cutoff, func(o sessionOrigin) bool { return o.last < cutoff })
}

// Forget drops every session of subject.
func (d *SessionHijack) Forget(subject string) {
	h := pseudonymHash(subject)
	d.sessions.dropIf(func(o sessionOrigin) bool { return o.subject == h })
}

// StateKeys returns the number of sessions tracked.
func (d *SessionHijack) StateKeys() int { return d.sessions.size() }

// StateHorizon is state_ttl.
func (d *SessionHijack) StateHorizon() time.Duration { return d.cfg.StateTTL.D() }
