package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// writeAll writes every batch the reader hands over, in order, until the
// channel closes, and gives each written batch back to pool.
func (s *Service) writeAll(ctx context.Context, store *chstore.Store, in <-chan *batch, pool *batchPool) error {
	for b := range in {
		if err := s.write(ctx, store, b); err != nil {
			return err
		}
		pool.put(b)
	}
	return nil
}

// write makes one batch durable, then acknowledges its messages: dead
// letters are stored in their stream, rows in ClickHouse (retried with
// backoff for as long as it takes, keeping the messages' ack deadline
// alive), and only then is every message acked.
func (s *Service) write(ctx context.Context, store *chstore.Store, b *batch) error {
	start := time.Now()
	stopKeepAlive := natsconn.KeepInProgress(s.cfg.AckWait/3, b.msgs...)
	defer stopKeepAlive()

	dead, rows := b.dead(), b.rows()
	if err := s.retry(ctx, "publishing dead letters to nats", func(ctx context.Context) error { return s.publishDead(ctx, dead) }); err != nil {
		return err
	}
	if rows.Len() > 0 {
		if err := s.retry(ctx, "writing events to clickhouse", func(ctx context.Context) error { return store.InsertColumns(ctx, rows) }); err != nil {
			return err
		}
	}
	if s.alerts {
		if err := s.retry(ctx, "writing alerts to clickhouse", func(ctx context.Context) error { return insertAlerts(ctx, store, b) }); err != nil {
			return err
		}
	}
	if s.afterInsert != nil {
		if err := s.afterInsert(); err != nil {
			return err
		}
	}
	for _, m := range b.msgs {
		// A lost ack means a redelivery, which the events table
		// collapses: correctness does not depend on it.
		_ = m.Ack()
	}
	s.metrics.ingested.Add(float64(rows.Len() + len(b.alerts) + len(b.statuses)))
	s.metrics.batchSize.Observe(float64(len(b.msgs)))
	s.metrics.batchLatency.Observe(time.Since(start).Seconds())
	return nil
}

// retry runs op until it succeeds or ctx ends, with exponential backoff and
// jitter, and keeps readiness and metrics informed.
func (s *Service) retry(ctx context.Context, what string, op func(context.Context) error) error {
	err := backoff.Retry(ctx, &backoff.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax}, op,
		func(attempt int, err error, retryIn time.Duration) {
			s.metrics.insertErrors.Inc()
			s.ready.Set(fmt.Sprintf("%s failing, retrying: %v", what, err))
			s.logger.Warn("write failed, retrying", slog.String("op", what), slog.Int("attempt", attempt), slog.Duration("retry_in", retryIn), slog.Any("error", err))
		},
		func(attempts int) {
			s.ready.SetReady()
			s.logger.Info("write recovered", slog.String("op", what), slog.Int("attempts", attempts))
		})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// publishDead stores dead letters in their stream and waits for every ack.
func (s *Service) publishDead(ctx context.Context, dead []DeadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(dead))
	for i := range dead {
		f, err := s.js.PublishMsgAsync(dead[i].message())
		if err != nil {
			return fmt.Errorf("publish dead letter: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("store dead letter: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
