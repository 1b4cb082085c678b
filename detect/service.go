package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// shutdownTimeout bounds publishing and storing what is in flight after
// Run's context ends.
const shutdownTimeout = 15 * time.Second

// Receive pipeline sizes.
const (
	// pullBatch is how many messages one pull request asks for, and
	// pullBytes how many bytes at most: a batched message holds up to
	// 900 KiB, and the client must not hold more than its pending limit.
	pullBatch = 1000
	pullBytes = 16 << 20
	// receiveQueue is how many received, decoded events may wait for the
	// engine loop (about 1 KiB each).
	receiveQueue = 4096
	// publishQueue is how many releases that raised alerts may wait for
	// the stream's acks before the engine loop waits too.
	publishQueue = 256
)

// ServiceConfig tunes the streaming service.
type ServiceConfig struct {
	// Durable is the name of detect's consumer of SESSIONMON_EVENTS.
	Durable string
	// MaxHold is the longest an event waits, in processing time, for
	// out-of-order events before the detectors see it.
	MaxHold time.Duration
	// MaxReplay bounds the history replayed at start (the engine asks for
	// as much as its longest window).
	MaxReplay time.Duration
	// FirstLookback is how far back the first detect consumer of a stream
	// (no detect consumer exists yet) starts alerting: events stored within
	// it raise alerts, so none published while detect was still starting
	// is missed; older ones only build state in the replay.
	FirstLookback time.Duration
	// MaxAckPending bounds the events delivered but not yet acknowledged.
	MaxAckPending int
	// AckWait is how long JetStream waits for an ack before redelivering.
	AckWait time.Duration
	// Alerts configures the SESSIONMON_ALERTS stream.
	Alerts natsconn.AlertStreamConfig
	// RetryMin and RetryMax bound the backoff between retries of alert
	// publishes.
	RetryMin, RetryMax time.Duration
	// Partitions are the partitions of the events stream the service
	// owns (default: every one, and the source role).
	Partitions Partitions
	// Snapshots configures the snapshots of the detectors' state that a
	// start restores instead of replaying MaxReplay (snapshot_store.go).
	Snapshots SnapshotConfig
	// LeaseTTL is how long a unit's lease outlives its holder's last
	// renewal (lease.go): a replacement of a process that died takes over
	// after at most this long. The lease bucket keeps the TTL it was
	// created with.
	LeaseTTL time.Duration
}

// DefaultServiceConfig is the service's configuration out of the box.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{
		Durable:       schemas.DetectDurable,
		MaxHold:       150 * time.Millisecond,
		MaxReplay:     24 * time.Hour,
		FirstLookback: 10 * time.Minute,
		MaxAckPending: 20000,
		AckWait:       30 * time.Second,
		Alerts:        natsconn.DefaultAlertStreamConfig,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      10 * time.Second,
		Snapshots:     DefaultSnapshotConfig(),
		LeaseTTL:      15 * time.Second,
	}
}

// Validate checks every field and cross-field rule and returns all
// problems joined.
func (c ServiceConfig) Validate() error {
	var errs []error
	if c.Durable == "" {
		errs = append(errs, errors.New("detect consumer names must be set"))
	}
	if c.MaxHold <= 0 || c.MaxHold > maxLateness {
		errs = append(errs, fmt.Errorf("detect max hold must be between 0 and %s (got %s)", maxLateness, c.MaxHold))
	}
	if c.MaxReplay < 0 {
		errs = append(errs, fmt.Errorf("detect max replay must not be negative (got %s)", c.MaxReplay))
	}
	if c.FirstLookback < 0 || c.FirstLookback > c.MaxReplay {
		errs = append(errs, fmt.Errorf("detect first lookback must be between 0 and the max replay %s (got %s)", c.MaxReplay, c.FirstLookback))
	}
	if c.MaxAckPending < pullBatch {
		errs = append(errs, fmt.Errorf("detect max ack pending must be at least %d (got %d)", pullBatch, c.MaxAckPending))
	}
	if c.AckWait < 4*c.MaxHold || c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("detect ack wait must be at least 1s and 4 times the max hold (got %s)", c.AckWait))
	}
	if c.Alerts.MaxAge <= 0 || c.Alerts.MaxAge < c.MaxReplay {
		errs = append(errs, fmt.Errorf("alerts stream max age (%s) must be positive and cover the detect max replay (%s): replays read sent alerts back from it", c.Alerts.MaxAge, c.MaxReplay))
	}
	if c.Alerts.Duplicates <= 0 || c.Alerts.Duplicates > c.Alerts.MaxAge {
		errs = append(errs, fmt.Errorf("alerts stream duplicates window must be positive and at most its max age (got %s)", c.Alerts.Duplicates))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("detect retry backoff must be positive, min <= max"))
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > 10*time.Minute {
		errs = append(errs, fmt.Errorf("detect lease TTL must be between 1s and 10m (got %s)", c.LeaseTTL))
	}
	if err := c.Partitions.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Snapshots.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leaseValid reports whether the service holds the leases of its units
