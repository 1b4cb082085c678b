package detect

import (
	"time"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/schemas"
)

// Engine bounds.
const (
	// expireEvery is how much event time passes between two sweeps of
	// expired state. Detectors check their windows on use, so a later
	// sweep only keeps state a little longer; sweeping walks every table.
	expireEvery = 5 * time.Minute
	// maxDedupKeys bounds the dedup table; beyond it the oldest findings
	// are forgotten first.
	maxDedupKeys = 1 << 20
)

// Engine runs detectors over a stream of events in event time. It holds
// events in a reorder buffer (a min-heap by event time, then event id) and
// releases them to the detectors once they are older than the newest event
// time seen minus the lateness window, so events that arrive out of order by
// less than that window are seen in order. An event older than the release
// watermark (later than the lateness window) is still processed at once,
// not dropped, and counted as late. The engine stamps each alert's ID, DetectedAt,
// Technique and RuleVersion (from the registry's Rule), fills its
// Severity from the detector's settings when the detector left it empty,
// and drops a repeat of the same finding (detector and Key) within the
// detector's dedup window, in event time.
//
// Restarts: the engine's state lives in memory; the streaming service
// saves it whole in snapshots and restores it (snapshot.go), then replays
// the events stored after the snapshot (event sourcing), or, without a
// snapshot, replays recent events. Alert ids are deterministic (detector,
// key and triggering event id), so an engine created with
// WithAlreadyAlerted and/or WithAlertCutoff and fed the last hours of events
// rebuilds both the detectors' state and its dedup table without alerting
// again what was alerted before the restart.
//
// An Engine is not safe for concurrent use: one goroutine owns it, and it
// starts none.
type Engine struct {
	dets     []Detector
	settings []Common
	emits    []Emit

	lateness   int64 // ns
	maxPending int
	clock      func() time.Time
	suppress   []func(schemas.Alert) bool
	geo        *geo.Resolver
	// offline is RunOffline's running counts (WithOfflineCounters).
	offline *OfflineCounters

	pending   eventHeap
	maxSeen   int64 // newest event time seen, ns
	watermark int64 // every event at or before it has been released
	started   bool
	lastSweep int64

	cur   *schemas.Event // the event being observed
	keys  *eventKeys     // cur's pseudonym hashes, shared with the detectors
	out   []schemas.Alert
	dedup *keyTable[dedupEntry]
	stats Stats
}

// Stats counts what the engine did.
type Stats struct {
	// Events is every event given to Process.
	Events int64 `json:"events"`
	// Late events were older than the release watermark when they
	// arrived (later than the lateness window) and were processed at
	// once, possibly out of order.
	Late int64 `json:"late"`
	// Future events were dated more than the lateness window ahead of
	// the engine's clock: they wait in the buffer without moving the
	// watermark.
	Future int64 `json:"future"`
	// Alerts were returned.
	Alerts int64 `json:"alerts"`
	// Duplicates are alerts dropped as repeats within a dedup window.
	Duplicates int64 `json:"duplicates"`
	// Suppressed are alerts dropped as already alerted before a restart.
	Suppressed int64 `json:"suppressed"`
	// Pending events wait in the reorder buffer.
	Pending int `json:"pending"`
	// StateKeys is the number of keys the detectors hold (those that
	// report it) plus the dedup table: a size estimate.
	StateKeys int `json:"state_keys"`
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the wall clock (default time.Now): it dates alerts
// (DetectedAt) and keeps events dated ahead of it from moving the
// watermark. Detection itself uses event time only.
func WithClock(clock func() time.Time) Option {
	return func(e *Engine) { e.clock = clock }
}

// WithGeo enriches every event from the GeoIP databases before the
// detectors see it (geo.Resolver.Enrich, the same enrichment ingest stores):
// location, network and anonymous-network classes for events that carry
// only an ip_prefix, as the SDK sends them. Without it, or with a disabled
// Resolver, the detectors see what the app sent.
func WithGeo(r *geo.Resolver) Option {
	return func(e *Engine) { e.geo = r }
}

// WithAlreadyAlerted suppresses alerts whose id alerted reports as already
// sent (for example, found in the alerts store), while still recording them
// for deduplication: for rebuilding state after a restart.
func WithAlreadyAlerted(alerted func(id string) bool) Option {
	return func(e *Engine) {
		e.suppress = append(e.suppress, func(a schemas.Alert) bool { return alerted(a.ID) })
	}
}

// WithAlertCutoff suppresses alerts whose event time is before cutoff (the
// point up to which alerts were already sent), while still recording them
// for deduplication: for rebuilding state after a restart.
func WithAlertCutoff(cutoff time.Time) Option {
	return func(e *Engine) {
		e.suppress = append(e.suppress, func(a schemas.Alert) bool { return a.Time.Before(cutoff) })
	}
}

// StateSizer is implemented by detectors that can count the keys they
// hold, for Stats.
type StateSizer interface {
	// StateKeys returns the number of keys (subjects, sessions, tokens,
	// sources) the detector holds.
	StateKeys() int
}

// StateHorizoner is implemented by detectors that can say how far back in
// event time their state reaches, for ReplayWindow.
type StateHorizoner interface {
	// StateHorizon is the longest time an event can matter to a later
	// finding of the detector.
	StateHorizon() time.Duration
}

// ReplayWindow returns how much recent history to replay on start to
// rebuild the state of every detector (those that report it) and the dedup
// windows; sources keep less (the events stream's max_age), so replay
// min(ReplayWindow, what the source has).
func (e *Engine) ReplayWindow() time.Duration {
	var w time.Duration
	for i, d := range e.dets {
		w = max(w, e.settings[i].DedupWindow.D())
		if h, ok := d.(StateHorizoner); ok {
			w = max(w, h.StateHorizon())
		}
	}
	return w
}

// NewEngine returns an engine running detectors with cfg's lateness and
// each detector's dedup window and default severity (as cfg configures
// them; a detector that is not registered gets no dedup window).
func NewEngine(cfg Config, detectors []Detector, opts ...Option) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		dets:       detectors,
		lateness:   int64(cfg.Lateness),
		maxPending: cfg.MaxPending,
		clock:      time.Now,
		dedup:      newKeyTable(maxDedupKeys, func(d dedupEntry) int64 { return d.at }),
		keys:       &eventKeys{},
	}
	for i, d := range detectors {
		if k, ok := d.(keySharer); ok {
			k.shareKeys(e.keys)
		}
		c, _, err := detectorSettings(cfg, d.Name())
		if err != nil {
			return nil, err
		}
		e.settings = append(e.settings, c)
		// The registry's rule, not the detector, names the technique
		// and the rule version: one table, nothing to forget.
		rule := ruleOf(d.Name())
		e.emits = append(e.emits, func(a schemas.Alert) {
			a.Technique, a.RuleVersion = rule.Technique, rule.Version
			e.accept(i, a)
		})
	}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Process takes one event and returns the alerts raised by the events it
