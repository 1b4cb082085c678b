package detect

import (
	"errors"
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const bruteForceName = "brute_force"

// BruteForceConfig configures the brute_force detector.
type BruteForceConfig struct {
	Common `yaml:",inline"`
	// Threshold is how many login.failed for one subject within Window
	// raise an alert (default 10).
	Threshold int `yaml:"threshold"`
	// Window is the sliding window failures are counted in (default 10m).
	Window Duration `yaml:"window"`
	// MaxKeys caps the subjects tracked (default 1000000); beyond it the
	// least recently failing are forgotten.
	MaxKeys int `yaml:"max_keys"`
}

func defaultBruteForceConfig() BruteForceConfig {
	return BruteForceConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityMedium,
			DedupWindow: Duration(time.Hour),
		},
		Threshold: 10,
		Window:    Duration(10 * time.Minute),
		MaxKeys:   defaultMaxKeys,
	}
}

// maxBruteForceThreshold bounds threshold: each attacked subject keeps that
// many failures.
const maxBruteForceThreshold = 1000

// BruteForce flags many login.failed for one subject within a sliding
// window (key: the subject), from any source: password guessing against one
// account. A few typos before a good login stay below the threshold. A
// login.succeeded for a subject that is at or over the threshold is a
// second finding (details.outcome "succeeded", key: the subject and
// "succeeded", one severity level higher): the guessing may have worked.
//
// Anonymous networks are evidence: details.anonymous_failures counts the
// failures in the window that came from an anonymous network (VPN, hosting,
// Tor exit, proxy: the anonymous-IP database's classes, listed in
// details.anonymous_classes), and a successful login after the guessing
// that itself comes from one (details.login_anonymity) is raised one more
// level: whoever guessed the password is hiding where they log in from.
type BruteForce struct {
	cfg      BruteForceConfig
	window   int64 // ms
	subjects *keyTable[failures]
}

var _ Detector = (*BruteForce)(nil)

// failures are a subject's recent failed logins, oldest first, at most
// threshold of them.
type failures struct {
	at   []int64 // Unix ms
	ids  []string
	anon []schemas.Anonymity // the network's anonymous-network classes
}

func (f failures) last() int64 { return f.at[len(f.at)-1] }

// NewBruteForce returns the brute_force detector, or an error naming every
// invalid setting.
func NewBruteForce(cfg BruteForceConfig) (*BruteForce, error) {
	errs := []error{cfg.Validate(bruteForceName)}
	if cfg.Threshold < 2 || cfg.Threshold > maxBruteForceThreshold {
		errs = append(errs, fmt.Errorf("detectors.%s.threshold: must be between 2 and %d (got %d)", bruteForceName, maxBruteForceThreshold, cfg.Threshold))
	}
	if cfg.Window <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.window: must be positive (got %s)", bruteForceName, cfg.Window.D()))
	}
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", bruteForceName, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &BruteForce{
		cfg:      cfg,
		window:   cfg.Window.D().Milliseconds(),
		subjects: newKeyTable(cfg.MaxKeys, failures.last),
	}, nil
}

// Name returns "brute_force".
func (d *BruteForce) Name() string { return bruteForceName }

// Observe counts failed logins and judges successful ones.
func (d *BruteForce) Observe(e *schemas.Event, emit Emit) {
	switch e.Type {
	case schemas.LoginFailed:
		d.failed(e, emit)
	case schemas.LoginSucceeded:
		f, ok := d.subjects.get(e.Subject)
		if !ok {
			return
		}
		if lo, hi := f.recent(e.Time.UnixMilli(), d.window); hi-lo >= d.cfg.Threshold {
			emit(d.alert(e, f, lo, hi, true))
		}
	}
}