// now: they may take deliveries and write snapshots.
func (s *Service) leaseValid() bool { return s.leases.Load().valid() }

// Service is the streaming detector. It runs the engine live: a durable
// pull consumer ("sessionmon-detect", independent of ingest's) reads
// SESSIONMON_EVENTS, one goroutine owns the engine, and alerts go to
// SESSIONMON_ALERTS (ingest writes them to ClickHouse).
//
// Latency and lateness. The engine releases an event to the detectors once
// the event-time watermark (newest event time minus the lateness, 5 s by
// default) passes it, so that events from apps whose clocks and queues
// differ are seen in order. Live, that alone would hold every alert for the
// lateness window. The service therefore also releases events in
// processing time: once an event has waited MaxHold (150 ms by default)
// since it was received, everything up to the greatest event time among the
// events that waited that long is released (Engine.AdvanceTo), in order,
// but never beyond the wall clock, so an app whose clock runs ahead cannot
// push the watermark into the future. The trade-off: an event that arrives
// more than MaxHold after events with later times is late (processed at
// once, possibly out of order, counted in
// sessionmon_detect_late_events_total) where the full lateness window would
// still have sorted it. Detectors tolerate that (they judge each event
// against the state they hold), but a finding that depends on the exact
// order of two events less than MaxHold apart in arrival can differ from an
// offline run over the same events, which keeps pure event-time order.
//
// Acknowledgements. An event is acknowledged once the engine has released
// it to the detectors and every alert that release raised is stored in
// SESSIONMON_ALERTS (publish ack), and a batched message (schemas.BatchHeader)
// once every one of its events is; publishing is retried with backoff as
// long as it takes, so an event whose alerts failed to publish is never
// acknowledged. The engine loop does not wait for the publish acks: a
// confirmer goroutine waits for them, in order, and acknowledges the
// events (waiting in the loop made every alert's round trip delay every
// other event, the main source of tail latency under load). Events held
// longer than half the ack wait (only ones dated ahead of the wall clock)
// are acknowledged while held: a restart replays them anyway. Replay makes
// the acknowledgement of a processed event mostly bookkeeping; what it
// guarantees (alerts published for everything at or below the ack floor)
// is what tells a restart which replayed alerts may have been lost.
//
// Restarts (event sourcing). State lives in memory. Each engine saves it
// as a snapshot (snapshot_store.go: every Snapshots.Interval, after its
// start, after an erasure and on shutdown) with the last stream sequence
// it includes; a start restores the snapshot and replays, with an ordered
// consumer, the events stored after that sequence up to the last event the
// durable consumer had delivered (D). Without a usable snapshot it replays
// min(Engine.ReplayWindow, MaxReplay) of the events stream instead, which
// loses what the detectors learnt before that window. Alerts the replay
// raises again are not sent again: the engine suppresses the ids found in
// SESSIONMON_ALERTS since the snapshot (or over the window), and of the
// other alerts the replay raises only those dated at or after the oldest
// replayed (or restored, still buffered) event above the consumer's ack
// floor are published: they are the ones a stop between processing and
// publishing lost (the acknowledgement policy guarantees that every event
// at or below the ack floor had its alerts published; older unknown ids
// are artifacts of the window's start, which lacks the history before
// it). The alerts a snapshot lists as in flight (raised, not yet
// confirmed stored) are published too, unless the stream has them. Live
// processing then goes on with the durable consumer; its redeliveries of
// replayed events, and repeated deliveries of events already processed
// live, are acknowledged and skipped, so no event is processed twice; so
// is a message that replaces one already handled (schemas.ReplacesHeader:
// an erasure rewrote a batch without the erased subject's events), live
// or in the replay. On the very first start (no
// durable consumer yet) the consumer starts after the stream's last event
// and the replay only builds state: detect does not alert on history
// (RunOffline does that).
//
// Scale-out (partition.go): by default one Service runs per deployment, on
// one durable consumer; two services on one durable consumer would each see
// half the events. To spread detection over processes, each owns a set of
// the events stream's subject partitions (ServiceConfig.Partitions) and
// runs one engine per partition on its own durable consumer, and exactly
// one of them has the source role (the detectors keyed by something else
// than a subject, over every partition). Each engine works as described
// above, replay included.
//
// Goroutines: Run starts, through an errgroup, for each engine the receiver (pull and decode), the engine loop
// (the only goroutine that touches the engine), the confirmer (waits for
// alerts' publish acks, then acknowledges the events that raised them),
// the consumer watcher, with snapshots on, the snapshot writer (the
// engine loop encodes a snapshot, the writer stores it), and for engines
// that learn shared egresses their publisher (familiar_view.go); and one
// watcher of the suppression rules (suppress.go). Run also answers
// familiarity requests on schemas.DetectFamiliarSubject for the
// partitions it owns. None outlives Run.
//
// Create it with NewService and call Run once.
type Service struct {
	js      jetstream.JetStream
	cfg     ServiceConfig
	dcfg    Config
	logger  *slog.Logger
	metrics *Metrics
	gauges  *gauges
	// engineOpts are given to every engine (WithEngineOptions).
	engineOpts []Option

	running atomic.Bool
	// units are the engines, each with its consumer and its state (why it
	// is not ready, or nil); fixed by NewService.
	units []*unit
	// state holds the snapshots (nil: off); streamCreated is the events
	// stream's creation time (Unix ns). Both are set by start, before the
	// units' goroutines start.
	state         *stateStore
	streamCreated int64
	// suppress watches the suppression rules (suppress.go); set by Run
	// before the engines start.
	suppress atomic.Pointer[suppressions]
	// leases are the leases of the current run of the units (lease.go),
	// set from taking them until the units stopped; nil otherwise.
	leases atomic.Pointer[leaseSet]
	// networksEvery is how often each engine publishes its shared
	// egresses (familiar_view.go; tests shorten it).
	networksEvery time.Duration
}

