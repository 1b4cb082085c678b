package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Suppression rules (schemas.SuppressionRule) live in the
// schemas.SuppressionBucket key-value bucket. Every detect Service watches
// the bucket (Suppressions.run, one goroutine of Run) and keeps the valid
// rules as an immutable suppressionSet behind an atomic pointer, swapped
// whole on every change: the engine loops read it without a lock, and
// only when an alert is about to be published (sendAlerts), never per
// event. A rule applies while the alert's DetectedAt (the wall clock when
// the engine raised it) lies between the rule's created_at and expires_at,
// so an expired rule stops applying at its expiry without any change to
// the bucket, and an alert re-published after a restart is judged by when
// it was raised.
//
// Anything on the bus may be forged: only sessionmon's own NATS users may
// write $KV (apps may not), but every value read is decoded strictly and
// validated all the same; an invalid one is ignored (the key then has no
// rule), logged and counted in
// sessionmon_detect_suppression_rules_invalid_total. Rules carry no MAC:
// the dashboard's record key is the dashboard's alone, and whoever could
// forge a rule with sessionmon's NATS credentials could as well publish
// alerts or delete them.

// maxSuppressionValue bounds a rule's JSON (the bucket's MaxValueSize, in
// case the bucket was declared by someone else).
const maxSuppressionValue = 16 << 10

// maxSuppressionRules bounds the rules held: more are ignored (and
// counted as invalid), so a flood of keys cannot grow detect's memory
// without limit.
const maxSuppressionRules = 10000

// suppressionSet is an immutable set of valid suppression rules, indexed
// by detector. Never modified once published through the atomic pointer.
type suppressionSet struct {
	byDetector map[string][]*schemas.SuppressionRule
	// all are the rules for every detector ("*").
	all []*schemas.SuppressionRule
}

// newSuppressionSet indexes rules (which must be valid).
func newSuppressionSet(rules map[string]*schemas.SuppressionRule) *suppressionSet {
	s := &suppressionSet{byDetector: make(map[string][]*schemas.SuppressionRule)}
	for _, r := range rules {
		if r.Detector == schemas.SuppressAllDetectors {
			s.all = append(s.all, r)
		} else {
			s.byDetector[r.Detector] = append(s.byDetector[r.Detector], r)
		}
	}
	byID := func(a, b *schemas.SuppressionRule) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	}
	slices.SortFunc(s.all, byID)
	for _, rs := range s.byDetector {
		slices.SortFunc(rs, byID)
	}
	return s
}

// len returns how many rules s holds.
func (s *suppressionSet) len() int {
	if s == nil {
		return 0
	}
	n := len(s.all)
	for _, rs := range s.byDetector {
		n += len(rs)
	}
	return n
}

// match returns the rule that applies to a at t, or nil. Of several, a
// silence wins over a lower, and of several lowers the lowest target
// severity; ties go to the smallest id, so every process picks the same.
// A lower whose severity is not below a's applies not at all.
func (s *suppressionSet) match(a *schemas.Alert, t time.Time) *schemas.SuppressionRule {
	if s == nil {
		return nil
	}
	var best *schemas.SuppressionRule
	consider := func(rs []*schemas.SuppressionRule) {
		for _, r := range rs {
			if !r.Active(t) || !r.Matches(a) {
				continue
			}
			if r.Action == schemas.SuppressLower && r.Severity.Rank() >= a.Severity.Rank() {
				continue
			}
			if best == nil || better(r, best) {
				best = r
			}
		}
	}
	consider(s.byDetector[a.Detector])
	consider(s.all)
	return best
}

// better reports whether rule r beats rule o when both match.
func better(r, o *schemas.SuppressionRule) bool {
	if (r.Action == schemas.SuppressSilence) != (o.Action == schemas.SuppressSilence) {
		return r.Action == schemas.SuppressSilence
	}
	if r.Action == schemas.SuppressLower && r.Severity != o.Severity {
		return r.Severity.Rank() < o.Severity.Rank()
	}
	return r.ID < o.ID
}

// apply marks a when a rule of s applies to it: it sets a.Suppression and,
// for lower, lowers a.Severity. An alert already marked (a retry, a
// snapshot's in-flight alert) is left as it is. It reports whether a is
// marked by this call.
func (s *suppressionSet) apply(a *schemas.Alert) bool {
	if a.Suppression != nil {
		return false
	}
	t := a.DetectedAt.Time
	if t.IsZero() {
		t = time.Now()
	}
	r := s.match(a, t)
	if r == nil {
		return false
	}
	a.Suppression = &schemas.AlertSuppression{Rule: r.ID, Action: r.Action}
	if r.Action == schemas.SuppressLower {
		a.Suppression.OriginalSeverity = a.Severity
		a.Severity = r.Severity
	}
	return true
}

// suppressionMetrics are the metrics of the suppression rules.
type suppressionMetrics struct {
	suppressed *prometheus.CounterVec
	invalid    prometheus.Counter
	rules      prometheus.Gauge
}

func newSuppressionMetrics() suppressionMetrics {
	return suppressionMetrics{
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionmon_detect_alerts_suppressed_total",
			Help: "Alerts published marked by a suppression rule, by detector and action (silence: sent to no webhook; lower: severity lowered). Not to be confused with sessionmon_detect_replay_alerts_suppressed_total.",
		}, []string{"detector", "action"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionmon_detect_suppression_rules_invalid_total",
			Help: "Values of the suppression rules bucket that were not valid rules and were ignored.",
		}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessionmon_detect_suppression_rules",
			Help: "Valid suppression rules held (expired ones included until they are deleted).",
		}),
	}
}

func (m suppressionMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.suppressed, m.invalid, m.rules}
}

