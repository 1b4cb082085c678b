package detect

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const credentialStuffingName = "credential_stuffing"

// CredentialStuffingConfig configures the credential_stuffing detector.
type CredentialStuffingConfig struct {
	Common `yaml:",inline"`
	// Threshold is how many distinct subjects failing to log in from one
	// ip_prefix within Window raise an alert (default 20).
	Threshold int `yaml:"threshold"`
	// ASNThreshold is the same for one ASN, which many unrelated users
	// share (default 100; 0 turns the ASN check off).
	ASNThreshold int `yaml:"asn_threshold"`
	// Window is the sliding window (default 10m).
	Window Duration `yaml:"window"`
	// NetworkSeverity is the severity when the source is a configured
	// network (for example a corporate proxy many employees share; default
	// low). Anonymous networks keep Severity.
	NetworkSeverity schemas.Severity `yaml:"network_severity"`
	// MaxKeys caps the sources tracked (default 1000000); beyond it the
	// least recently failing are forgotten.
	MaxKeys int `yaml:"max_keys"`
}

func defaultCredentialStuffingConfig() CredentialStuffingConfig {
	return CredentialStuffingConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(time.Hour),
		},
		Threshold:       20,
		ASNThreshold:    100,
		Window:          Duration(10 * time.Minute),
		NetworkSeverity: schemas.SeverityLow,
		MaxKeys:         defaultMaxKeys,
	}
}

// maxStuffingThreshold bounds the thresholds: each failing source keeps
// that many subjects.
const maxStuffingThreshold = 10_000

// CredentialStuffing flags one source, an ip_prefix or an ASN, from which
// many distinct subjects fail to log in within a sliding window: a list of
// leaked credentials tried against many accounts. The alert carries the
// source (key: the source). A source on a configured network (networks:)
// is reported at network_severity; a source the anonymous-IP database
// classes as anonymous (VPN, hosting, Tor exit, proxy) keeps the severity,
// and details.network names its classes.
type CredentialStuffing struct {
	cfg      CredentialStuffingConfig
	nets     *Networks
	window   int64 // ms
	prefixes *keyTable[stuffing]
	asns     *keyTable[stuffing]
}

var _ Detector = (*CredentialStuffing)(nil)

// stuffing holds the distinct subjects recently failing from one source.
type stuffing struct {
	tries []stuffTry
	last  int64 // Unix ms of the newest failure
}

// stuffTry is one subject's latest failure from the source.
type stuffTry struct {
	subject string
	eventID string
	at      int64 // Unix ms
}

// NewCredentialStuffing returns the credential_stuffing detector, or an
// error naming every invalid setting. nets classifies networks (nil: none
// known).
func NewCredentialStuffing(cfg CredentialStuffingConfig, nets *Networks) (*CredentialStuffing, error) {
	errs := []error{cfg.Validate(credentialStuffingName)}
	if cfg.Threshold < 2 || cfg.Threshold > maxStuffingThreshold {
		errs = append(errs, fmt.Errorf("detectors.%s.threshold: must be between 2 and %d (got %d)", credentialStuffingName, maxStuffingThreshold, cfg.Threshold))
	}
	if cfg.ASNThreshold != 0 && (cfg.ASNThreshold < 2 || cfg.ASNThreshold > maxStuffingThreshold) {
		errs = append(errs, fmt.Errorf("detectors.%s.asn_threshold: must be 0 (off) or between 2 and %d (got %d)", credentialStuffingName, maxStuffingThreshold, cfg.ASNThreshold))
	}
	if cfg.Window <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.window: must be positive (got %s)", credentialStuffingName, cfg.Window.D()))
	}
	if cfg.NetworkSeverity.Rank() == 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.network_severity: must be low, medium, high or critical (got %q)", credentialStuffingName, cfg.NetworkSeverity))
	}
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", credentialStuffingName, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	last := func(s stuffing) int64 { return s.last }
	return &CredentialStuffing{
		cfg:      cfg,
		nets:     nets,
		window:   cfg.Window.D().Milliseconds(),
		prefixes: newKeyTable(cfg.MaxKeys, last),
		asns:     newKeyTable(cfg.MaxKeys, last),
	}, nil
}

// Name returns "credential_stuffing".
func (d *CredentialStuffing) Name() string { return credentialStuffingName }

