package detect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// Window is the short sliding window failures are counted in (default
	// 10m): fast guessing.
	Window Duration `yaml:"window"`
	// LongWindows are longer windows counted at the same time, each with
	// its own threshold, for slow guessing that never fills the short
	// window (default 15 in 2h and 25 in 24h; an empty list turns them
	// off). Each must be longer than Window and the one before it.
	LongWindows []CountWindow `yaml:"long_windows"`
	// MaxKeys caps the subjects tracked (default 1000000); beyond it the
	// least recently failing are forgotten.
	MaxKeys int `yaml:"max_keys"`
}

// CountWindow is a sliding window and how many failures within it raise
// an alert.
type CountWindow struct {
	Window    Duration `yaml:"window"`
	Threshold int      `yaml:"threshold"`
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
		LongWindows: []CountWindow{
			{Window: Duration(2 * time.Hour), Threshold: 15},
			{Window: Duration(24 * time.Hour), Threshold: 25},
		},
		MaxKeys: defaultMaxKeys,
	}
}

// Bounds of the brute_force settings: each attacked subject keeps up to
// the largest threshold of failures (16 bytes each) and the event IDs of
// the newest Threshold of them.
const (
	maxBruteForceThreshold = 1000
	maxLongWindows         = 4
)

// BruteForce flags many login.failed for one subject within a sliding
// window (key: the subject), from any source: password guessing against one
// account. It counts a short window (fast guessing) and longer ones (slow
// guessing, one attempt every few minutes for hours) at once, and names the
// shortest window that reached its threshold (details.window_s). A few typos
// before a good login stay below every threshold. A login.succeeded for a
// subject that is at or over a threshold is a second finding
// (details.outcome "succeeded", key: the subject and "succeeded", one
// severity level higher): the guessing may have worked.
//
// The evidence counts the distinct source networks (details.networks, the
// ip_prefixes the failures came from) and the successful logins seen in the
// window (details.successes): slow guessing rotates over few networks and
// rarely succeeds.
//
// Anonymous networks are evidence: details.anonymous_failures counts the
// failures in the window that came from an anonymous network (VPN, hosting,
// Tor exit, proxy: the anonymous-IP database's classes, listed in
// details.anonymous_classes), and a successful login after the guessing
// that itself comes from one (details.login_anonymity) is raised one more
// level: whoever guessed the password is hiding where they log in from.
type BruteForce struct {
	cfg      BruteForceConfig
	windows  []CountWindow // the short window first, then the long ones
	horizon  int64         // ms, the longest window
	keep     int           // failures kept per subject: the largest threshold
	subjects *keyTable[failures]
}

var _ Detector = (*BruteForce)(nil)

// failures are a subject's recent failed logins, oldest first, at most the
// largest threshold of them. A subject under attack holds up to 25 of them
// by default, so they are packed: a failure is 8 bytes, and the event IDs
// of the newest (at most Threshold, aligned to the end of fails) are one
// string, joined by spaces (event IDs have none).
type failures struct {
	fails []failure
	ids   string
	// succ are the times of the newest successful logins (at most
	// maxKeptSuccesses), for the evidence.
	succ []int64
	// alerted is the time of the failure that last raised a finding (0:
	// none). The long windows count only failures after it, so that the
	// failures of a burst already reported are not reported again, an
	// hour later, when the owner mistypes once.
	alerted int64
}

// failure is one failed login: its time in Unix ms (44 bits, until the
// year 2527), a 12-bit hash of its ip_prefix (0: none) and its network's
// anonymous-network classes (8 bits).
type failure uint64

func newFailure(at int64, c *schemas.Client) failure {
	var net uint64
	if c != nil && c.IPPrefix != "" {
		net = pseudonymHash(c.IPPrefix)&0xfff | 1
	}
	return failure(uint64(at)<<20 | net<<8 | uint64(anonymityOf(c)))
}

