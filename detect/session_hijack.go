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
	// AnonymousClasses are the anonymous-network classes (vpn, hosting,
	// tor_exit, public_proxy, residential_proxy, anonymous) that a session
	// started elsewhere must not move to, on any device (default tor_exit,
	// hosting, public_proxy; empty turns the check off).
	AnonymousClasses []string `yaml:"anonymous_classes"`
}

func defaultSessionHijackConfig() SessionHijackConfig {
	return SessionHijackConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(24 * time.Hour),
		},
		StateTTL:         Duration(24 * time.Hour),
		MaxKeys:          defaultMaxKeys,
		AnonymousClasses: []string{"tor_exit", "hosting", "public_proxy"},
	}
}

// SessionHijack flags a session id seen from a different device and a
// different network (country or ASN) than it started on: a stolen session
// cookie replayed elsewhere. The origin is the session's first event that
// names a device. A change of network alone on the same device (wifi to
// mobile, a VPN switched on) is normal, and so is another device on the
// same network; an event without a device, or without network details to
// compare, is not judged.
//
// Anonymous networks are evidence too: a session that started on a network
// without any of anonymous_classes and is then used from one of them (a Tor
// exit, a hosting provider, an open proxy, as the anonymous-IP database
// says) is flagged on any device, since a thief replays the device
// cookie along with the session cookie (details.changed "anonymity",
// details.seen.anonymity names the classes). The dedup key is the session.
type SessionHijack struct {
	sharedKeys
	cfg      SessionHijackConfig
	sessions *hashTable[sessionOrigin] // by session
	// suspect are the anonymous_classes.
	suspect schemas.Anonymity
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
	anon     schemas.Anonymity
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
	suspect, err := schemas.ParseAnonymity(cfg.AnonymousClasses)
	if err != nil {
		errs = append(errs, fmt.Errorf("detectors.%s.anonymous_classes: %w", sessionHijackName, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &SessionHijack{
		suspect:  suspect,
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
			device: dev, country: countryOf(c.Country), asn: c.ASN, anon: c.Anonymity,
			eventID: e.ID, subject: d.subjectKey(e), at: at, last: max(at, o.last),
		})
		return
	case at > o.last:
		o.last = at
		d.sessions.update(key, o)
	}
	toAnonymous := c.Anonymity&d.suspect != 0 && o.anon&d.suspect == 0
	if dev == o.device && !toAnonymous {
		return
	}
	var changed []string
	if dev != o.device {
		if cc := countryOf(c.Country); cc != (country{}) && o.country != (country{}) && cc != o.country {
			changed = append(changed, "country")
		}
		if c.ASN != 0 && o.asn != 0 && c.ASN != o.asn {
			changed = append(changed, "asn")
		}
	}
	if toAnonymous {
		changed = append(changed, "anonymity")
	}
	if len(changed) == 0 {
		return
	}
	since := durationText(time.Duration(at-o.at) * time.Millisecond)
	title := "Session used from another device and network"
	summary := fmt.Sprintf("Session %s, started on one device in %s, was used %s later from another device in %s.",
		pseudonymHint(e.Session), networkText(o.country.String(), o.asn), since, networkText(c.Country, c.ASN))
	if toAnonymous {
		title = "Session used from an anonymous network"
		device := "the same device"
		if dev != o.device {
			device = "another device"
		}
		summary = fmt.Sprintf("Session %s, started in %s, was used %s later from %s on an anonymous network (%s) in %s.",
			pseudonymHint(e.Session), networkText(o.country.String(), o.asn), since, device, c.Anonymity, networkText(c.Country, c.ASN))
	}
	origin := originDetails(o.country.String(), "", o.asn, msTime(o.at))
	seen := originDetails(c.Country, c.IPPrefix, c.ASN, msTime(at))
	if o.anon != 0 {
		origin["anonymity"] = o.anon.Names()
	}
	if c.Anonymity != 0 {
		seen["anonymity"] = c.Anonymity.Names()
	}
	emit(schemas.Alert{
		Detector: sessionHijackName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    title,
		Summary:  summary,
		Details: map[string]any{
			"changed": strings.Join(changed, ","),
			"origin":  origin,
			"seen":    seen,
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
