package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/sessionmon/sessionmon/alert"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// newDetect builds the live detection service from the configuration.
func newDetect(cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer, resolver *geo.Resolver) (*detectService, error) {
	dc, err := loadDetectConfig(cfg, logger)
	if err != nil {
		return nil, err
	}
	sc := detect.DefaultServiceConfig()
	sc.Partitions = detect.Partitions{Count: cfg.Stream.Partitions, Owned: cfg.Detect.Partitions, SourceDetectors: cfg.Detect.SourceDetectors}
	// serve passes stream-replicas; a detect process alone has the default
	// of 1, which keeps the replicas serve set.
	sc.Alerts.Replicas = cfg.Stream.Replicas
	sc.Snapshots.Replicas, sc.Snapshots.Interval = cfg.Stream.Replicas, cfg.Detect.SnapshotInterval
	storeOpts, err := storeOptions(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := detect.NewService(js, cfg.ClickHouseURL(), sc, dc,
		detect.WithLogger(logger), detect.WithMetrics(detect.NewMetrics(reg)), detect.WithStoreOptions(storeOpts...),
		detect.WithEngineOptions(detect.WithGeo(resolver)))
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	return newDetectService(svc, cfg), nil
}

// ensureAlertStream declares SESSIONMON_ALERTS, which detect writes and the
// notifier reads, before either starts: its owner (serve) creates or
// updates it, other commands only create it when it is missing.
func ensureAlertStream(ctx context.Context, js jetstream.JetStream, owner bool) error {
	if !owner {
		if _, err := js.Stream(ctx, detect.AlertStream); err == nil {
			return nil
		}
	}
	_, err := detect.EnsureAlertStream(ctx, js, detect.DefaultServiceConfig().Alerts)
	return err
}

// notifier is the webhook notifier with what it holds open; Notifier is nil
// when no webhook is configured.
type notifier struct {
	*alert.Notifier
	store *chstore.Store
}

func (n *notifier) enabled() bool { return n.Notifier != nil }

func (n *notifier) close() {
	if n.store != nil {
		n.store.Close()
	}
}

// newNotifier builds the webhook notifier from the notify: section of the
// config file; it is disabled when no webhook is configured. Delivery
// attempts are logged to ClickHouse when it is reachable at start.
func newNotifier(ctx context.Context, cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer) (*notifier, error) {
	nc, err := alert.ParseConfig(cfg.NotifyYAML)
	if err != nil {
		return nil, err
	}
	n := &notifier{}
	if len(nc.Webhooks) == 0 {
		return n, nil
	}
	opts := []alert.Option{alert.WithLogger(logger), alert.WithMetrics(alert.NewMetrics(reg))}
	if store, err := chstore.Open(ctx, cfg.ClickHouseURL(), logger); err != nil {
		logger.Warn("webhook delivery log disabled: clickhouse not reachable at start", slog.Any("error", err))
	} else {
		n.store = store
		opts = append(opts, alert.WithDeliveryLog(store))
	}
	an, err := alert.New(js, nc, opts...)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("notify: %w", err)
	}
	n.Notifier = an
	logger.Info("webhooks configured", slog.Int("webhooks", len(nc.Webhooks)))
	return n, nil
}

// retentionLockTTL frees the retention lock of a process that died holding
// it; longer than any run.
const retentionLockTTL = 6 * time.Hour