func (f failure) at() int64               { return int64(f >> 20) }
func (f failure) net() uint16             { return uint16(f>>8) & 0xfff }
func (f failure) anon() schemas.Anonymity { return schemas.Anonymity(f) }

// idList returns the event IDs kept.
func (f failures) idList() []string {
	if f.ids == "" {
		return nil
	}
	return strings.Split(f.ids, " ")
}

// maxKeptSuccesses bounds the successful logins a subject keeps.
const maxKeptSuccesses = 4

// last is the newest failure: successes alone keep no subject.
func (f failures) last() int64 { return f.fails[len(f.fails)-1].at() }

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
	long := make([]Duration, len(cfg.LongWindows))
	for i, w := range cfg.LongWindows {
		long[i] = w.Window
		if w.Threshold < 2 || w.Threshold > maxBruteForceThreshold {
			errs = append(errs, fmt.Errorf("detectors.%s.long_windows[%d].threshold: must be between 2 and %d (got %d)", bruteForceName, i, maxBruteForceThreshold, w.Threshold))
		}
	}
	errs = append(errs, checkLongWindows(bruteForceName, cfg.Window, long)...)
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", bruteForceName, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	windows := append([]CountWindow{{Window: cfg.Window, Threshold: cfg.Threshold}}, cfg.LongWindows...)
	d := &BruteForce{cfg: cfg, windows: windows, subjects: newKeyTable(cfg.MaxKeys, failures.last)}
	for _, w := range windows {
		d.horizon = max(d.horizon, w.Window.D().Milliseconds())
		d.keep = max(d.keep, w.Threshold)
	}
	return d, nil
}

// checkLongWindows checks a detector's long_windows: at most
// maxLongWindows, each longer than the short window and the one before.
func checkLongWindows(detector string, short Duration, long []Duration) []error {
	var errs []error
	if len(long) > maxLongWindows {
		errs = append(errs, fmt.Errorf("detectors.%s.long_windows: at most %d (got %d)", detector, maxLongWindows, len(long)))
	}
	prev := short
	for i, w := range long {
		if w <= prev {
			errs = append(errs, fmt.Errorf("detectors.%s.long_windows[%d].window: must be longer than %s (got %s)", detector, i, prev.D(), w.D()))
		}
		prev = max(prev, w)
	}
	return errs
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
		at := e.Time.UnixMilli()
		w, lo, hi, over := d.over(f, at, 0)
		f.succ = append(growTo(f.succ, maxKeptSuccesses+1), at)
		if len(f.succ) > maxKeptSuccesses {
			f.succ = slices.Delete(f.succ, 0, 1)
		}
		d.subjects.put(e.Subject, f)
		if over {
			emit(d.alert(e, f, w, lo, hi, true))
		}
	}
}

func (d *BruteForce) failed(e *schemas.Event, emit Emit) {
	at := e.Time.UnixMilli()
	f, _ := d.subjects.get(e.Subject)
	ids := f.idList()
	if slices.Contains(ids, e.ID) {
		return // the same event delivered twice
	}
	// Failures older than the longest window can no longer count.
	drop := 0
	for drop < len(f.fails) && f.fails[drop].at() <= at-d.horizon {
		drop++
	}
	if drop == 0 && len(f.fails) == d.keep {
		drop = 1
	}
	if drop > 0 {
		f.fails = slices.Delete(f.fails, 0, drop)
		if n := len(ids) - len(f.fails); n > 0 {
			ids = ids[n:]
		}
	}
	// Events arrive in time order except late ones: insert in place.
	i := len(f.fails)
	for i > 0 && f.fails[i-1].at() > at {
		i--
	}
	f.fails = slices.Insert(growTo(f.fails, d.keep), i, newFailure(at, e.Client))
	if j := i - (len(f.fails) - 1 - len(ids)); j >= 0 {
		ids = slices.Insert(ids, j, e.ID)
		ids = ids[max(0, len(ids)-d.cfg.Threshold):]
	}
	f.ids = strings.Join(ids, " ")
	d.subjects.put(e.Subject, f)
	// The windows that end at this failure or, for a late one, at a
	// newer failure are the ones it can fill.
	for j := i; j < len(f.fails); j++ {
		if w, lo, hi, ok := d.over(f, f.fails[j].at(), f.alerted); ok {
			f.alerted = max(f.alerted, f.fails[j].at())
			d.subjects.put(e.Subject, f)
			emit(d.alert(e, f, w, lo, hi, false))
			return
		}
	}
}

