package detect

import (
	"cmp"
	"errors"
	"fmt"
	"math"
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
	// share (default 100; 0 turns the ASN aggregate off in every window).
	ASNThreshold int `yaml:"asn_threshold"`
	// Window is the short sliding window (default 10m): bursts.
	Window Duration `yaml:"window"`
	// LongWindows are longer windows counted at the same time, each with
	// its own thresholds, for campaigns spread over hours and many
	// networks (default 30 per prefix and 50 per ASN in 2h, 60 and 200 in
	// 24h; an empty list turns them off). Each must be longer than Window
	// and the one before it.
	LongWindows []StuffingWindow `yaml:"long_windows"`
	// MaxSuccessRatio is the largest share of the failing subjects that
	// then logged in successfully from the same source for which an alert
	// is raised (default 0.2): people behind one NAT who mistype a
	// password and then get it right are not an attack.
	MaxSuccessRatio float64 `yaml:"max_success_ratio"`
	// UnknownShare is the share of failures for accounts that do not
	// exist (login.failed with reason unknown_user or unknown_account) at
	// or above which an alert is raised whatever the success ratio
	// (default 0.5; 0 turns it off): leaked lists hold many accounts the
	// app never had.
	UnknownShare float64 `yaml:"unknown_share"`
	// NetworkSeverity is the severity when the source is a configured
	// network (for example a corporate proxy many employees share; default
	// low). Anonymous networks keep Severity.
	NetworkSeverity schemas.Severity `yaml:"network_severity"`
	// MaxKeys caps the sources tracked per aggregate (default 1000000);
	// beyond it the least recently failing are forgotten.
	MaxKeys int `yaml:"max_keys"`
}

// StuffingWindow is a longer window of credential_stuffing and the
// distinct failing subjects within it that raise an alert, per ip_prefix
// and per ASN (0: not counted per ASN).
type StuffingWindow struct {
	Window       Duration `yaml:"window"`
	Threshold    int      `yaml:"threshold"`
	ASNThreshold int      `yaml:"asn_threshold"`
}

func defaultCredentialStuffingConfig() CredentialStuffingConfig {
	return CredentialStuffingConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(time.Hour),
		},
		Threshold:    20,
		ASNThreshold: 100,
		Window:       Duration(10 * time.Minute),
		LongWindows: []StuffingWindow{
			{Window: Duration(2 * time.Hour), Threshold: 30, ASNThreshold: 50},
			{Window: Duration(24 * time.Hour), Threshold: 60, ASNThreshold: 200},
		},
		MaxSuccessRatio: 0.2,
		UnknownShare:    0.5,
		NetworkSeverity: schemas.SeverityLow,
		MaxKeys:         defaultMaxKeys,
	}
}

// Bounds of the credential_stuffing settings: each failing source keeps
// up to the largest of its aggregate's thresholds of subjects (about 64
// bytes each), and an alert lists at most maxStuffingEvidence event IDs.
const (
	maxStuffingThreshold = 10_000
	maxStuffingEvidence  = 100
)

// CredentialStuffing flags one source, an ip_prefix or an ASN of one app,
// from which many distinct subjects fail to log in within a sliding window
// while few of them then log in: a list of leaked credentials tried against
// many accounts. It counts a short window (bursts from one network) and
// longer ones (campaigns that spread a list over many networks of one ASN
// for hours, so that no network fills the short window) at once, and names
// the shortest window that reached its threshold. The ASN is the one GeoIP
// enrichment found for the client's ip_prefix.
//
// A source whose failing subjects mostly log in successfully from it
// afterwards (more than max_success_ratio) is people mistyping passwords
// behind one NAT, and stays quiet unless at least unknown_share of the
// failures were for accounts that do not exist. The alert carries the
// source (key: the source), the window, the counts (distinct subjects,
// distinct /24 networks, the success ratio, the unknown accounts) and the
// failures' event IDs, never a subject. A source on a configured network
// (networks:) is reported at network_severity; a source the anonymous-IP
// database classes as anonymous (VPN, hosting, Tor exit, proxy) keeps the
// severity, and details.network names its classes.
type CredentialStuffing struct {
	cfg      CredentialStuffingConfig
	nets     *Networks
	windows  []StuffingWindow // the short window first, then the long ones
	horizon  int64            // ms, the longest window
	keep     [2]int           // subjects kept per prefix, per ASN
	prefixes *hashTable[stuffing]
	asns     *hashTable[stuffing]
}

