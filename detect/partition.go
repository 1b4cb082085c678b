package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Scaling out. The events stream stores every event with a partition
// token derived from its subject (schemas.EventPartitionTransform), so all
// the events of one subject are in one partition. A Service owns a set of
// partitions: for each it runs its own engine with the subject-keyed
// detectors over its own durable consumer ("<durable>-p<N>", filtered on
// the partition), so moving a partition to another process moves its
// consumer, and the new owner rebuilds the state by replaying the
// partition's recent window, as every start does. The detectors whose state
// or findings span subjects (sourceDetectors) run in the one process of a
// deployment that has the source role, over a consumer of every partition
// ("<durable>-sources"). A Service that owns every partition and the source
// role (the default) runs one engine with every detector over one consumer
// ("<durable>"), as a single process always did.

// sourceDetectors are the detectors whose state or deduplication spans
// subjects, with why: they must see the events of every partition. Every
// other detector keys its state and its alerts by one subject, or by a
// session or token, which belong to one subject (TestDetectorScopes makes
// adding a detector a decision about its scope).
var sourceDetectors = map[string]string{
	credentialStuffingName: "counts the subjects failing from one source network",
	insecureCookieName:     "deduplicates per app and cookie, whichever subject the session belongs to",
	retiredSigningKeyName:  "a key.retired event retires the key for the tokens of every subject",
}

// IsSourceDetector reports whether the named detector must see the events
// of every partition (it runs in the process with the source role).
func IsSourceDetector(name string) bool {
	_, ok := sourceDetectors[name]
	return ok
}

// Partitions says which partitions of SESSIONMON_EVENTS a Service detects
// on.
type Partitions struct {
	// Count is the number of partitions of the events stream
	// (event-partitions); Run checks that the stream has as many. It may
	// be 0 only when the service owns everything (Owned nil, the source
	// role).
	Count int
	// Owned lists the partitions the service owns; nil: every partition.
	Owned []int
	// SourceDetectors says whether the service runs the source
	// detectors over every partition; nil: only when Owned is nil.
	// Exactly one service of a deployment must run them.
	SourceDetectors *bool
}

// sources reports whether the service has the source role.
func (p Partitions) sources() bool {
	if p.SourceDetectors != nil {
		return *p.SourceDetectors
	}
	return p.Owned == nil
}

// whole reports whether one engine runs everything over one consumer.
func (p Partitions) whole() bool { return p.Owned == nil && p.sources() }

// validate checks the partitions against their count.
func (p Partitions) validate() error {
	if p.whole() {
		return nil
	}
	var errs []error
	if p.Count < 1 || p.Count > schemas.MaxEventPartitions {
		errs = append(errs, fmt.Errorf("detect partitions: event-partitions must be between 1 and %d when a process owns only some partitions or not the source role (got %d)", schemas.MaxEventPartitions, p.Count))
	}
	seen := map[int]bool{}
	for _, n := range p.Owned {
		if n < 0 || (p.Count > 0 && n >= p.Count) || seen[n] {
			errs = append(errs, fmt.Errorf("detect-partitions: partition %d is out of range 0-%d or listed twice", n, p.Count-1))
		}
		seen[n] = true
	}
	if p.Owned != nil && len(p.Owned) == 0 && !p.sources() {
		errs = append(errs, errors.New("detect-partitions: a process must own at least one partition or the source role"))
	}
	return errors.Join(errs...)
}

// unit is one engine of a Service with its durable consumer: every
// partition (whole), one partition, or the source role.
type unit struct {
	// name is "" (whole), "p<N>" or "sources"; it labels logs and
	// readiness.
	name    string
	durable string
	// partition is the owned partition, or -1.
	partition int
	// filter is the consumer's filter subject ("": every event).
	filter string
	dets   []Detector
	logger *slog.Logger
	// gauge is the unit's index in the service's gauges.
	gauge int

	// state says why the unit is not detecting live, if it is not.
	state health.State
	// forget carries erasure requests to the unit's engine loop.
	forget chan forgetRequest
	// familiar carries familiarity requests to the unit's engine loop
	// (familiar_view.go).
	familiar chan familiarRequest

	// newDetectors builds a fresh set of the unit's detectors (to restore
	// a snapshot into); config is their configHash.
	newDetectors func() ([]Detector, error)
	config       [32]byte
	// confirmed counts the alert steps the confirmer has confirmed.
	confirmed atomic.Uint64
	// lastSaved is when the state of the last snapshot written (or
	// restored) was taken, Unix ns.
	lastSaved atomic.Int64
}

// label names the unit in readiness reasons.
func (u *unit) label() string {
	if u.name == "" {
		return "detect"
	}
	return "detect " + u.name
}