// over returns the shortest window that holds at least its threshold of
// failures up to at (inclusive), and their index range; the long windows
// count only failures after since.
func (d *BruteForce) over(f failures, at, since int64) (w CountWindow, lo, hi int, ok bool) {
	hi = len(f.fails)
	for hi > 0 && f.fails[hi-1].at() > at {
		hi--
	}
	for i, w := range d.windows {
		from := at - w.Window.D().Milliseconds()
		if i > 0 {
			from = max(from, since)
		}
		lo := hi
		for lo > 0 && f.fails[lo-1].at() > from {
			lo--
		}
		if hi-lo >= w.Threshold {
			return w, lo, hi, true
		}
	}
	return CountWindow{}, 0, 0, false
}

func (d *BruteForce) alert(e *schemas.Event, f failures, w CountWindow, lo, hi int, succeeded bool) schemas.Alert {
	n, first := hi-lo, f.fails[lo].at()
	span := time.Duration(max(e.Time.UnixMilli(), f.fails[hi-1].at())-first) * time.Millisecond
	// The event IDs kept are those of the newest failures.
	ids := f.idList()
	idLo := len(f.fails) - len(ids)
	evidence := ids[max(lo, idLo)-idLo : max(hi, idLo)-idLo]
	nets := make(map[uint16]struct{}, 4)
	var anonN int
	var anon schemas.Anonymity
	for _, fl := range f.fails[lo:hi] {
		if fl.net() != 0 {
			nets[fl.net()] = struct{}{}
		}
		if a := fl.anon(); a != 0 {
			anonN++
			anon |= a
		}
	}
	successes := 0
	for _, s := range f.succ {
		if s > e.Time.UnixMilli()-w.Window.D().Milliseconds() {
			successes++
		}
	}
	details := map[string]any{
		"failures":      n,
		"threshold":     w.Threshold,
		"window_s":      w.Window.D().Milliseconds() / 1000,
		"first_failure": msTime(first),
		"outcome":       "failing",
		"networks":      len(nets), // distinct ip_prefixes (by a 12-bit hash)
		"successes":     successes,
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
			n, durationText(span), w.Threshold, durationText(w.Window.D())),
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
			n, durationText(span), w.Threshold, durationText(w.Window.D()))
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

// growTo makes room for one more element in s, growing its capacity no
// further than limit (a failed login adds one to a slice that is cut back
// to at most limit-1 right after), so that a subject under attack holds no
// spare capacity beyond its caps.
func growTo[T any](s []T, limit int) []T {
	if len(s) < cap(s) {
		return s
	}
	out := make([]T, len(s), max(len(s)+1, min(limit, max(4, 2*cap(s)))))
	copy(out, s)
	return out
}

// Expire forgets subjects whose last failure left the longest window.
func (d *BruteForce) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.horizon
	d.subjects.dropOlder(cutoff+1, func(f failures) bool { return f.last() <= cutoff })
}

// Forget drops subject's failures.
func (d *BruteForce) Forget(subject string) { d.subjects.delete(subject) }

// StateKeys returns the number of subjects tracked.
func (d *BruteForce) StateKeys() int { return d.subjects.size() }

// StateHorizon is the longest window.
func (d *BruteForce) StateHorizon() time.Duration { return time.Duration(d.horizon) * time.Millisecond }
