package chstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Webhook delivery outcomes (webhook_deliveries.status).
const (
	DeliveryDelivered     = "delivered"
	DeliveryRetry         = "retry"
	DeliveryFailed        = "failed"
	DeliveryUndeliverable = "undeliverable"
)

// maxDeliveryErrorLen caps the stored error text.
const maxDeliveryErrorLen = 500

// WebhookDeliveryRow is one delivery attempt of an alert to a webhook, a
// row of webhook_deliveries (see 004_webhook_deliveries.sql). It holds
// neither the request body nor a secret.
type WebhookDeliveryRow struct {
	Webhook string
	AlertID string
	// Attempt counts from 1.
	Attempt uint32
	// Status is DeliveryDelivered, DeliveryRetry, DeliveryFailed or
	// DeliveryUndeliverable.
	Status string
	// HTTPStatus is the receiver's status, 0 when it did not answer.
	HTTPStatus uint16
	// Error is why the attempt failed ("" when delivered), cut to 500
	// bytes.
	Error   string
	Latency time.Duration // millisecond precision
	Time    time.Time     // millisecond precision
}

const webhookDeliveryColumnList = "webhook, alert_id, attempt, status, http_status, error, latency_ms, time, time_ms"

// InsertWebhookDeliveries writes rows and returns once ClickHouse has
// confirmed them. Writing a row again is harmless: the table collapses it
// (reads use FINAL). An empty slice writes nothing.
func (s *Store) InsertWebhookDeliveries(ctx context.Context, rows []WebhookDeliveryRow) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if err := validWebhookDelivery(r); err != nil {
			return fmt.Errorf("insert webhook deliveries: %w", err)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".webhook_deliveries ("+webhookDeliveryColumnList+")")
	if err != nil {
		return fmt.Errorf("insert webhook deliveries (%d rows): prepare: %w", len(rows), err)
	}
	for _, r := range rows {
		msg := r.Error
		if len(msg) > maxDeliveryErrorLen {
			msg = msg[:maxDeliveryErrorLen]
		}
		lat := min(max(r.Latency.Milliseconds(), 0), int64(^uint32(0)))
		if err := batch.Append(r.Webhook, r.AlertID, r.Attempt, r.Status, r.HTTPStatus, msg, uint32(lat),
			r.Time.UTC().Truncate(time.Second), r.Time.UnixMilli()); err != nil {
			return errors.Join(fmt.Errorf("insert webhook deliveries (%d rows): append: %w", len(rows), err), batch.Abort())
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert webhook deliveries (%d rows): send: %w", len(rows), err)
	}
	return nil
}

func validWebhookDelivery(r WebhookDeliveryRow) error {
	var errs []error
	if r.Webhook == "" || r.AlertID == "" {
		errs = append(errs, fmt.Errorf("%w: webhook and alert id must not be empty", ErrInvalidArgument))
	}
	switch r.Status {
	case DeliveryDelivered, DeliveryRetry, DeliveryFailed, DeliveryUndeliverable:
	default:
		errs = append(errs, fmt.Errorf("%w: status %q: want delivered, retry, failed or undeliverable", ErrInvalidArgument, r.Status))
	}
	if r.Time.IsZero() {
		errs = append(errs, fmt.Errorf("%w: time must be set", ErrInvalidArgument))
	}
	return errors.Join(errs...)
}

// WebhookDeliveriesOfAlert returns every recorded attempt to deliver the
// alert, oldest first (by time, webhook, attempt), each once.
func (s *Store) WebhookDeliveriesOfAlert(ctx context.Context, alertID string) ([]WebhookDeliveryRow, error) {
	return s.webhookDeliveries(ctx, "webhook deliveries of alert",
		" WHERE alert_id = ? ORDER BY time_ms, webhook, attempt, status", alertID)
}

// WebhookDeliveriesSince returns up to limit attempts at or after since,
// newest first, each once. A non-empty status keeps only that outcome
// (for example DeliveryUndeliverable for the dashboard's list of alerts a
// webhook gave up on).
func (s *Store) WebhookDeliveriesSince(ctx context.Context, since time.Time, status string, limit int) ([]WebhookDeliveryRow, error) {
	if limit < 1 {
		return nil, fmt.Errorf("webhook deliveries since: limit %d: %w: must be at least 1", limit, ErrInvalidArgument)
	}
	// The condition on time lets ClickHouse skip whole partitions.
	q := " WHERE time >= toDateTime(?) AND time_ms >= ?"
	args := []any{since.Unix(), since.UnixMilli()}
	if status != "" {
		q += " AND status = ?"
		args = append(args, status)
	}
	q += " ORDER BY time_ms DESC, webhook, alert_id, attempt DESC LIMIT ?"
	args = append(args, limit)
	return s.webhookDeliveries(ctx, "webhook deliveries since", q, args...)
}

func (s *Store) webhookDeliveries(ctx context.Context, op, where string, args ...any) ([]WebhookDeliveryRow, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+webhookDeliveryColumnList+" FROM "+s.db+".webhook_deliveries FINAL"+where, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	out := []WebhookDeliveryRow{}
	for rows.Next() {
		var (
			r         WebhookDeliveryRow
			latencyMS uint32
			timeS     time.Time
			timeMS    int64
		)
		if err := rows.Scan(&r.Webhook, &r.AlertID, &r.Attempt, &r.Status, &r.HTTPStatus, &r.Error,
			&latencyMS, &timeS, &timeMS); err != nil {
			return nil, fmt.Errorf("%s: scan: %w", op, err)
		}
		r.Latency = time.Duration(latencyMS) * time.Millisecond
		r.Time = time.UnixMilli(timeMS).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}