// newUnits builds the service's units, each with its own detectors.
func newUnits(cfg ServiceConfig, dcfg Config, logger *slog.Logger) ([]*unit, error) {
	p := cfg.Partitions
	logger = logging.OrDiscard(logger)
	build := func(name, durable, filter string, partition int, keep func(string) bool) (*unit, error) {
		newDetectors := func() ([]Detector, error) {
			all, err := NewDetectors(dcfg)
			if err != nil {
				return nil, err
			}
			return slices.DeleteFunc(all, func(d Detector) bool { return !keep(d.Name()) }), nil
		}
		dets, err := newDetectors()
		if err != nil {
			return nil, err
		}
		count := 0
		if partition >= 0 {
			count = p.Count
		}
		hash, err := configHash(dcfg, dets, durable, count)
		if err != nil {
			return nil, err
		}
		u := &unit{name: name, durable: durable, partition: partition, filter: filter, dets: dets,
			logger: logger, forget: make(chan forgetRequest), familiar: make(chan familiarRequest), newDetectors: newDetectors, config: hash}
		if name != "" {
			u.logger = logger.With(slog.String("partition", name))
		}
		u.lastSaved.Store(time.Now().UnixNano())
		u.state.Set("starting")
		return u, nil
	}
	if p.whole() {
		u, err := build("", cfg.Durable, "", -1, func(string) bool { return true })
		if err != nil {
			return nil, err
		}
		return []*unit{u}, nil
	}
	owned := p.Owned
	if owned == nil {
		for n := range p.Count {
			owned = append(owned, n)
		}
	}
	var units []*unit
	subjectKeyed := func(name string) bool { return !IsSourceDetector(name) }
	for _, n := range owned {
		u, err := build("p"+strconv.Itoa(n), partitionDurable(cfg.Durable, n), schemas.EventPartitionFilter(n), n, subjectKeyed)
		if err != nil {
			return nil, err
		}
		units = append(units, u)
	}
	if p.sources() {
		u, err := build("sources", sourcesDurable(cfg.Durable), "", -1, IsSourceDetector)
		if err != nil {
			return nil, err
		}
		units = append(units, u)
	}
	for i, u := range units {
		u.gauge = i
	}
	return units, nil
}

func partitionDurable(durable string, n int) string { return durable + "-p" + strconv.Itoa(n) }
func sourcesDurable(durable string) string          { return durable + "-sources" }

// isDetectDurable reports whether name is one of the event consumers of
// detect under any layout (whole, partitions, sources).
func isDetectDurable(durable, name string) bool {
	if name == durable || name == sourcesDurable(durable) {
		return true
	}
	n, ok := strings.CutPrefix(name, durable+"-p")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// prepareLayout checks that the events stream is partitioned as the
// service expects and, when the service owns less than everything, creates
// the missing consumers of every partition and of the source role, not
// only its own: all start at the same point, so the events published
// before the owner of a partition starts wait for it in its consumer.
func (s *Service) prepareLayout(ctx context.Context) error {
	stream, err := s.js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return fmt.Errorf("detect: events stream %s: %w", schemas.EventStream, err)
	}
	p := s.cfg.Partitions
	if p.whole() {
		return nil
	}
	if n := natsconn.StreamPartitions(stream.CachedInfo()); n != p.Count {
		return fmt.Errorf("detect: event-partitions is %d but stream %s has %d partitions (0: none): set the same event-partitions in every process and restart the process that owns the stream", p.Count, schemas.EventStream, n)
	}
	want := map[string]string{sourcesDurable(s.cfg.Durable): ""}
	for n := range p.Count {
		want[partitionDurable(s.cfg.Durable, n)] = schemas.EventPartitionFilter(n)
	}
	existing, start, err := s.detectConsumers(ctx, stream)
	if err != nil {
		return err
	}
	for name, filter := range want {
		if existing[name] {
			continue
		}
		if _, err := s.createConsumer(ctx, name, filter, start); err != nil {
			return err
		}
	}
	if existing[s.cfg.Durable] {
		s.logger.Warn("detect consumer of a single process still exists: delete it once no process runs without detect-partitions, or it resumes from where it stopped",
			slog.String("consumer", s.cfg.Durable))
	}
	return nil
}

// detectConsumers returns the names of detect's existing event consumers
// and the sequence a new one starts at: right after the lowest ack floor
// among them (events after it may not have been processed by the layout
// they come from; processing one twice raises alerts with the same ids,
// which are not sent again), or after the stream's last event when there
// is none.
func (s *Service) detectConsumers(ctx context.Context, stream jetstream.Stream) (map[string]bool, uint64, error) {
	existing := map[string]bool{}
	floor := uint64(0)
	found := false
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() {
		if !isDetectDurable(s.cfg.Durable, info.Name) {
			continue
		}
		existing[info.Name] = true
		if !found || info.AckFloor.Stream < floor {
			floor = info.AckFloor.Stream
		}
		found = true
	}
	if err := lister.Err(); err != nil {
		return nil, 0, fmt.Errorf("detect: list consumers of %s: %w", schemas.EventStream, err)
	}
	if !found {
		first, err := s.firstSeqSince(ctx, stream, time.Now().Add(-s.cfg.FirstLookback))
		if err != nil {
			return nil, 0, err
		}
		floor = first - 1
	}
	return existing, floor + 1, nil
}