type forgetRequest struct {
	subject string
	// done receives the outcome (buffered).
	done chan error
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// WithLogger sets the service's logger (default: discard).
func WithLogger(l *slog.Logger) ServiceOption { return func(s *Service) { s.logger = l } }

// WithMetrics sets the service's metrics (default: unregistered).
func WithMetrics(m *Metrics) ServiceOption { return func(s *Service) { s.metrics = m } }

// WithEngineOptions passes options to every engine the service runs, such
// as WithGeo.
func WithEngineOptions(opts ...Option) ServiceOption {
	return func(s *Service) { s.engineOpts = append(s.engineOpts, opts...) }
}

// NewService returns a service that reads events from js, runs the
// detectors of dcfg and publishes their alerts on SESSIONMON_ALERTS. It
// checks both configurations and builds the detectors (opening the
// anonymous-IP database when one is configured), so that a mistake fails
// before anything starts.
func NewService(js jetstream.JetStream, cfg ServiceConfig, dcfg Config, opts ...ServiceOption) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{js: js, cfg: cfg, dcfg: dcfg, networksEvery: networksEvery}
	for _, o := range opts {
		o(s)
	}
	s.logger = logging.OrDiscard(s.logger).With("component", "detect")
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	units, err := newUnits(cfg, dcfg, s.logger)
	if err != nil {
		return nil, err
	}
	s.units = units
	s.gauges = newGauges(s.metrics, len(units))
	return s, nil
}

