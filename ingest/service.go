package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// shutdownTimeout bounds the final flush after Run's context ends.
const shutdownTimeout = 15 * time.Second

// Service is the ingest worker. Any number of them may share one durable
// consumer; JetStream spreads the events between them.
type Service struct {
	js      jetstream.JetStream
	dsn     string
	cfg     Config
	geo     *geo.Resolver // nil: events are stored as sent (Enrich is nil-safe)
	logger  *slog.Logger
	metrics *Metrics
	now     func() time.Time
	// storeOpts configure the ClickHouse store (WithStoreOptions).
	storeOpts []chstore.Option

	// alerts is set on the writer of the alerts stream (NewAlerts).
	alerts bool

	// ready says why the worker is not ready, if it is not.
	ready health.State

	// afterInsert, when set by tests, runs after a batch is written and
	// before it is acknowledged; an error stops the worker there, as a
	// crash would.
	afterInsert func() error
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.logger = l } }

// WithMetrics sets the metrics.
func WithMetrics(m *Metrics) Option { return func(s *Service) { s.metrics = m } }

// WithGeo enriches events from the GeoIP databases (geo.Resolver.Enrich)
// before they are stored.
func WithGeo(r *geo.Resolver) Option { return func(s *Service) { s.geo = r } }

// WithStoreOptions passes options to the ClickHouse store the worker opens
// (the cluster, the TTL backstop).
func WithStoreOptions(opts ...chstore.Option) Option {
	return func(s *Service) { s.storeOpts = append(s.storeOpts, opts...) }
}

// New returns a worker that reads SESSIONMON_EVENTS from js and writes to
// the ClickHouse server at dsn.
func New(js jetstream.JetStream, dsn string, cfg Config, opts ...Option) (*Service, error) {
	s, err := newService(js, dsn, cfg, "events", opts...)
	if err != nil {
		return nil, err
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	s.ready.Set("starting")
	return s, nil
}

// newService checks cfg and applies opts; the logger names what the
// worker writes (events, alerts).
func newService(js jetstream.JetStream, dsn string, cfg Config, what string, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{js: js, dsn: dsn, cfg: cfg, now: time.Now, alerts: what == "alerts"}
	for _, o := range opts {
		o(s)
	}
	s.logger = logging.OrDiscard(s.logger).With("component", "ingest", "stream", what)
	return s, nil
}

// Ready returns nil when the worker is consuming and ClickHouse accepts
// writes, or an error saying why not. It is a health.Check.
func (s *Service) Ready(ctx context.Context) error { return s.ready.Check(ctx) }

// Run consumes until ctx ends, then writes and acknowledges what it holds
// (within shutdownTimeout) and returns. It waits for ClickHouse as long as it
// must: meanwhile JetStream keeps the backlog.
func (s *Service) Run(ctx context.Context) error {
	store, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	stream, description := schemas.EventStream, "sessionmon ingest: events to ClickHouse"
	if s.alerts {
		stream, description = schemas.AlertStream, "sessionmon ingest: alerts and status changes to ClickHouse"
	} else {
		if _, err := natsconn.EnsureDLQStream(ctx, s.js, s.cfg.DLQMaxAge, 1); err != nil {
			return err
		}
		// Publishers learn from the workers how to batch.
		stopLayout, err := natsconn.ServeLayout(ctx, s.js.Conn(), s.js, s.logger)
		if err != nil {
			return err
		}
		defer stopLayout()
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       s.cfg.Durable,
		Description:   description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("ingest consumer of %s: %w", stream, err)
	}
	// Writes go on for shutdownTimeout after ctx ends, so that what was
	// read is written and acknowledged.
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	stopWrites := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownTimeout, cancelWrites) })
	defer stopWrites()

	s.ready.SetReady()
	s.logger.Info("ingest started", slog.String("consumer", s.cfg.Durable), slog.Int("batch_size", s.cfg.BatchSize), slog.Duration("batch_age", s.cfg.BatchAge))

	// A batch is written while the next one fills: one in flight.
	batches := make(chan *batch, 1)
	converters := runtime.GOMAXPROCS(0)
	pool := newBatchPool(writers+2, converters)
	jobs := make(chan job, jobQueue)
	var conv sync.WaitGroup
	for i := range converters {
		conv.Go(func() { s.convertAll(i, jobs) })
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		defer conv.Wait()
		defer close(jobs)
		return s.read(gctx, cons, pool, jobs, batches)
	})
	for range writers {
		g.Go(func() error { return s.writeAll(wctx, store, batches, pool) })
	}
	g.Go(func() error { return s.watchConsumer(gctx, cons) })
	err = g.Wait()
	s.ready.Set("stopped")
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// openStore connects to ClickHouse and migrates, retrying with backoff
// until it succeeds or ctx ends.
func (s *Service) openStore(ctx context.Context) (*chstore.Store, error) {
	return chstore.Connect(ctx, s.dsn, s.logger, chstore.ConnectConfig{
		Migrate: true,
		Wait:    &backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax},
		Waiting: func(err error, retryIn time.Duration) {
			s.ready.Set("waiting for clickhouse: " + err.Error())
			s.logger.Warn("clickhouse not available, retrying", slog.Any("error", err), slog.Duration("retry_in", retryIn))
		},
	}, s.storeOpts...)
}

