package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Names of the NATS KV locks (natsconn.TryLock): one process at a time
// runs the retention job, and one carries out erasure requests (the
// erasure worker of serve, or `sessionmon erase`).
const (
	RetentionLock = "retention"
	ErasureLock   = "erasure"
)

// LockTTL frees the retention or erasure lock of a process that died
// holding it, after which its unfinished work is resumed; longer than any
// run. Both locks share it: the TTL belongs to the lock bucket, and a
// different one would change the other's.
const LockTTL = 6 * time.Hour

// ErasureInterval is how often the Service looks for unfinished erasure
// requests, and retries the TTL backstop while ClickHouse is not up.
const ErasureInterval = time.Minute

// TTLOptions passes the retention periods of events and alerts to the
// store, whose migrations set them as the tables' TTL backstop (on
// ClickHouse 19.6 and later): one number, from the retention: section.
func (c Config) TTLOptions() []chstore.Option {
	days := func(ds string) int { return int(time.Duration(c.Periods[ds]) / Day) }
	return []chstore.Option{
		chstore.WithRetentionDays(days(DataSetEvents)),
		chstore.WithAlertRetentionDays(days(DataSetAlerts)),
	}
}

// OpenStore opens the store at dsn with the TTL backstop of c and opts
// (the cluster) and migrates it (deletion_log, legal holds and erasure
// requests arrive with migrations 005 and 006).
func (c Config) OpenStore(ctx context.Context, dsn string, logger *slog.Logger, opts ...chstore.Option) (*chstore.Store, error) {
	return chstore.Connect(ctx, dsn, logger, chstore.ConnectConfig{Migrate: true}, append(c.TTLOptions(), opts...)...)
}

// ServiceDeps are what a Service works with.
type ServiceDeps struct {
	// DSN is the ClickHouse server's; StoreOptions are added to the TTL
	// backstop of the config when the Service opens it (the cluster).
	DSN          string
	StoreOptions []chstore.Option
	// JS holds the locks. Without it (WithTTLOnly) the Service only keeps
	// the TTL backstop.
	JS jetstream.JetStream
	// Forget erases a subject from what NATS keeps (detect.ForgetVia).
	Forget ForgetFunc
	// PublishAlert raises the alert of a failed retention run (on the
	// alerts stream, to the webhooks); nil: the failure is only logged.
	PublishAlert func(ctx context.Context, a schemas.Alert) error
	Logger       *slog.Logger
	// Registerer registers the Service's metrics; nil: unregistered.
	Registerer prometheus.Registerer
}