// newRetentionCron schedules the retention job of the config file's
// retention: section. Several sessionmon processes may schedule it: a lock
// in NATS lets one run at a time, and the others skip that turn.
func newRetentionCron(cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer) (*cron.Cron, error) {
	rc, err := retention.ParseConfig(cfg.RetentionYAML)
	if err != nil {
		return nil, err
	}
	if err := checkStreamLimits(cfg, rc); err != nil {
		return nil, err
	}
	m := retention.NewMetrics(reg)
	logger = logger.With("component", "retention")
	job := func() {
		ctx, cancel := context.WithTimeout(context.Background(), retentionLockTTL)
		defer cancel()
		release, err := natsconn.TryLock(ctx, js, "retention", retentionLockTTL)
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
		store, err := chstore.Open(ctx, cfg.ClickHouseURL(), logger, clusterOption(cfg))
		if err != nil {
			m.Failures.Inc()
			logger.Error("retention run failed", slog.Any("error", err))
			return
		}
		defer store.Close()
		rep, err := retention.Run(ctx, store, rc, time.Now(), false)
		m.Duration.Set(time.Since(start).Seconds())
		m.RowsDeleted.Add(float64(rep.RowsDeleted()))
		if err != nil {
			m.Failures.Inc()
			logger.Error("retention run failed", slog.String("job", rep.Job), slog.Any("error", err))
			if aerr := detect.PublishAlert(ctx, js, retentionFailedAlert(rep.Job, start, err)); aerr != nil {
				logger.Error("retention failure alert not published", slog.Any("error", aerr))
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
	c, err := retention.NewCron(rc, job)
	if err != nil {
		return nil, err
	}
	logger.Info("retention scheduled", slog.String("schedule", rc.Schedule), slog.String("time_zone", rc.TimeZone))
	return c, nil
}

// checkStreamLimits refuses a configuration whose streams keep data longer
// than its retention periods: the copies in NATS are personal data too.
func checkStreamLimits(cfg *config.Config, rc retention.Config) error {
	var errs []error
	if p := time.Duration(rc.Periods[retention.DataSetEvents]); cfg.Stream.MaxAge == 0 || cfg.Stream.MaxAge > p {
		errs = append(errs, fmt.Errorf("%s (%s) keeps events in NATS longer than retention.periods.events (%s)",
			"stream-max-age", config.EnvName("stream-max-age"), retention.Period(p)))
	}
	if p := time.Duration(rc.Periods[retention.DataSetDeadLetters]); cfg.DLQ.MaxAge > p {
		errs = append(errs, fmt.Errorf("%s (%s) keeps dead letters longer than retention.periods.dead_letters (%s)",
			"dlq-max-age", config.EnvName("dlq-max-age"), retention.Period(p)))
	}
	if p := time.Duration(rc.Periods[retention.DataSetAlerts]); detect.DefaultServiceConfig().Alerts.MaxAge > p {
		errs = append(errs, fmt.Errorf("the alerts stream keeps alerts %s, longer than retention.periods.alerts (%s)",
			retention.Period(detect.DefaultServiceConfig().Alerts.MaxAge), retention.Period(p)))
	}
	return errors.Join(errs...)
}

// retentionFailedAlert tells the security team and the DPO, through the
// alerts stream and their webhooks, that a retention run failed: data may be
// kept longer than its period until it is fixed.
func retentionFailedAlert(job string, at time.Time, err error) detect.Alert {
	if job == "" { // the run failed before it had an id
		job = "retention-" + at.UTC().Format("20060102T150405")
	}
	return detect.Alert{
		ID:         detect.AlertID("retention_failed", job, job),
		Detector:   "retention_failed",
		Severity:   detect.SeverityHigh,
		Time:       schemas.At(at),
		DetectedAt: schemas.At(time.Now()),
		App:        "sessionmon",
		Title:      "Retention run failed",
		Summary:    fmt.Sprintf("Retention job %s failed; data may be kept past its period until it succeeds: %v", job, err),
		Details:    map[string]any{"job": job},
		Evidence:   []string{job},
	}
}

// erasureLockName is the NATS KV lock of the erasure worker and of
// `sessionmon erase`: one process at a time carries out requests.
const erasureLockName = "erasure"

// erasureInterval is how often serve looks for unfinished erasure
// requests.
const erasureInterval = time.Minute

// erasureLockTTL frees the erasure lock of a process that died holding it,
// after which its unfinished requests are resumed. It is the retention
// lock's: the TTL belongs to the lock bucket, which both locks share, and
// a different one would change the other's.
const erasureLockTTL = retentionLockTTL

// runErasures carries out the erasure requests left pending or running
// (filed by `sessionmon erase` or the dashboard, or interrupted by a
// restart): at start and every erasureInterval, under the erasure lock,
// until ctx ends. ClickHouse may not be up yet: each turn opens the store
// if it has none and applies the migrations with the TTL backstop of the
// retention config. Failures are logged and retried the next turn.
func runErasures(ctx context.Context, cfg *config.Config, nc *nats.Conn, js jetstream.JetStream, logger *slog.Logger) error {
	rc, err := retention.ParseConfig(cfg.RetentionYAML)
	if err != nil {
		return err
	}
	base := logger
	logger = logger.With("component", "erasure")
	var store *chstore.Store
	defer func() {
		if store != nil {
			store.Close()
		}
	}()
	forget := forgetVia(nc)
	turn := func() {
		if store == nil {
			s, err := openRetentionStore(ctx, cfg, rc, base)
			if err != nil {
				logger.Warn("erasure requests not checked: clickhouse not ready", slog.Any("error", err))
				return
			}
			store = s
		}
		release, err := natsconn.TryLock(ctx, js, erasureLockName, erasureLockTTL)
		if errors.Is(err, natsconn.ErrLocked) {
			return
		}
		if err != nil {
			logger.Error("erasure requests not checked", slog.Any("error", err))
			return
		}
		defer release()
		eraser := retention.NewEraser(store, forget, base, retention.WithMutationTimeout(time.Duration(rc.MutationTimeout)))
		n, err := eraser.RunPending(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Error("erasure requests failed", slog.Int("finished", n), slog.Any("error", err))
			return
		}
		if n > 0 {
			logger.Info("erasure requests finished", slog.Int("finished", n))
		}
	}
	t := time.NewTicker(erasureInterval)
	defer t.Stop()
	for {
		turn()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// applyRetentionTTL applies the migrations with the TTL backstop of the
// retention config, retrying every erasureInterval until it succeeds or
// ctx ends: the ingest worker starts before ClickHouse may be up.
func applyRetentionTTL(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	rc, err := retention.ParseConfig(cfg.RetentionYAML)
	if err != nil {
		return err
	}
	t := time.NewTicker(erasureInterval)
	defer t.Stop()
	for {
		store, err := openRetentionStore(ctx, cfg, rc, logger)
		if err == nil {
			return store.Close()
		}
		logger.Warn("ttl backstop not applied yet: clickhouse not ready", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