// suppressions watches the rules bucket and publishes the current
// suppressionSet. Its fields other than cur are owned by the goroutine
// that calls load and run.
type suppressions struct {
	kv      jetstream.KeyValue
	known   map[string]bool
	logger  *slog.Logger
	metrics suppressionMetrics
	// cur is the set in force; read by the engine loops.
	cur atomic.Pointer[suppressionSet]
	// watcher is the open watch; load opens it, run reopens it. rules are
	// the valid rules it has read, by key.
	watcher jetstream.KeyWatcher
	rules   map[string]*schemas.SuppressionRule
}

// newSuppressions returns a watcher of kv's rules for the registered
// detectors.
func newSuppressions(kv jetstream.KeyValue, logger *slog.Logger, m suppressionMetrics) *suppressions {
	known := make(map[string]bool)
	for _, name := range DetectorNames() {
		known[name] = true
	}
	return &suppressions{kv: kv, known: known, logger: logger, metrics: m}
}

// decodeSuppression decodes and validates the value stored under key.
func (s *suppressions) decodeSuppression(key string, value []byte) (*schemas.SuppressionRule, error) {
	if len(value) > maxSuppressionValue {
		return nil, fmt.Errorf("value of %d bytes exceeds %d", len(value), maxSuppressionValue)
	}
	var r schemas.SuppressionRule
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode: data after the rule")
	}
	if err := r.Validate(func(name string) bool { return s.known[name] }); err != nil {
		return nil, err
	}
	if r.ID != key {
		return nil, fmt.Errorf("id %q differs from its key", r.ID)
	}
	return &r, nil
}

// load opens the watch and reads every current rule, then publishes the
// set: Run calls it before the engines start, so that the alerts of the
// replay are judged by the rules too.
func (s *suppressions) load(ctx context.Context) error {
	w, rules, err := s.open(ctx)
	if err != nil {
		return err
	}
	s.watcher, s.rules = w, rules
	s.publish()
	return nil
}

// open starts a watch of every key and reads the current values, up to
// the end-of-initial-values marker.
func (s *suppressions) open(ctx context.Context) (jetstream.KeyWatcher, map[string]*schemas.SuppressionRule, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("watch suppression rules: %w", err)
	}
	rules := make(map[string]*schemas.SuppressionRule)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, nil, errors.New("watch suppression rules: watch closed")
			}
			if e == nil {
				return w, rules, nil
			}
			s.update(rules, e)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, nil, fmt.Errorf("watch suppression rules: %w", ctx.Err())
		}
	}
}

// update applies one bucket entry to rules.
func (s *suppressions) update(rules map[string]*schemas.SuppressionRule, e jetstream.KeyValueEntry) {
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(rules, key)
		return
	}
	r, err := s.decodeSuppression(key, e.Value())
	if err == nil && len(rules) >= maxSuppressionRules && rules[key] == nil {
		err = fmt.Errorf("more than %d rules", maxSuppressionRules)
	}
	if err != nil {
		// The key's previous rule, if any, is gone from the bucket too.
		delete(rules, key)
		s.metrics.invalid.Inc()
		s.logger.Warn("invalid suppression rule ignored", slog.String("key", key),
			slog.Uint64("revision", e.Revision()), slog.Any("error", err))
		return
	}
	rules[key] = r
}

// publish swaps in a new set made of s.rules.
func (s *suppressions) publish() {
	set := newSuppressionSet(s.rules)
	s.cur.Store(set)
	s.metrics.rules.Set(float64(set.len()))
}

// run applies the bucket's changes as they come until ctx ends, reopening
// the watch (and re-reading every rule) when it closes. It owns and stops
// the watch load opened.
func (s *suppressions) run(ctx context.Context) error {
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		if s.watcher == nil {
			w, fresh, err := s.open(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.logger.Warn("suppression rules watch failed, retrying", slog.Duration("retry_in", bo.Next()), slog.Any("error", err))
				if !bo.Wait(ctx) {
					return nil
				}
				continue
			}
			s.watcher, s.rules = w, fresh
			s.publish()
		}
		if err := s.follow(ctx); err != nil {
			return nil
		}
		// The watch closed (the connection did): the rules in force stay
		// until a new watch has read the bucket again.
		s.logger.Warn("suppression rules watch closed, reopening", slog.Duration("retry_in", bo.Next()))
		if !bo.Wait(ctx) {
			return nil
		}
	}
}

// follow applies the updates of the open watch until it closes (it then
// drops the watch and returns nil) or ctx ends (it stops the watch and
// returns ctx's error).
func (s *suppressions) follow(ctx context.Context) error {
	w := s.watcher
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				s.watcher = nil
				return nil
			}
			if e == nil {
				continue
			}
			s.update(s.rules, e)
			s.publish()
		case <-ctx.Done():
			_ = w.Stop()
			s.watcher = nil
			return ctx.Err()
		}
	}
}

// startSuppressions opens the rules bucket (creating it if need be, with
// the replicas it has or one), reads the current rules, and returns the
// watcher whose run keeps them current.
func (s *Service) startSuppressions(ctx context.Context) (*suppressions, error) {
	kv, err := natsconn.EnsureSuppressionBucket(ctx, s.js, 1)
	if err != nil {
		return nil, err
	}
	sp := newSuppressions(kv, s.logger.With("part", "suppressions"), s.metrics.suppression)
	if err := sp.load(ctx); err != nil {
		return nil, err
	}
	s.suppress.Store(sp)
	return sp, nil
}

// suppressAlert marks a when a suppression rule in force applies to it.
// It is called only for alerts about to be published.
func (s *Service) suppressAlert(a *schemas.Alert) {
	if sp := s.suppress.Load(); sp != nil {
		sp.cur.Load().apply(a)
	}
}