// Ready returns nil when the service detects live (its replay is done and
// alerts publish), or an error saying what is not ready. It is a
// health.Check.
func (s *Service) Ready(context.Context) error {
	var reasons []string
	for _, u := range s.units {
		if r, ok := u.state.Reason(); ok {
			reasons = append(reasons, u.label()+": "+r)
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return errors.New(strings.Join(reasons, "; "))
}

// Forget drops every piece of the engines' state about subject (an
// erasure request) and, with snapshots on, writes a fresh snapshot of each
// engine: once it returns nil, no snapshot holds the subject. It waits
// until every engine loop has done it, so it blocks while the service
// replays at start; it returns ctx's error when ctx ends first. A service
// waiting for its leases holds no state: it returns nil at once. Call
// PrepareForget first, so that neither a replay of the events stream nor a
// snapshot taken before the erasure brings the subject back.
func (s *Service) Forget(ctx context.Context, subject string) error {
	if s.leases.Load() == nil {
		// Waiting for a lease: no engine holds state, and the one that
		// starts later restores no snapshot older than the erasure.
		return nil
	}
	reqs := make([]forgetRequest, len(s.units))
	for i, u := range s.units {
		reqs[i] = forgetRequest{subject: subject, done: make(chan error, 1)}
		select {
		case u.forget <- reqs[i]:
		case <-ctx.Done():
			return fmt.Errorf("forget subject: %w", ctx.Err())
		}
	}
	for i, req := range reqs {
		select {
		case err := <-req.done:
			if err != nil {
				return fmt.Errorf("forget subject: %s: %w", s.units[i].label(), err)
			}
		case <-ctx.Done():
			return fmt.Errorf("forget subject: %w", ctx.Err())
		}
	}
	return nil
}

// Run creates or updates SESSIONMON_ALERTS, the suppression rules bucket
// (whose rules it then follows) and the consumers, takes the leases of its
// units (waiting while another process holds one), rebuilds the
// engine's state by replay, then detects live until ctx ends. It then
// publishes what is in flight (within shutdownTimeout) and
// returns nil; an error means it could not go on (a missing events stream,
// a closed connection). Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("detect: Run called twice")
	}
	if _, err := natsconn.EnsureAlertStream(ctx, s.js, s.cfg.Alerts); err != nil {
		return err
	}
	sp, err := s.startSuppressions(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fsub, err := s.serveFamiliar(s.js.Conn())
	if err != nil {
		return err
	}
	defer func() { _ = fsub.Unsubscribe() }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sp.run(gctx) })
	g.Go(func() error { return s.runLeased(gctx) })
	err = g.Wait()
	for _, u := range s.units {
		u.state.Set("stopped")
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

// runLeased takes the leases of the service's units (lease.go), waiting
// while another process holds one, and runs the units until ctx ends. When
// a lease is lost, the units stop at once, without a last snapshot, and it
// waits to take the leases again: the state is then restored and replayed
// as at any start.
//
// A NATS error that passes by itself (a timeout, a stream leader election
// in a cluster) stops the units too: they start again after a backoff,
// rather than the process exiting.
func (s *Service) runLeased(ctx context.Context) error {
	retry := backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}
	var (
		kv  jetstream.KeyValue
		ttl time.Duration
	)
	for {
		var err error
		kv, ttl, err = natsconn.EnsureLeaseBucket(ctx, s.js, s.cfg.LeaseTTL, s.cfg.Snapshots.Replicas)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !transientNATS(err) {
			return err
		}
		s.logger.Warn("detect lease bucket unavailable; retrying", slog.Any("error", err))
		if !retry.Wait(ctx) {
			return nil
		}
	}
	if ttl != s.cfg.LeaseTTL {
		s.logger.Warn("the lease bucket keeps its own TTL, not detect-lease-ttl: delete it (nats kv del "+schemas.DetectLeaseBucket+") with every detect process stopped to change it",
			slog.Duration("bucket_ttl", ttl), slog.Duration("detect_lease_ttl", s.cfg.LeaseTTL))
	}
	for {
		keys := leaseKeys(s.cfg.Durable, s.cfg.Partitions.Count, s.units)
		ls := newLeaseSet(kv, ttl, keys, s.units, s.logger, s.metrics)
		if err := ls.acquire(ctx); err != nil {
			return nil // ctx ended
		}
		s.leases.Store(ls)
		started := time.Now()
		err := s.runUnits(ctx, ls)
		s.leases.Store(nil)
		// Given back even when lost: this process no longer uses them.
		ls.release()
		switch {
		case ctx.Err() != nil:
			return err
		case errors.Is(err, errLeaseLost):
			s.metrics.leaseLosses.Inc()
			s.logger.Warn("detect stopped its units: a lease was lost; waiting to take the leases again", slog.Any("error", err))
			for _, u := range s.units {
				u.state.Set("lease lost; waiting to take it again")
			}
		case transientNATS(err):
			if time.Since(started) > time.Minute {
				retry.Reset()
			}
			s.logger.Warn("detect stopped its units after a NATS error; starting them again", slog.Any("error", err))
			for _, u := range s.units {
				u.state.Set("restarting after a NATS error: " + err.Error())
			}
			if !retry.Wait(ctx) {
				return nil
			}
		default:
			return err
		}
	}
}