func (d *BruteForce) failed(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	f, _ := d.subjects.get(e.Subject)
	// Failures older than the window can no longer count.
	drop := 0
	for drop < len(f.at) && f.at[drop] <= at-d.window {
		drop++
	}
	for _, id := range f.ids[drop:] {
		if id == e.ID {
			return // the same event delivered twice
		}
	}
	if drop == 0 && len(f.at) == d.cfg.Threshold {
		drop = 1
	}
	if drop > 0 {
		n := copy(f.at, f.at[drop:])
		copy(f.ids, f.ids[drop:])
		copy(f.anon, f.anon[drop:])
		clear(f.ids[n:])
		f.at, f.ids, f.anon = f.at[:n], f.ids[:n], f.anon[:n]
	}
	// Events arrive in time order except late ones: insert in place.
	i := len(f.at)
	for i > 0 && f.at[i-1] > at {
		i--
	}
	f.at = insertAt(f.at, i, at)
	f.ids = insertAt(f.ids, i, e.ID)
	f.anon = insertAt(f.anon, i, anonymityOf(e.Client))
	d.subjects.put(e.Subject, f)
	// The windows that end at this failure or, for a late one, at a
	// newer failure are the ones it can fill.
	for j := i; j < len(f.at); j++ {
		if lo, hi := f.recent(f.at[j], d.window); hi-lo >= d.cfg.Threshold {
			emit(d.alert(e, f, lo, hi, false))
			return
		}
	}
}

// recent returns the index range of the failures within window up to at
// (inclusive).
func (f failures) recent(at, window int64) (lo, hi int) {
	for lo < len(f.at) && f.at[lo] <= at-window {
		lo++
	}
	hi = lo
	for hi < len(f.at) && f.at[hi] <= at {
		hi++
	}
	return lo, hi
}

func (d *BruteForce) alert(e *schemas.Event, f failures, lo, hi int, succeeded bool) schemas.Alert {
	n, first := hi-lo, f.at[lo]
	span := time.Duration(max(e.Time.UnixMilli(), f.at[hi-1])-first) * time.Millisecond
	evidence := append([]string(nil), f.ids[lo:hi]...)
	details := map[string]any{
		"failures":      n,
		"threshold":     d.cfg.Threshold,
		"window_s":      d.window / 1000,
		"first_failure": msTime(first),
		"outcome":       "failing",
	}
	var anonN int
	var anon schemas.Anonymity
	for _, a := range f.anon[lo:hi] {
		if a != 0 {
			anonN++
			anon |= a
		}
	}
	if anonN > 0 {
		details["anonymous_failures"] = anonN
		details["anonymous_classes"] = anon.Names()
	}
	a := schemas.Alert{
		Detector: bruteForceName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Title:    "Brute force against one account",
		Summary: fmt.Sprintf("%d failed logins for one account in %s (threshold %d in %s).",
			n, durationText(span), d.cfg.Threshold, durationText(d.cfg.Window.D())),
		Details:  details,
		Evidence: evidence,
		Key:      e.Subject,
	}
	if c := e.Client; c != nil {
		if c.IPPrefix != "" {
			details["ip_prefix"] = c.IPPrefix
		}
		if c.ASN != 0 {
			details["asn"] = c.ASN
		}
	}
	if succeeded {
		details["outcome"] = "succeeded"
		a.Severity = raise(d.cfg.Severity)
		a.Title = "Successful login after brute force"
		a.Summary = fmt.Sprintf("A login succeeded after %d failed logins for the account in %s (threshold %d in %s).",
			n, durationText(span), d.cfg.Threshold, durationText(d.cfg.Window.D()))
		a.Session = e.Session
		a.Evidence = append(a.Evidence, e.ID)
		a.Key = e.Subject + ":succeeded"
		if la := anonymityOf(e.Client); la != 0 {
			details["login_anonymity"] = la.Names()
			a.Severity = raise(a.Severity)
			a.Summary += fmt.Sprintf(" The login came from an anonymous network (%s).", la)
		}
	}
	return a
}

// Expire forgets subjects whose last failure left the window.
func (d *BruteForce) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.window
	d.subjects.dropOlder(cutoff+1, func(f failures) bool { return f.last() <= cutoff })
}

// Forget drops subject's failures.
func (d *BruteForce) Forget(subject string) { d.subjects.delete(subject) }

// StateKeys returns the number of subjects tracked.
func (d *BruteForce) StateKeys() int { return d.subjects.size() }

// StateHorizon is the window.
func (d *BruteForce) StateHorizon() time.Duration { return d.cfg.Window.D() }

// insertAt inserts v at index i of s.
func insertAt[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}