// read fills batches from the consumer, taking them from pool, and hands
// each to the writers, once the converters (fed through jobs) have
// converted all its messages, while it fills the next. A batch is full at
// BatchSize events, as far as converted (a message holds
// one, or a batch of them) or BatchAge after the first pull that brought
// any: a backlog is written in full batches, a trickle within BatchAge.
// Each pull asks for what the batch still lacks and at most pullBytes, so
// that a backlog of batched messages never overruns the connection.
func (s *Service) read(ctx context.Context, cons jetstream.Consumer, pool *batchPool, jobs chan<- job, out chan<- *batch) error {
	// Failed pulls (no responders while a stream elects a leader, missed
	// heartbeats) are retried with backoff, not in a tight loop, and at
	// least every pullRetryMax, so that ingest resumes soon after NATS.
	retry := backoff.Backoff{Min: s.cfg.RetryMin, Max: min(s.cfg.RetryMax, pullRetryMax)}
	for {
		b := pool.get()
		var deadline time.Time
		for b.events() < s.cfg.BatchSize {
			if err := ctx.Err(); err != nil {
				return err
			}
			wait := s.cfg.BatchAge
			if !deadline.IsZero() {
				if wait = time.Until(deadline); wait < minPullWait {
					break
				}
			}
			fetched, err := cons.Fetch(s.cfg.BatchSize-b.events(), jetstream.FetchMaxWait(wait), jetstream.FetchMaxBytes(pullBytes))
			if err == nil {
				for msg := range fetched.Messages() {
					s.add(b, msg, jobs)
				}
				if err = fetched.Error(); errors.Is(err, nats.ErrTimeout) {
					err = nil
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.logger.Warn("pull events", slog.Any("error", err), slog.Duration("retry_in", retry.Next()))
				if b.len() > 0 {
					// Write what was pulled; the next batch retries.
					break
				}
				if !retry.Wait(ctx) {
					return ctx.Err()
				}
				continue
			}
			retry.Reset()
			if b.len() > 0 && deadline.IsZero() {
				deadline = b.started.Add(s.cfg.BatchAge)
			}
		}
		b.pending.Wait()
		if b.len() == 0 {
			pool.put(b)
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			// Unwritten messages are not acknowledged: JetStream
			// redelivers them to this or another worker.
			return ctx.Err()
		}
	}
}

// writers is how many batches are written at once, while the next fills;
// jobQueue how many messages wait for a converter, at most.
const (
	writers  = 2
	jobQueue = 64
)

// pullBytes bounds the bytes of one pull (a batched message holds up to
// 900 KiB, and the client must not hold more than its pending limit);
// minPullWait is the shortest wait worth another pull before a batch is
// written.
const (
	pullBytes    = 16 << 20
	minPullWait  = 5 * time.Millisecond
	pullRetryMax = time.Second
)

// watchConsumer keeps the consumer's backlog metrics current.
func (s *Service) watchConsumer(ctx context.Context, cons jetstream.Consumer) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if info, err := cons.Info(ctx); err == nil {
			s.metrics.pending.Set(float64(info.NumPending))
			s.metrics.ackPending.Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