// transientNATS reports whether err is one NATS gets over by itself: a
// request timed out or found no responder, a stream had no leader for a
// moment, a pull missed its heartbeats, the server was short of resources.
func transientNATS(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrNoHeartbeat),
		errors.Is(err, jetstream.ErrMsgIteratorClosed):
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 503
}

// runUnits runs the units while ls is kept. Publishing alerts goes on for
// shutdownTimeout after ctx ends, so that what was processed is published
// and acknowledged; when a lease is lost, everything stops at once.
func (s *Service) runUnits(ctx context.Context, ls *leaseSet) error {
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	stopWrites := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownTimeout, cancelWrites) })
	defer stopWrites()
	rctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)

	// The leases are renewed until the units are done, the last
	// snapshot written included.
	kctx, stopKeep := context.WithCancel(context.WithoutCancel(ctx))
	kept := make(chan error, 1)
	go func() {
		err := ls.keep(kctx)
		if err != nil {
			cancelRun(err)
			cancelWrites()
		}
		kept <- err
	}()
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error { return s.start(gctx, wctx, g) })
	err := g.Wait()
	stopKeep()
	if kerr := <-kept; kerr != nil {
		return kerr
	}
	return err
}

// start opens every unit's consumer, restores its snapshot, and reads the
// ids of the alerts already sent, then runs the units (in g). The
// consumers are opened first, so that every alert published for the events
// they had delivered is read.
func (s *Service) start(ctx, wctx context.Context, g *errgroup.Group) error {
	if err := s.prepareLayout(ctx); err != nil {
		return err
	}
	stream, err := s.eventStreamInfo(ctx)
	if err != nil {
		return err
	}
	s.streamCreated = stream.Created.UnixNano()
	mark, err := s.openState(ctx)
	if err != nil {
		return err
	}
	known := make(map[string]struct{})
	alreadyAlerted := WithAlreadyAlerted(func(id string) bool {
		_, ok := known[id]
		return ok
	})
	type opened struct {
		eng   *Engine
		start resume
		plan  replayPlan
	}
	runs := make([]opened, len(s.units))
	oldest := time.Now()
	for i, u := range s.units {
		start, err := s.openConsumer(ctx, u)
		if err != nil {
			return err
		}
		opts := append([]Option{alreadyAlerted}, s.engineOpts...)
		var (
			eng  *Engine
			plan replayPlan
		)
		if s.state != nil {
			u.state.Set("restoring the detector state snapshot")
			eng, plan.snap = s.restoreUnit(ctx, u, stream, mark, opts)
		}
		var alertsFrom time.Time
		if eng == nil {
			if eng, err = NewEngine(s.dcfg, u.dets, opts...); err != nil {
				return err
			}
			plan.from = time.Now().Add(-min(eng.ReplayWindow(), s.cfg.MaxReplay))
			alertsFrom = plan.from
		} else {
			// The alerts raised after the snapshot were sent after it.
			alertsFrom = plan.snap.created.Add(-snapshotAlertMargin)
		}
		if alertsFrom.Before(oldest) {
			oldest = alertsFrom
		}
		runs[i] = opened{eng: eng, start: start, plan: plan}
	}
	if s.state != nil {
		if err := s.dropOrphanSnapshots(ctx); err != nil {
			// Cleanup only: detection goes on, the next start tries again.
			s.logger.Warn("snapshots of deleted consumers not dropped", slog.Any("error", err))
		}
	}
	// known is written here only; the units read it from their own
	// goroutines, started after.
	if err := s.alertIDsSince(ctx, oldest, known); err != nil {
		return err
	}
	for i, u := range s.units {
		r := runs[i]
		if snap := r.plan.snap; snap != nil {
			for _, a := range snap.inflight {
				if _, ok := known[a.ID]; !ok {
					r.plan.lost = append(r.plan.lost, a)
				}
			}
		}
		g.Go(func() error { return s.detect(ctx, wctx, g, u, r.eng, r.start, r.plan, mark) })
	}
	return nil
}

// eventStreamInfo returns the events stream's current information.
func (s *Service) eventStreamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	stream, err := s.js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return nil, fmt.Errorf("detect: events stream %s: %w", schemas.EventStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("detect: events stream %s: %w", schemas.EventStream, err)
	}
	return info, nil
}

