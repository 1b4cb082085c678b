package dashboard

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// Webhook delivery list defaults and limits.
const (
	defaultDeliveryRange = 24 * time.Hour
	defaultDeliveries    = 200
	maxDeliveries        = 1000
)

var deliveryStatuses = []string{chstore.DeliveryDelivered, chstore.DeliveryRetry, chstore.DeliveryFailed, chstore.DeliveryUndeliverable}

// undeliverableJSON is an alert a webhook gave up on.
type undeliverableJSON struct {
	Webhook    string    `json:"webhook"`
	AlertID    string    `json:"alert_id"`
	Reason     string    `json:"reason"`
	Attempts   uint64    `json:"attempts"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
}

// deliveriesData is the webhook page: recent attempts and what is
// undeliverable.
type deliveriesData struct {
	Since      time.Time
	Status     string
	Statuses   []string
	Deliveries []chstore.WebhookDeliveryRow
	// Undeliverable is nil when no webhook is configured.
	Undeliverable []undeliverableJSON
	Configured    bool
}

// loadDeliveries reads the query parameters since (RFC 3339, default 24 h
// ago), status and limit, and loads the attempts and the undeliverable
// alerts.
func (h *handler) loadDeliveries(c echo.Context) (deliveriesData, error) {
	q := c.QueryParams()
	since, err := parseTime(q, "since", h.now().UTC().Add(-defaultDeliveryRange))
	if err != nil {
		return deliveriesData{}, err
	}
	status := q.Get("status")
	if status != "" && !slices.Contains(deliveryStatuses, status) {
		return deliveriesData{}, badParam("status", "must be delivered, retry, failed or undeliverable")
	}
	limit, err := parseLimit(q, defaultDeliveries, maxDeliveries)
	if err != nil {
		return deliveriesData{}, err
	}
	ctx := c.Request().Context()
	rows, err := h.store.WebhookDeliveriesSince(ctx, since, status, limit)
	if err != nil {
		return deliveriesData{}, err
	}
	d := deliveriesData{Since: since, Status: status, Statuses: deliveryStatuses, Deliveries: rows, Configured: h.notifier != nil}
	if h.notifier != nil {
		recs, err := h.notifier.Undeliverable(ctx)
		if err != nil {
			return deliveriesData{}, err
		}
		d.Undeliverable = make([]undeliverableJSON, len(recs))
		for i, r := range recs {
			d.Undeliverable[i] = undeliverableJSON{Webhook: r.Webhook, AlertID: r.AlertID, Reason: r.Reason, Attempts: r.Attempts,
				LastStatus: r.LastStatus, LastError: r.LastError, RecordedAt: r.RecordedAt.UTC()}
		}
	}
	return d, nil
}

// showWebhookDeliveries renders recent delivery attempts and the alerts a
// webhook gave up on, with a redeliver button for admins.
func (h *handler) showWebhookDeliveries(c echo.Context) error {
	d, err := h.loadDeliveries(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewWebhookDeliveries, d)
}

// deliveriesJSON is the answer of GET /api/v1/webhook-deliveries.
type deliveriesJSON struct {
	Since      time.Time      `json:"since"`
	Deliveries []deliveryJSON `json:"deliveries"`
	// Undeliverable is absent when no webhook is configured.
	Undeliverable []undeliverableJSON `json:"undeliverable,omitempty"`
}

// apiWebhookDeliveries answers GET /api/v1/webhook-deliveries.
//
// Query parameters: since (RFC 3339, default 24 hours ago), status
// (delivered, retry, failed, undeliverable), limit (1-1000, default 200).
// Response 200: deliveriesJSON {since, deliveries: [webhook delivery]
// newest first, undeliverable: [{webhook, alert_id, reason, attempts,
// last_status, last_error, recorded_at}]}; 400 naming an invalid
// parameter.
func (h *handler) apiWebhookDeliveries(c echo.Context) error {
	d, err := h.loadDeliveries(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deliveriesJSON{Since: d.Since, Deliveries: newDeliveriesJSON(d.Deliveries), Undeliverable: d.Undeliverable})
}