// released (usually none). The event must not be modified afterwards.
func (e *Engine) Process(ev *schemas.Event) []schemas.Alert {
	e.stats.Events++
	e.geo.Enrich(ev.Client)
	at := ev.Time.UnixNano()
	if !e.started {
		e.started = true
		first := min(at, e.clock().UnixNano())
		e.maxSeen, e.watermark, e.lastSweep = first, first-e.lateness-1, first
	}
	if at <= e.watermark {
		if at < e.watermark {
			e.stats.Late++
		}
		e.observe(ev)
	} else {
		e.pending.push(pendingEvent{at: at, e: ev})
		if limit := e.clock().UnixNano() + e.lateness; at > limit {
			// A skewed app clock must not move the watermark ahead
			// of real time: that would expire everyone's state and
			// make every other event late. The event waits.
			e.stats.Future++
			at = max(limit-e.lateness, e.maxSeen)
		}
		e.maxSeen = max(e.maxSeen, at)
		e.release(e.maxSeen - e.lateness)
		for len(e.pending) > e.maxPending {
			// Over the bound: release early rather than grow.
			e.release(e.pending[0].at)
		}
	}
	e.sweep()
	return e.take()
}

// Flush releases every pending event (at the end of a file, or on
// shutdown) and returns the alerts they raise. Events that arrive after a
// Flush and are older than what it released count as late.
func (e *Engine) Flush() []schemas.Alert {
	for len(e.pending) > 0 {
		p := e.pending.pop()
		e.watermark = max(e.watermark, p.at)
		e.observe(p.e)
	}
	e.maxSeen = max(e.maxSeen, e.watermark)
	e.sweep()
	return e.take()
}

// AdvanceTo releases, in order, every pending event dated at or before t, as
// if the watermark had reached t, and returns the alerts they raise. The
// watermark never moves back, so events dated at or before t that arrive
// afterwards count as late. The streaming service calls it to bound how
// long an event waits in processing time (Service's MaxHold); offline runs
// never do, and stay in pure event-time order.
func (e *Engine) AdvanceTo(t time.Time) []schemas.Alert {
	if !e.started {
		return nil
	}
	e.release(t.UnixNano())
	e.sweep()
	return e.take()
}

// Forget drops everything about subject: each detector's state, its
// pending events and its dedup entries (an erasure request).
func (e *Engine) Forget(subject string) {
	for _, d := range e.dets {
		d.Forget(subject)
	}
	kept := e.pending[:0]
	for _, p := range e.pending {
		if p.e.Subject != subject {
			kept = append(kept, p)
		}
	}
	clear(e.pending[len(kept):])
	e.pending = kept
	e.pending.init()
	e.dedup.dropIf(func(d dedupEntry) bool { return d.subject == subject })
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Pending = len(e.pending)
	s.StateKeys = e.dedup.size()
	for _, d := range e.dets {
		if z, ok := d.(StateSizer); ok {
			s.StateKeys += z.StateKeys()
		}
	}
	return s
}

