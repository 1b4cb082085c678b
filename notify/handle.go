package notify

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// ackTimeout bounds waiting for the server to confirm an ack.
const ackTimeout = 5 * time.Second

// handle makes one attempt to deliver msg to t and settles the message:
// ack on success, NakWithDelay on a temporary failure, and an
// Undeliverable record then Term on a permanent failure or after
// give_up_after. Attempts in flight finish even when ctx ends.
func (n *Notifier) handle(ctx context.Context, t *target, kv jetstream.KeyValue, msg jetstream.Msg, src source) {
	w := &t.cfg
	md, err := msg.Metadata()
	if err != nil {
		n.logger.Error("alert without metadata, dropped", slog.String("webhook", w.Name), slog.Any("error", err))
		_ = msg.Term()
		return
	}
	m, err := decodeAlert(msg.Data())
	if err != nil {
		n.logger.Error("invalid alert, dropped", slog.String("webhook", w.Name), slog.Uint64("stream_seq", md.Sequence.Stream), slog.Any("error", err))
		_ = msg.TermWithReason("invalid alert")
		return
	}
	// A silenced alert (a suppression rule matched it) is stored and
	// shown, but sent to no webhook; a lowered one goes out at its lower
	// severity, through the filters below.
	if src == fromAlerts && m.alert.Silenced() {
		n.metrics.silenced.WithLabelValues(w.Name).Inc()
		_ = msg.Ack()
		return
	}
	// An explicit redelivery skips the webhook's filters.
	if src == fromAlerts && !t.wants(m) {
		_ = msg.Ack()
		return
	}
	stop := natsconn.KeepInProgress(n.cfg.AckWait/3, msg)
	defer stop()

	if t.limiter != nil {
		if err := t.limiter.Wait(ctx); err != nil {
			// Stopping: hand the alert back untried.
			_ = msg.Nak()
			return
		}
	}
	attempt := md.NumDelivered
	res := t.deliver(context.WithoutCancel(ctx), m)
	now := n.now()
	row := chstore.WebhookDeliveryRow{
		Webhook: w.Name, AlertID: m.alert.ID, Attempt: uint32(min(attempt, uint64(^uint32(0)))),
		HTTPStatus: uint16(res.status), Latency: res.latency, Time: now,
	}
	n.metrics.attempt.WithLabelValues(w.Name).Observe(res.latency.Seconds())
	log := n.logger.With(slog.String("webhook", w.Name), slog.String("alert_id", m.alert.ID), slog.Uint64("attempt", attempt))

	if res.err == nil {
		row.Status = chstore.DeliveryDelivered
		n.record(row)
		n.metrics.delivered.WithLabelValues(w.Name).Inc()
		n.metrics.delay.WithLabelValues(w.Name).Observe(now.Sub(md.Timestamp).Seconds())
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		defer cancel()
		if err := msg.DoubleAck(actx); err != nil {
			// The alert may be delivered again, with the same webhook-id.
			log.Warn("ack after delivery failed", slog.Any("error", err))
		}
		if src == fromRedeliver {
			if err := deleteUndeliverable(actx, kv, w.Name, m.alert.ID); err != nil {
				log.Warn("undeliverable record not removed", slog.Any("error", err))
			}
			log.Info("alert redelivered", slog.Int("status", res.status))
		}
		return
	}

	var de *DeliveryError
	if !errors.As(res.err, &de) {
		de = &DeliveryError{Err: res.err}
	}
	row.Error = de.Error()
	giveUp := now.Sub(md.Timestamp) >= w.GiveUpAfter
	if !de.Permanent && !giveUp {
		delay := max(backoff.Delay(attempt, n.cfg.RetryMin, n.cfg.RetryMax), de.RetryAfter)
		// The last attempt is made when give_up_after is reached.
		delay = max(min(delay, md.Timestamp.Add(w.GiveUpAfter).Sub(now)), 10*time.Millisecond)
		row.Status = chstore.DeliveryRetry
		n.record(row)
		n.metrics.retried.WithLabelValues(w.Name).Inc()
		log.Warn("webhook delivery failed, retrying", slog.Int("status", res.status), slog.Duration("retry_in", delay), slog.Any("error", de))
		if err := msg.NakWithDelay(delay); err != nil {
			// The alert comes back after ack_wait instead.
			log.Warn("schedule retry failed", slog.Any("error", err))
		}
		return
	}

	rec := Undeliverable{
		Webhook: w.Name, AlertID: m.alert.ID, Reason: ReasonGaveUp, Attempts: attempt,
		LastStatus: res.status, LastError: de.Error(), Sequence: md.Sequence.Stream,
		QueuedAt: md.Timestamp.UTC(), RecordedAt: now.UTC(),
	}
	row.Status = chstore.DeliveryUndeliverable
	if de.Permanent {
		rec.Reason = ReasonPermanent
		row.Status = chstore.DeliveryFailed
	}
	if src == fromRedeliver {
		if seq, err := strconv.ParseUint(msg.Headers().Get(headerAlertSeq), 10, 64); err == nil {
			rec.Sequence = seq
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if err := putUndeliverable(sctx, kv, rec); err != nil {
		// Keep the alert: it is tried again later and recorded then.
		log.Error("undeliverable record not stored, retrying", slog.Any("error", err))
		_ = msg.NakWithDelay(n.cfg.RetryMax)
		return
	}
	n.record(row)
	if de.Permanent {
		n.metrics.failed.WithLabelValues(w.Name).Inc()
		log.Error("webhook refused alert, not retrying", slog.Int("status", res.status), slog.Any("error", de))
	} else {
		n.metrics.undeliverable.WithLabelValues(w.Name).Inc()
		log.Error("webhook delivery given up", slog.Duration("give_up_after", w.GiveUpAfter), slog.Any("error", de))
	}
	if err := msg.TermWithReason(rec.Reason); err != nil {
		log.Warn("terminate failed", slog.Any("error", err))
	}
}

// wants applies the filters the consumer's subjects cannot: apps (and
// severity and detectors again, cheaply).
func (t *target) wants(m *message) bool {
	a := &m.alert
	if a.Severity.Rank() < t.cfg.MinSeverity.Rank() {
		return false
	}
	if len(t.cfg.Detectors) > 0 && !slices.Contains(t.cfg.Detectors, a.Detector) {
		return false
	}
	return len(t.cfg.Apps) == 0 || slices.Contains(t.cfg.Apps, a.App)
}