var _ Detector = (*CredentialStuffing)(nil)

// stuffing holds the distinct subjects recently failing from one source.
type stuffing struct {
	tries []stuffTry
	last  int64 // Unix ms of the newest failure
	// alerted is the time of the last finding (0: none). The long windows
	// count only failures after it, so that a burst already reported is
	// not reported again when one more account fails an hour later.
	alerted int64
}

// stuffTry is one subject's latest failure from the source.
type stuffTry struct {
	eventID string
	subject uint64 // pseudonymHash of the subject
	at      int64  // Unix ms
	net     uint32 // prefixHash of the ip_prefix
	flags   tryFlags
}

// tryFlags say what is known about a subject failing from a source.
type tryFlags uint8

const (
	// tryUnknown: a failure said the account does not exist.
	tryUnknown tryFlags = 1 << iota
	// trySucceeded: the subject then logged in from the source.
	trySucceeded
)

// aggregates of credential_stuffing, indexes of keep.
const (
	byPrefix = iota
	byASN
)

// NewCredentialStuffing returns the credential_stuffing detector, or an
// error naming every invalid setting. nets classifies networks (nil: none
// known).
func NewCredentialStuffing(cfg CredentialStuffingConfig, nets *Networks) (*CredentialStuffing, error) {
	errs := []error{cfg.Validate(credentialStuffingName)}
	threshold := func(path string, v int, off bool) {
		if (off && v == 0) || (v >= 2 && v <= maxStuffingThreshold) {
			return
		}
		if off {
			errs = append(errs, fmt.Errorf("%s: must be 0 (off) or between 2 and %d (got %d)", path, maxStuffingThreshold, v))
			return
		}
		errs = append(errs, fmt.Errorf("%s: must be between 2 and %d (got %d)", path, maxStuffingThreshold, v))
	}
	prefix := "detectors." + credentialStuffingName
	threshold(prefix+".threshold", cfg.Threshold, false)
	threshold(prefix+".asn_threshold", cfg.ASNThreshold, true)
	if cfg.Window <= 0 {
		errs = append(errs, fmt.Errorf("%s.window: must be positive (got %s)", prefix, cfg.Window.D()))
	}
	long := make([]Duration, len(cfg.LongWindows))
	for i, w := range cfg.LongWindows {
		long[i] = w.Window
		path := fmt.Sprintf("%s.long_windows[%d]", prefix, i)
		threshold(path+".threshold", w.Threshold, false)
		threshold(path+".asn_threshold", w.ASNThreshold, true)
	}
	errs = append(errs, checkLongWindows(credentialStuffingName, cfg.Window, long)...)
	if math.IsNaN(cfg.MaxSuccessRatio) || cfg.MaxSuccessRatio < 0 || cfg.MaxSuccessRatio > 1 {
		errs = append(errs, fmt.Errorf("%s.max_success_ratio: must be between 0 and 1 (got %g)", prefix, cfg.MaxSuccessRatio))
	}
	if math.IsNaN(cfg.UnknownShare) || cfg.UnknownShare < 0 || cfg.UnknownShare > 1 {
		errs = append(errs, fmt.Errorf("%s.unknown_share: must be 0 (off) or up to 1 (got %g)", prefix, cfg.UnknownShare))
	}
	if cfg.NetworkSeverity.Rank() == 0 {
		errs = append(errs, fmt.Errorf("%s.network_severity: must be low, medium, high or critical (got %q)", prefix, cfg.NetworkSeverity))
	}
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("%s.max_keys: must be positive (got %d)", prefix, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	last := func(s stuffing) int64 { return s.last }
	d := &CredentialStuffing{
		cfg:      cfg,
		nets:     nets,
		windows:  append([]StuffingWindow{{Window: cfg.Window, Threshold: cfg.Threshold, ASNThreshold: cfg.ASNThreshold}}, cfg.LongWindows...),
		prefixes: newHashTable(cfg.MaxKeys, last),
		asns:     newHashTable(cfg.MaxKeys, last),
	}
	for i, w := range d.windows {
		if cfg.ASNThreshold == 0 {
			// asn_threshold 0 turns the ASN aggregate off in every window.
			d.windows[i].ASNThreshold = 0
		}
		d.horizon = max(d.horizon, w.Window.D().Milliseconds())
		d.keep[byPrefix] = max(d.keep[byPrefix], w.Threshold)
		d.keep[byASN] = max(d.keep[byASN], d.windows[i].ASNThreshold)
	}
	return d, nil
}

// Name returns "credential_stuffing".
func (d *CredentialStuffing) Name() string { return credentialStuffingName }

// sourceKey identifies one source of one app: the hash of the app and the
// prefix, or of the app and the ASN.
func sourceKey(app, prefix string, asn uint32) uint64 {
	h := pseudonymHash(app)
	if prefix != "" {
		h ^= pseudonymHash(prefix) * 31
	} else {
		h ^= (uint64(asn) + 1) * 0x9e3779b97f4a7c15
	}
	return h
}

// Observe counts the distinct subjects failing per source, and marks those
// that then log in from it.
func (d *CredentialStuffing) Observe(e *schemas.Event, emit Emit) {
	c := e.Client
	if c == nil || (e.Type != schemas.LoginFailed && e.Type != schemas.LoginSucceeded) {
		return
	}
	if e.Type == schemas.LoginSucceeded {
		subject := pseudonymHash(e.Subject)
		if c.IPPrefix != "" {
			d.succeeded(d.prefixes, sourceKey(e.App, c.IPPrefix, 0), subject)
		}
		if c.ASN != 0 && d.keep[byASN] > 0 {
			d.succeeded(d.asns, sourceKey(e.App, "", c.ASN), subject)
		}
		return
	}
	if c.IPPrefix != "" {
		d.count(e, d.prefixes, sourceKey(e.App, c.IPPrefix, 0), byPrefix, emit)
	}
	if c.ASN != 0 && d.keep[byASN] > 0 {
		d.count(e, d.asns, sourceKey(e.App, "", c.ASN), byASN, emit)
	}
}

// succeeded marks subject's failures from the source as followed by a
// successful login.
func (d *CredentialStuffing) succeeded(t *hashTable[stuffing], key, subject uint64) {
	s, ok := t.get(key)
	if !ok {
		return
	}
	for i := range s.tries {
		if s.tries[i].subject == subject {
			s.tries[i].flags |= trySucceeded
		}
	}
}

// unknownAccount reports whether a login.failed says the account does not
// exist.
func unknownAccount(reason string) bool {
	return reason == "unknown_user" || reason == "unknown_account"
}

func (d *CredentialStuffing) count(e *schemas.Event, t *hashTable[stuffing], key uint64, agg int, emit Emit) {
	at := e.Time.UnixMilli()
	subject := pseudonymHash(e.Subject)
	s, _ := t.get(key)
	for _, tr := range s.tries {
		if tr.eventID == e.ID && tr.subject == subject {
			return // the same event delivered twice
		}
	}
	tries := s.tries[:0]
	found := false
	for _, tr := range s.tries {
		if tr.at <= at-d.horizon {
			continue
		}
		if tr.subject == subject {
			found = true
			if at >= tr.at {
				tr.at, tr.eventID, tr.net = at, e.ID, prefixHash(e.Client)
				// A new failure after a success starts over.
				tr.flags &^= trySucceeded
			}
			if unknownAccount(e.Reason) {
				tr.flags |= tryUnknown
			}
		}
		tries = append(tries, tr)
	}
	clear(s.tries[len(tries):])
	if !found {
		tr := stuffTry{eventID: e.ID, subject: subject, at: at, net: prefixHash(e.Client)}
		if unknownAccount(e.Reason) {
			tr.flags |= tryUnknown
		}
		tries = append(tries, tr)
		if len(tries) > d.keep[agg] {
			// Keep the most recent subjects.
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
	if found {
		return
	}
	for i, w := range d.windows {
		threshold := w.Threshold
		if agg == byASN {
			threshold = w.ASNThreshold
		}
		if threshold == 0 || len(tries) < threshold {
			continue
		}
		from := at - w.Window.D().Milliseconds()
		if i > 0 {
			from = max(from, s.alerted)
		}
		if st, ok := d.judge(tries, from, at, threshold); ok {
			s.alerted = max(s.alerted, at)
			t.put(key, s)
			emit(d.alert(e, st, w.Window.D(), threshold, agg))
			return
		}
	}
}

// stuffStats are the counts of one source within one window.
type stuffStats struct {
	tries     []stuffTry // within the window, oldest first
	succeeded int
	unknown   int
	networks  int
}

// judge counts the tries after from up to at and reports whether they are
// an attack: at least threshold subjects, few of whom then logged in, or
// many of whom do not exist.
func (d *CredentialStuffing) judge(all []stuffTry, from, at int64, threshold int) (stuffStats, bool) {
	n := 0
	for _, tr := range all {
		if tr.at > from && tr.at <= at {
			n++
		}
	}
	if n < threshold {
		return stuffStats{}, false
	}
	st := stuffStats{tries: make([]stuffTry, 0, n)}
	nets := make(map[uint32]struct{}, 8)
	for _, tr := range all {
		if tr.at <= from || tr.at > at {
			continue
		}
		st.tries = append(st.tries, tr)
		if tr.flags&trySucceeded != 0 {
			st.succeeded++
		}
		if tr.flags&tryUnknown != 0 {
			st.unknown++
		}
		if tr.net != 0 {
			nets[tr.net] = struct{}{}
		}
	}
	st.networks = len(nets)
	ratio := float64(st.succeeded) / float64(n)
	unknown := d.cfg.UnknownShare > 0 && float64(st.unknown)/float64(n) >= d.cfg.UnknownShare
	return st, ratio <= d.cfg.MaxSuccessRatio || unknown
}

func (d *CredentialStuffing) alert(e *schemas.Event, st stuffStats, window time.Duration, threshold, agg int) schemas.Alert {
	tries := st.tries
	slices.SortFunc(tries, func(a, b stuffTry) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.eventID, b.eventID)) })
	shown := tries[max(0, len(tries)-maxStuffingEvidence):]
	evidence := make([]string, len(shown))
	for i, tr := range shown {
		evidence[i] = tr.eventID
	}
	span := time.Duration(tries[len(tries)-1].at-tries[0].at) * time.Millisecond
	src := &schemas.Source{IPPrefix: e.Client.IPPrefix}
	by, name := "ip_prefix", e.Client.IPPrefix
	if agg == byASN {
		src = &schemas.Source{ASN: e.Client.ASN}
		by, name = "asn", "AS"+strconv.FormatUint(uint64(e.Client.ASN), 10)
	}
	n := len(tries)
	details := map[string]any{
		"by":                by,
		"distinct_subjects": n,
		"threshold":         threshold,
		"window_s":          int64(window / time.Second),
		"first_failure":     msTime(tries[0].at),
		"networks":          st.networks,
		"succeeded":         st.succeeded,
		"success_ratio":     math.Round(float64(st.succeeded)/float64(n)*1000) / 1000,
		"unknown_accounts":  st.unknown,
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
	summary := fmt.Sprintf("%d different accounts failed to log in from %s in %s (threshold %d in %s).",
		n, name, durationText(span), threshold, durationText(window))
	if agg == byASN {
		summary = fmt.Sprintf("%d different accounts failed to log in from %d networks of %s in %s (threshold %d in %s).",
			n, st.networks, name, durationText(span), threshold, durationText(window))
	}
	return schemas.Alert{
		Detector: credentialStuffingName,
		Severity: sev,
		Time:     e.Time,
		App:      e.App,
		Source:   src,
		Title:    "Credential stuffing",
		Summary:  summary,
		Details:  details,
		Evidence: evidence,
		Key:      by + ":" + name,
	}
}

// prefixHash identifies c's ip_prefix in 4 bytes (0: none).
func prefixHash(c *schemas.Client) uint32 {
	if c == nil || c.IPPrefix == "" {
		return 0
	}
	return uint32(pseudonymHash(c.IPPrefix)) | 1
}

// Expire forgets sources whose last failure left the longest window.
func (d *CredentialStuffing) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.horizon
	drop := func(s stuffing) bool { return s.last <= cutoff }
	d.prefixes.dropOlder(cutoff+1, drop)
	d.asns.dropOlder(cutoff+1, drop)
}

// Forget drops subject from every source.
func (d *CredentialStuffing) Forget(subject string) {
	h := pseudonymHash(subject)
	for _, t := range []*hashTable[stuffing]{d.prefixes, d.asns} {
		for k, s := range t.m {
			s.tries = slices.DeleteFunc(s.tries, func(tr stuffTry) bool { return tr.subject == h })
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

// StateHorizon is the longest window.
func (d *CredentialStuffing) StateHorizon() time.Duration {
	return time.Duration(d.horizon) * time.Millisecond
}