// Watermark returns the event time up to which every event has been
// released to the detectors.
func (e *Engine) Watermark() time.Time { return time.Unix(0, e.watermark).UTC() }

// release advances the watermark to wm (never back) and observes every
// pending event at or before it, in order.
func (e *Engine) release(wm int64) {
	e.watermark = max(e.watermark, wm)
	for len(e.pending) > 0 && e.pending[0].at <= e.watermark {
		p := e.pending.pop()
		e.observe(p.e)
	}
}

func (e *Engine) observe(ev *schemas.Event) {
	e.cur = ev
	*e.keys = eventKeys{ev: ev}
	for i, d := range e.dets {
		d.Observe(ev, e.emits[i])
	}
	e.cur = nil
	*e.keys = eventKeys{}
}

// eventKeys caches pseudonymHash of the session and subject of the event
// being observed, so that the detectors that key state by them hash each
// once per event rather than once per detector.
type eventKeys struct {
	ev                       *schemas.Event
	session, subject         uint64
	haveSession, haveSubject bool
}

// keySharer is implemented by detectors that read an engine's eventKeys
// (by embedding sharedKeys).
type keySharer interface{ shareKeys(*eventKeys) }

// sharedKeys gives a detector the engine's eventKeys. A detector used
// without an engine, or given another event, hashes as usual.
type sharedKeys struct{ keys *eventKeys }

func (s *sharedKeys) shareKeys(k *eventKeys) { s.keys = k }

// sessionKey is pseudonymHash(e.Session).
func (s *sharedKeys) sessionKey(e *schemas.Event) uint64 {
	k := s.keys
	if k == nil || k.ev != e {
		return pseudonymHash(e.Session)
	}
	if !k.haveSession {
		k.session, k.haveSession = pseudonymHash(e.Session), true
	}
	return k.session
}

// subjectKey is pseudonymHash(e.Subject).
func (s *sharedKeys) subjectKey(e *schemas.Event) uint64 {
	k := s.keys
	if k == nil || k.ev != e {
		return pseudonymHash(e.Subject)
	}
	if !k.haveSubject {
		k.subject, k.haveSubject = pseudonymHash(e.Subject), true
	}
	return k.subject
}

// sweep lets the detectors and the dedup table drop expired state, once
// per expireEvery of event time.
func (e *Engine) sweep() {
	if e.watermark-e.lastSweep < int64(expireEvery) {
		return
	}
	e.lastSweep = e.watermark
	wm := time.Unix(0, e.watermark)
	for _, d := range e.dets {
		d.Expire(wm)
	}
	e.dedup.dropIf(func(d dedupEntry) bool { return d.at+d.window < e.watermark })
}

// dedupEntry remembers the last alert of one finding.
type dedupEntry struct {
	at      int64 // event time of the alert, ns
	window  int64 // the detector's dedup window, ns
	subject string
}

// accept completes an alert of detector i, deduplicates it and queues it.
func (e *Engine) accept(i int, a schemas.Alert) {
	d, s := e.dets[i], e.settings[i]
	if a.Detector == "" {
		a.Detector = d.Name()
	}
	if a.Severity == "" {
		a.Severity = s.Severity
	}
	if a.Key == "" {
		a.Key = a.Subject
	}
	trigger := ""
	if e.cur != nil {
		trigger = e.cur.ID
	}
	a.ID = schemas.AlertID(a.Detector, a.Key, trigger)
	if a.Evidence == nil {
		a.Evidence = []string{}
	}
	if w := int64(s.DedupWindow); w > 0 {
		k := a.Detector + "\x00" + a.Key
		at := a.Time.UnixNano()
		if prev, ok := e.dedup.get(k); ok && at-prev.at < w && prev.at-at < w {
			e.stats.Duplicates++
			return
		}
		e.dedup.put(k, dedupEntry{at: at, window: w, subject: a.Subject})
	}
	for _, suppressed := range e.suppress {
		if suppressed(a) {
			e.stats.Suppressed++
			return
		}
	}
	redactAlertText(&a)
	a.DetectedAt = schemas.At(e.clock().UTC())
	e.stats.Alerts++
	e.out = append(e.out, a)
}

// take hands over the queued alerts.
func (e *Engine) take() []schemas.Alert {
	out := e.out
	e.out = nil
	return out
}

// pendingEvent is an event in the reorder buffer.
type pendingEvent struct {
	at int64
	e  *schemas.Event
}

// eventHeap is a min-heap of pending events by time, then id, so that
// events with equal times are released in the same order however they
// arrived.
type eventHeap []pendingEvent

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].e.ID < h[j].e.ID
}

func (h *eventHeap) push(p pendingEvent) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *eventHeap) pop() pendingEvent {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = pendingEvent{}
	s = s[:last]
	s.down(0)
	*h = s
	return top
}

func (h eventHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h eventHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}
