package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/schemas"
)

var webhookNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// redeliverInput names an undeliverable alert and, optionally, the webhook
// to redeliver it to (default: every webhook that gave up on it).
type redeliverInput struct {
	AlertID string `json:"alert_id" form:"alert_id"`
	Webhook string `json:"webhook" form:"webhook"`
}

// redeliver queues an undeliverable alert again and audits it.
func (h *handler) redeliver(c echo.Context) (redeliverInput, []string, error) {
	var in redeliverInput
	if err := bindBody(c, &in); err != nil {
		return in, nil, err
	}
	if !schemas.ValidAlertID(in.AlertID) {
		return in, nil, badParam("alert_id", "must be an alert id: 32 hex digits")
	}
	if in.Webhook != "" && !webhookNamePattern.MatchString(in.Webhook) {
		return in, nil, badParam("webhook", "must be a configured webhook's name")
	}
	if h.notifier == nil {
		return in, nil, echo.NewHTTPError(http.StatusServiceUnavailable, "no webhooks are configured")
	}
	target := "alert " + in.AlertID
	queued, err := h.notifier.Redeliver(c.Request().Context(), in.AlertID, in.Webhook)
	if err != nil {
		h.audit(c, "webhook.redeliver", target, auditFailure, in.Webhook)
		if errors.Is(err, notify.ErrNotFound) {
			return in, nil, echo.NewHTTPError(http.StatusNotFound, "no undeliverable record of this alert for that webhook")
		}
		return in, nil, fmt.Errorf("redeliver alert: %w", err)
	}
	h.audit(c, "webhook.redeliver", target, auditSuccess, fmt.Sprint(queued))
	return in, queued, nil
}

// redeliverWebhook is the redeliver form of the webhook page (POST
// /webhooks/redeliver, fields alert_id and webhook).
func (h *handler) redeliverWebhook(c echo.Context) error {
	if _, _, err := h.redeliver(c); err != nil {
		return err
	}
	return h.redirectFlash(c, "/webhooks", "redelivered")
}

// redeliveredJSON is the answer of POST
// /api/v1/webhook-deliveries/redeliver.
type redeliveredJSON struct {
	AlertID  string   `json:"alert_id"`
	Webhooks []string `json:"webhooks"`
}

// apiRedeliverWebhook answers POST /api/v1/webhook-deliveries/redeliver.
//
// Body (JSON or form): alert_id (32 hex digits), webhook (optional: a
// configured webhook's name; default every webhook that gave up on the
// alert). Response 202: redeliveredJSON {alert_id, webhooks: [names the
// alert was queued for]}; 400 naming an invalid field; 404 when no
// webhook gave up on the alert; 503 when no webhook is configured.
func (h *handler) apiRedeliverWebhook(c echo.Context) error {
	in, queued, err := h.redeliver(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, redeliveredJSON{AlertID: in.AlertID, Webhooks: queued})
}
