package notify

import (
	"context"
	"log/slog"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// DeliveryLog stores delivery attempts for the dashboard;
// *chstore.Store implements it. InsertWebhookDeliveries must be safe for
// concurrent use and may be retried with the same rows.
type DeliveryLog interface {
	InsertWebhookDeliveries(ctx context.Context, rows []chstore.WebhookDeliveryRow) error
}

var _ DeliveryLog = (*chstore.Store)(nil)

// Delivery log buffering: rows wait in a channel of logQueue rows for the
// writer, which flushes every logFlushEvery or logBatch rows and keeps at
// most logBacklog rows while ClickHouse is down, dropping the oldest
// beyond (counted in sessionmon_notify_delivery_log_dropped_total). The
// log is for the dashboard: delivery state itself is in JetStream.
const (
	logQueue      = 1024
	logBatch      = 500
	logBacklog    = 10000
	logFlushEvery = time.Second
)

// record queues a row for the delivery log without blocking delivery.
func (n *Notifier) record(r chstore.WebhookDeliveryRow) {
	if n.dlog == nil {
		return
	}
	select {
	case n.logRows <- r:
	default:
		n.metrics.logDropped.Inc()
	}
}

// writeLog writes queued rows until ctx ends, then makes one last attempt
// within the shutdown deadline.
func (n *Notifier) writeLog(ctx context.Context) error {
	var pending []chstore.WebhookDeliveryRow
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	flush := func(ctx context.Context) {
		if len(pending) == 0 {
			return
		}
		if err := n.dlog.InsertWebhookDeliveries(ctx, pending); err != nil {
			n.logger.Warn("delivery log write failed, will retry", slog.Int("rows", len(pending)), slog.Any("error", err))
			if drop := len(pending) - logBacklog; drop > 0 {
				pending = pending[drop:]
				n.metrics.logDropped.Add(float64(drop))
			}
			return
		}
		pending = pending[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-n.logRows:
					pending = append(pending, r)
					continue
				default:
				}
				break
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			flush(fctx)
			cancel()
			return nil
		case r := <-n.logRows:
			pending = append(pending, r)
			if len(pending) >= logBatch {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		}
	}
}