// Observe counts the distinct subjects failing per source.
func (d *CredentialStuffing) Observe(e *schemas.Event, emit Emit) {
	c := e.Client
	if e.Type != schemas.LoginFailed || c == nil {
		return
	}
	if c.IPPrefix != "" {
		d.count(e, d.prefixes, c.IPPrefix, d.cfg.Threshold, &schemas.Source{IPPrefix: c.IPPrefix}, emit)
	}
	if c.ASN != 0 && d.cfg.ASNThreshold > 0 {
		d.count(e, d.asns, "AS"+strconv.FormatUint(uint64(c.ASN), 10), d.cfg.ASNThreshold, &schemas.Source{ASN: c.ASN}, emit)
	}
}

func (d *CredentialStuffing) count(e *schemas.Event, t *keyTable[stuffing], key string, threshold int, src *schemas.Source, emit Emit) {
	at := e.Time.UnixMilli()
	s, _ := t.get(key)
	tries := s.tries[:0]
	found := false
	for _, tr := range s.tries {
		if tr.at <= at-d.window {
			continue
		}
		if tr.subject == e.Subject {
			found = true
			if at >= tr.at {
				tr.at, tr.eventID = at, e.ID
			}
		}
		tries = append(tries, tr)
	}
	clear(s.tries[len(tries):])
	if !found {
		tries = append(tries, stuffTry{subject: e.Subject, eventID: e.ID, at: at})
		if len(tries) > threshold {
			// Keep the most recent threshold subjects.
			oldest := 0
			for i, tr := range tries {
				if tr.at < tries[oldest].at {
					oldest = i
				}
			}
			tries = slices.Delete(tries, oldest, oldest+1)
		}
	}
	s.tries, s.last = tries, max(s.last, at)
	t.put(key, s)
	if found || len(tries) < threshold {
		return
	}
	emit(d.alert(e, s, key, threshold, src))
}

func (d *CredentialStuffing) alert(e *schemas.Event, s stuffing, key string, threshold int, src *schemas.Source) schemas.Alert {
	tries := slices.Clone(s.tries)
	slices.SortFunc(tries, func(a, b stuffTry) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.eventID, b.eventID)) })
	evidence := make([]string, len(tries))
	for i, tr := range tries {
		evidence[i] = tr.eventID
	}
	span := time.Duration(tries[len(tries)-1].at-tries[0].at) * time.Millisecond
	by, name := "ip_prefix", src.IPPrefix
	if src.ASN != 0 {
		by, name = "asn", key
	}
	details := map[string]any{
		"by":                by,
		"distinct_subjects": len(tries),
		"threshold":         threshold,
		"window_s":          d.window / 1000,
		"first_failure":     msTime(tries[0].at),
	}
	sev := d.cfg.Severity
	if net, ok := d.nets.classify(e.Client, e.Time.Time); ok {
		// Many users share a configured network, so its failures are
		// less telling; an anonymous network (hosting, proxies, Tor) is
		// where stuffing tools run from, so it keeps the severity.
		if net.kind != NetworkAnonymous {
			sev = d.cfg.NetworkSeverity
		}
		details["network"] = net.details()
	}
	return schemas.Alert{
		Detector: credentialStuffingName,
		Severity: sev,
		Time:     e.Time,
		App:      e.App,
		Source:   src,
		Title:    "Credential stuffing",
		Summary: fmt.Sprintf("%d different accounts failed to log in from %s in %s (threshold %d in %s).",
			len(tries), name, durationText(span), threshold, durationText(d.cfg.Window.D())),
		Details:  details,
		Evidence: evidence,
		Key:      by + ":" + name,
	}
}

// Expire forgets sources whose last failure left the window.
func (d *CredentialStuffing) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.window
	drop := func(s stuffing) bool { return s.last <= cutoff }
	d.prefixes.dropOlder(cutoff+1, drop)
	d.asns.dropOlder(cutoff+1, drop)
}

// Forget drops subject from every source.
func (d *CredentialStuffing) Forget(subject string) {
	for _, t := range []*keyTable[stuffing]{d.prefixes, d.asns} {
		for k, s := range t.m {
			s.tries = slices.DeleteFunc(s.tries, func(tr stuffTry) bool { return tr.subject == subject })
			if len(s.tries) == 0 {
				t.delete(k)
				continue
			}
			t.m[k] = s
		}
	}
}

// StateKeys returns the number of sources tracked.
func (d *CredentialStuffing) StateKeys() int { return d.prefixes.size() + d.asns.size() }

// StateHorizon is the window.
func (d *CredentialStuffing) StateHorizon() time.Duration { return d.cfg.Window.D() }