// Service is retention in a long-running process. Its Run owns the
// scheduled retention job (a cron turn in the configured time zone; a
// lock in NATS lets one process at a time run it, the others skip that
// turn), the erasure worker (requests left pending or running, filed by
// `sessionmon erase` or the dashboard or interrupted by a restart, carried
// out under the erasure lock at start and every ErasureInterval) and the
// TTL backstop of the config (applied by the migrations each time the
// worker opens the store). WithTTLOnly keeps the TTL backstop alone.
type Service struct {
	cfg     Config
	deps    ServiceDeps
	logger  *slog.Logger
	metrics *Metrics
	ttlOnly bool
	// cron schedules runScheduled; nil with WithTTLOnly.
	cron *cron.Cron
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// WithTTLOnly makes Run apply the TTL backstop (retrying until ClickHouse
// is up) and return: for the processes that neither schedule retention
// nor carry out erasures (ingest).
func WithTTLOnly() ServiceOption { return func(s *Service) { s.ttlOnly = true } }

// NewService returns a Service for cfg. It fails on a schedule or time
// zone it cannot use. Run may be called once.
func NewService(cfg Config, deps ServiceDeps, opts ...ServiceOption) (*Service, error) {
	s := &Service{cfg: cfg, deps: deps, logger: logging.OrDiscard(deps.Logger)}
	for _, o := range opts {
		o(s)
	}
	if !s.ttlOnly {
		if deps.JS == nil {
			return nil, errors.New("retention service: no JetStream for its locks")
		}
		s.metrics = NewMetrics(deps.Registerer)
		logger := s.logger.With("component", "retention")
		c, err := NewCron(cfg, func() { s.runScheduled(logger) })
		if err != nil {
			return nil, err
		}
		s.cron = c
	}
	return s, nil
}

// Run works until ctx ends (with WithTTLOnly, until the TTL backstop is
// applied); a running retention job finishes first. Failures are logged
// and retried at the next turn; Run returns an error only when it cannot
// start.
func (s *Service) Run(ctx context.Context) error {
	if s.ttlOnly {
		return s.applyTTL(ctx)
	}
	s.logger.With("component", "retention").Info("retention scheduled",
		slog.String("schedule", s.cfg.Schedule), slog.String("time_zone", s.cfg.TimeZone))
	s.cron.Start()
	// The scheduler stops first, and waits for a running job.
	defer func() { <-s.cron.Stop().Done() }()
	return s.runErasures(ctx)
}

// runScheduled is one cron turn of the retention job. It runs on the
// scheduler's goroutine, detached from Run's context: a run started
// finishes (within LockTTL) and Run waits for it.
func (s *Service) runScheduled(logger *slog.Logger) {
	m := s.metrics
	ctx, cancel := context.WithTimeout(context.Background(), LockTTL)
	defer cancel()
	release, err := natsconn.TryLock(ctx, s.deps.JS, RetentionLock, LockTTL)
	if errors.Is(err, natsconn.ErrLocked) {
		m.Skipped.Inc()
		logger.Info("retention run skipped: another process is running it")
		return
	}
	if err != nil {
		m.Failures.Inc()
		logger.Error("retention run failed", slog.Any("error", err))
		return
	}
	defer release()
	start := time.Now()
	store, err := chstore.Connect(ctx, s.deps.DSN, logger, chstore.ConnectConfig{}, append(s.cfg.TTLOptions(), s.deps.StoreOptions...)...)
	if err != nil {
		m.Failures.Inc()
		logger.Error("retention run failed", slog.Any("error", err))
		return
	}
	defer store.Close()
	rep, err := Run(ctx, store, s.cfg, time.Now(), false)
	m.Duration.Set(time.Since(start).Seconds())
	m.RowsDeleted.Add(float64(rep.RowsDeleted()))
	if err != nil {
		m.Failures.Inc()
		logger.Error("retention run failed", slog.String("job", rep.Job), slog.Any("error", err))
		if s.deps.PublishAlert != nil {
			if aerr := s.deps.PublishAlert(ctx, FailedAlert(rep.Job, start, err)); aerr != nil {
				logger.Error("retention failure alert not published", slog.Any("error", aerr))
			}
		}
		return
	}
	m.LastSuccess.SetToCurrentTime()
	for _, sk := range rep.Skipped {
		logger.Info("retention data set skipped", slog.String("data_set", sk.DataSet), slog.String("reason", sk.Reason))
	}
	logger.Info("retention run done", slog.String("job", rep.Job), slog.Int("steps", len(rep.Steps)),
		slog.Uint64("rows_deleted", rep.RowsDeleted()), slog.Uint64("rows_kept_under_legal_hold", rep.RowsKept()),
		slog.Duration("duration", time.Since(start)))
}

// FailedAlert tells the security team and the DPO, through the alerts
// stream and their webhooks, that a retention run failed: data may be
// kept longer than its period until it is fixed.
func FailedAlert(job string, at time.Time, err error) schemas.Alert {
	if job == "" { // the run failed before it had an id
		job = "retention-" + at.UTC().Format("20060102T150405")
	}
	return schemas.Alert{
		ID:         schemas.AlertID("retention_failed", job, job),
		Detector:   "retention_failed",
		Severity:   schemas.SeverityHigh,
		Time:       schemas.At(at),
		DetectedAt: schemas.At(time.Now()),
		App:        "sessionmon",
		Title:      "Retention run failed",
		Summary:    fmt.Sprintf("Retention job %s failed; data may be kept past its period until it succeeds: %v", job, err),
		Details:    map[string]any{"job": job},
		Evidence:   []string{job},
	}
}

// runErasures carries out the erasure requests left pending or running,
// at start and every ErasureInterval, under the erasure lock, until ctx
// ends. ClickHouse may not be up yet: each turn opens the store if it has
// none and applies the migrations with the TTL backstop. Failures are
// logged and retried the next turn.
func (s *Service) runErasures(ctx context.Context) error {
	logger := s.logger.With("component", "erasure")
	var store *chstore.Store
	defer func() {
		if store != nil {
			store.Close()
		}
	}()
	turn := func() {
		if store == nil {
			st, err := s.cfg.OpenStore(ctx, s.deps.DSN, s.logger, s.deps.StoreOptions...)
			if err != nil {
				logger.Warn("erasure requests not checked: clickhouse not ready", slog.Any("error", err))
				return
			}
			store = st
		}
		release, err := natsconn.TryLock(ctx, s.deps.JS, ErasureLock, LockTTL)
		if errors.Is(err, natsconn.ErrLocked) {
			return
		}
		if err != nil {
			logger.Error("erasure requests not checked", slog.Any("error", err))
			return
		}
		defer release()
		eraser := NewEraser(store, s.deps.Forget, s.logger, WithMutationTimeout(time.Duration(s.cfg.MutationTimeout)))
		n, err := eraser.RunPending(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Error("erasure requests failed", slog.Int("finished", n), slog.Any("error", err))
			return
		}
		if n > 0 {
			logger.Info("erasure requests finished", slog.Int("finished", n))
		}
	}
	return everyTurn(ctx, ErasureInterval, func() bool { turn(); return false })
}

// applyTTL applies the migrations with the TTL backstop, retrying every
// ErasureInterval until it succeeds or ctx ends: the ingest worker starts
// before ClickHouse may be up.
func (s *Service) applyTTL(ctx context.Context) error {
	var closeErr error
	err := everyTurn(ctx, ErasureInterval, func() bool {
		store, err := s.cfg.OpenStore(ctx, s.deps.DSN, s.logger, s.deps.StoreOptions...)
		if err == nil {
			closeErr = store.Close()
			return true
		}
		s.logger.Warn("ttl backstop not applied yet: clickhouse not ready", slog.Any("error", err))
		return false
	})
	return errors.Join(err, closeErr)
}

// everyTurn runs turn at once and then every interval until it reports
// done or ctx ends.
func everyTurn(ctx context.Context, interval time.Duration, turn func() (done bool)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !turn() {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
	return nil
}