// firstSeqSince returns the sequence of the first event stored at or after
// since, or the one after the stream's last event when there is none.
func (s *Service) firstSeqSince(ctx context.Context, stream jetstream.Stream, since time.Time) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("detect: events stream %s: %w", schemas.EventStream, err)
	}
	if info.State.Msgs == 0 || info.State.LastTime.Before(since) {
		return info.State.LastSeq + 1, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &since,
		HeadersOnly:   true,
	})
	if err != nil {
		return 0, fmt.Errorf("detect: find the events since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		return 0, fmt.Errorf("detect: find the events since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return 0, fmt.Errorf("detect: find the events since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return meta.Sequence.Stream, nil
}

// createConsumer creates detect's durable consumer name on filter ("": every
// event), starting at stream sequence start. When another process created
// it meanwhile, that one is returned.
func (s *Service) createConsumer(ctx context.Context, name, filter string, start uint64) (jetstream.Consumer, error) {
	cons, err := s.js.CreateConsumer(ctx, schemas.EventStream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "sessionmon detect: events to the streaming detectors",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		FilterSubject: filter,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = s.js.Consumer(ctx, schemas.EventStream, name)
	}
	if err != nil {
		return nil, fmt.Errorf("detect consumer %s: %w", name, err)
	}
	return cons, nil
}

// replayFilter returns the ordered consumer configuration that replays u's
// events since from, and a check of each event and the NATS subject of its
// message. A partition also replays the events stored before the stream
// was partitioned, and keeps, of every event, only those whose subject
// belongs to it under the current count (after a change of the count, its
// subject's events stored under the old one belong to another partition),
// except in a batched message the stream put in the partition under the
// current count: live processing took every event of it, misplaced ones
// included (a publisher that batched by a stale count), and so does the
// replay.
func (s *Service) replayFilter(u *unit, cfg jetstream.OrderedConsumerConfig) (jetstream.OrderedConsumerConfig, func(natsSubject string, e *schemas.Event) bool) {
	if u.partition < 0 {
		return cfg, func(string, *schemas.Event) bool { return true }
	}
	cfg.FilterSubjects = []string{u.filter, schemas.UnpartitionedEventFilter}
	n, p := s.cfg.Partitions.Count, u.partition
	return cfg, func(natsSubject string, e *schemas.Event) bool {
		token := schemas.EventSubjectToken(natsSubject)
		if schemas.IsBatchToken(token) && partitioned(natsSubject) && schemas.EventPartition(token, n) == p {
			return true
		}
		return schemas.EventPartition(e.Subject, n) == p
	}
}

// partitioned reports whether an event's NATS subject is the form stored
// in a partition (sessionmon.events.<partition>.<app>.<subject>).
func partitioned(natsSubject string) bool {
	return strings.Count(strings.TrimPrefix(natsSubject, schemas.EventSubjectPrefix), ".") == 2
}

// gauges sums the units' gauges into the service's metrics (the watermark
// delay is the largest), so that a process's metrics cover all its units.
type gauges struct {
	mu sync.Mutex
	// vals[kind][unit]
	vals [gaugeKinds][]float64
	m    *Metrics
}

type gaugeKind int

const (
	gaugeLag gaugeKind = iota
	gaugeKeys
	gaugePending
	gaugeDelay
	gaugeSnapshotAge
	gaugeSnapshotBytes
	gaugeKinds
)

func newGauges(m *Metrics, units int) *gauges {
	g := &gauges{m: m}
	for k := range g.vals {
		g.vals[k] = make([]float64, units)
	}
	return g
}

// set records unit's value of kind and updates the metric.
func (g *gauges) set(kind gaugeKind, unit int, v float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.vals[kind][unit] = v
	var sum, top float64
	for i, x := range g.vals[kind] {
		sum += x
		if i == 0 || x > top {
			top = x
		}
	}
	switch kind {
	case gaugeLag:
		g.m.consumerLag.Set(sum)
	case gaugeKeys:
		g.m.stateKeys.Set(sum)
	case gaugePending:
		g.m.pending.Set(sum)
	case gaugeDelay:
		g.m.watermarkDelay.Set(top)
	case gaugeSnapshotAge:
		g.m.snapshotAge.Set(top)
	case gaugeSnapshotBytes:
		g.m.snapshotBytes.Set(sum)
	}
}
