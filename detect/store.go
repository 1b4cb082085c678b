package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// storeAlerts copies SESSIONMON_ALERTS into ClickHouse with its own
// durable consumer: alerts to the alerts table, status changes to
// alert_status. A batch is acknowledged once ClickHouse confirmed it (at
// least once; the tables collapse duplicates, so queries see each alert
// once). While ClickHouse is unavailable it retries with backoff and the
// stream keeps the backlog; detection is not affected. Writes use wctx,
// which outlives ctx by shutdownTimeout.
func (s *Service) storeAlerts(ctx, wctx context.Context) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, AlertStream, jetstream.ConsumerConfig{
		Durable:       s.cfg.StoreDurable,
		Description:   "sessionmon detect: alerts and status changes to ClickHouse",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: 4 * s.cfg.StoreBatchSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("alerts store consumer: %w", err)
	}
	store, err := s.openStore(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer store.Close()
	s.storeState.Store(nil)
	for {
		if ctx.Err() != nil {
			return nil
		}
		fetched, err := cons.Fetch(s.cfg.StoreBatchSize, jetstream.FetchMaxWait(s.cfg.StoreBatchAge))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.logger.Warn("pull alerts", slog.Any("error", err))
			if !(&backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMin}).Wait(ctx) {
				return nil
			}
			continue
		}
		var msgs []jetstream.Msg
		for msg := range fetched.Messages() {
			msgs = append(msgs, msg)
		}
		if err := fetched.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			s.logger.Warn("pull alerts", slog.Any("error", err))
		}
		if len(msgs) == 0 {
			continue
		}
		if err := s.storeBatch(wctx, store, msgs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// openStore connects to ClickHouse and migrates, retrying with backoff
// until it succeeds or ctx ends; readiness says why meanwhile.
func (s *Service) openStore(ctx context.Context) (*chstore.Store, error) {
	b := backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}
	for {
		store, err := chstore.Open(ctx, s.dsn, s.logger, s.storeOpts...)
		if err == nil {
			if _, err = store.Migrate(ctx); err == nil {
				return store, nil
			}
			store.Close()
		}
		if errors.Is(err, chstore.ErrInvalidDSN) {
			return nil, err
		}
		s.setStoreState("waiting for clickhouse: " + err.Error())
		s.logger.Warn("clickhouse not available, retrying", slog.Any("error", err), slog.Duration("retry_in", b.Next()))
		if !b.Wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

// storeBatch writes one batch, retrying until ClickHouse confirms it, and
// then acknowledges every message.
func (s *Service) storeBatch(ctx context.Context, store *chstore.Store, msgs []jetstream.Msg) error {
	var (
		alerts   []chstore.AlertRow
		statuses []chstore.AlertStatusRow
	)
	for _, m := range msgs {
		var err error
		if strings.HasPrefix(m.Subject(), StatusSubjectPrefix) {
			var r chstore.AlertStatusRow
			if r, err = statusRowOf(m.Data()); err == nil {
				statuses = append(statuses, r)
			}
		} else {
			var r chstore.AlertRow
			if r, err = alertRowOf(m.Data()); err == nil {
				alerts = append(alerts, r)
			}
		}
		if err != nil {
			// Nothing else publishes here; keep the stream moving.
			s.metrics.storeRejected.Inc()
			s.logger.Warn("skipping message on the alerts stream", slog.String("subject", m.Subject()), slog.Any("error", err))
		}
	}
	stop := natsconn.KeepInProgress(s.cfg.AckWait/3, msgs...)
	defer stop()
	bo := backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		err := store.InsertAlerts(ctx, alerts)
		if err == nil {
			err = store.AppendAlertStatus(ctx, statuses...)
		}
		if err == nil {
			if attempt > 1 {
				s.storeState.Store(nil)
				s.logger.Info("alerts store recovered", slog.Int("attempts", attempt))
			}
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("store alerts: %w", ctx.Err())
		}
		s.metrics.storeErrors.Inc()
		s.setStoreState(fmt.Sprintf("writing to clickhouse failing, retrying: %v", err))
		s.logger.Warn("store alerts failed, retrying", slog.Int("attempt", attempt), slog.Duration("retry_in", bo.Next()), slog.Any("error", err))
		if !bo.Wait(ctx) {
			return fmt.Errorf("store alerts: %w", ctx.Err())
		}
	}
	for _, m := range msgs {
		// A lost ack means a redelivery, which the tables collapse.
		_ = m.Ack()
	}
	s.metrics.stored.Add(float64(len(alerts) + len(statuses)))
	return nil
}