// openState opens the snapshots' bucket, unless snapshots are off, and
// returns the current erasure mark.
func (s *Service) openState(ctx context.Context) (string, error) {
	c := s.cfg.Snapshots
	if c.Interval == 0 {
		return "", nil
	}
	obs, err := natsconn.EnsureStateBucket(ctx, s.js, c.Replicas)
	if err != nil {
		return "", err
	}
	s.state = &stateStore{obs: obs, maxBytes: c.MaxBytes}
	return s.state.erasureMark(ctx)
}

// detect rebuilds u's engine by replay (after its snapshot, when one was
// restored), then runs its receiver, consumer watcher, confirmer, snapshot
// writer (in g) and engine loop (here) until ctx ends.
func (s *Service) detect(ctx, wctx context.Context, g *errgroup.Group, u *unit, eng *Engine, start resume, plan replayPlan, mark string) error {
	r, err := s.replay(ctx, wctx, u, eng, plan, start)
	if err != nil {
		return err
	}
	in := make(chan delivery, receiveQueue)
	steps := make(chan pubStep, publishQueue)
	g.Go(func() error { return s.receive(ctx, u, start.consumer, in) })
	g.Go(func() error { return s.watchConsumer(ctx, u, start.consumer) })
	g.Go(func() error { return s.confirmAll(wctx, u, steps) })
	var snaps *snapshotWriter
	if s.state != nil {
		snaps = newSnapshotWriter(s, u)
		loopDone := make(chan struct{})
		// After the engine loop's last snapshot.
		defer close(loopDone)
		g.Go(func() error { return snaps.run(wctx, loopDone) })
	}
	l := newLive(s, u, eng, r, steps, snaps, mark)
	if eng.learnsNetworks() {
		l.networks = make(chan NetworkList, 1)
		g.Go(func() error { return s.publishNetworks(ctx, u, l.networks) })
	}
	u.state.SetReady()
	u.logger.Info("detect started", slog.String("consumer", u.durable), slog.Int("detectors", len(u.dets)),
		slog.Duration("max_hold", s.cfg.MaxHold), slog.Uint64("replayed_up_to_seq", r.last))
	err = l.run(ctx, in)
	if !s.leaseValid() {
		// Hand back what was received and not processed, so that the
		// unit's new owner gets it at once.
		for {
			select {
			case d := <-in:
				_ = d.msg.Nak()
				continue
			default:
			}
			break
		}
	}
	return err
}

// resume is where the durable consumer stands at start.
type resume struct {
	consumer jetstream.Consumer
	// delivered is the last stream sequence delivered to the consumer,
	// ackFloor the last one below which every event was acknowledged.
	delivered, ackFloor uint64
}

// openConsumer finds or creates u's durable consumer. A new one starts
// where detect's other consumers stand (partition.go), or, when there are
// none, at the first event stored within FirstLookback: the replay builds
// state from the events before it, without alerting.
func (s *Service) openConsumer(ctx context.Context, u *unit) (resume, error) {
	cons, err := s.js.Consumer(ctx, schemas.EventStream, u.durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		stream, err := s.js.Stream(ctx, schemas.EventStream)
		if err != nil {
			return resume{}, fmt.Errorf("detect: events stream %s: %w", schemas.EventStream, err)
		}
		_, start, err := s.detectConsumers(ctx, stream)
		if err != nil {
			return resume{}, err
		}
		if cons, err = s.createConsumer(ctx, u.durable, u.filter, start); err != nil {
			return resume{}, err
		}
	} else if err != nil {
		return resume{}, fmt.Errorf("detect consumer %s: %w", u.durable, err)
	}
	info := cons.CachedInfo()
	c := info.Config
	if c.FilterSubject != u.filter {
		return resume{}, fmt.Errorf("detect consumer %s: filters %q, expected %q: delete it (nats consumer rm %s %s) and restart",
			u.durable, c.FilterSubject, u.filter, schemas.EventStream, u.durable)
	}
	c.AckWait, c.MaxAckPending = s.cfg.AckWait, s.cfg.MaxAckPending
	if cons, err = s.js.UpdateConsumer(ctx, schemas.EventStream, c); err != nil {
		return resume{}, fmt.Errorf("detect consumer %s: %w", u.durable, err)
	}
	info = cons.CachedInfo()
	return resume{consumer: cons, delivered: info.Delivered.Stream, ackFloor: info.AckFloor.Stream}, nil
}

// watchConsumer keeps the consumer's backlog metric current.
func (s *Service) watchConsumer(ctx context.Context, u *unit, cons jetstream.Consumer) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if info, err := cons.Info(ctx); err == nil {
			s.gauges.set(gaugeLag, u.gauge, float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
