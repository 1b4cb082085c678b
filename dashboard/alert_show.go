package dashboard

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// alertData is the alert detail page: the alert with its history, evidence
// and deliveries, and a map when the alert has two locations.
type alertData struct {
	chstore.AlertDetail
	// Details are the alert's details, pretty-printed JSON.
	Details string
	// Map is set for location-based alerts (impossible travel).
	Map *travelMap
	// Statuses are the triage choices.
	Statuses []string
	// LowerSeverities are the severities below the alert's, the choices
	// of the "Suppress similar" form's lower action; SuppressUntil is the
	// expiry it proposes (an HTML datetime-local value, UTC).
	LowerSeverities []string
	SuppressUntil   string
}

// alertID reads and checks the :id path parameter.
func alertID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !schemas.ValidAlertID(id) {
		return "", badParam("id", "must be an alert id: 32 hex digits")
	}
	return id, nil
}

// loadAlert loads the alert named by the :id path parameter.
func (h *handler) loadAlert(c echo.Context) (alertData, error) {
	id, err := alertID(c)
	if err != nil {
		return alertData{}, err
	}
	d, err := h.store.AlertDetail(c.Request().Context(), id)
	if err != nil {
		return alertData{}, err
	}
	out := alertData{AlertDetail: d, Details: prettyJSON(d.Alert.Details), Statuses: alertStatuses}
	if out.Alert.Status == "" {
		out.Alert.Status = string(schemas.StatusOpen)
	}
	out.Map = travelMapOf(d.Alert.Details)
	for _, sev := range severities {
		if schemas.Severity(sev).Rank() < schemas.Severity(d.Alert.Severity).Rank() {
			out.LowerSeverities = append(out.LowerSeverities, sev)
		}
	}
	out.SuppressUntil = h.now().UTC().Add(defaultSuppressionDays * 24 * time.Hour).Format("2006-01-02T15:04")
	return out, nil
}

func prettyJSON(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return s
	}
	return string(b)
}

// showAlert renders an alert: summary, evidence timeline, map, triage form,
// status history and webhook deliveries.
func (h *handler) showAlert(c echo.Context) error {
	d, err := h.loadAlert(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewAlertShow, d)
}

// statusChangeJSON is a status change of an alert in the JSON API.
type statusChangeJSON struct {
	ID      string    `json:"id"`
	AlertID string    `json:"alert_id"`
	Status  string    `json:"status"`
	Actor   string    `json:"actor"`
	Comment string    `json:"comment,omitempty"`
	Time    time.Time `json:"time"`
}

// deliveryJSON is a webhook delivery attempt in the JSON API.
type deliveryJSON struct {
	Webhook    string    `json:"webhook"`
	AlertID    string    `json:"alert_id"`
	Attempt    uint32    `json:"attempt"`
	Status     string    `json:"status"`
	HTTPStatus uint16    `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	LatencyMS  int64     `json:"latency_ms"`
	Time       time.Time `json:"time"`
}

func newDeliveriesJSON(rows []chstore.WebhookDeliveryRow) []deliveryJSON {
	out := make([]deliveryJSON, len(rows))
	for i, r := range rows {
		out[i] = deliveryJSON{Webhook: r.Webhook, AlertID: r.AlertID, Attempt: r.Attempt, Status: r.Status,
			HTTPStatus: r.HTTPStatus, Error: r.Error, LatencyMS: r.Latency.Milliseconds(), Time: r.Time.UTC()}
	}
	return out
}

// alertDetailJSON is the answer of GET /api/v1/alerts/{id}.
type alertDetailJSON struct {
	Alert      alertJSON          `json:"alert"`
	History    []statusChangeJSON `json:"history"`
	Evidence   []eventJSON        `json:"evidence"`
	Deliveries []deliveryJSON     `json:"deliveries"`
}

// apiAlert answers GET /api/v1/alerts/{id}.
//
// Path parameter id: the alert id (32 hex digits). Response 200:
// alertDetailJSON {alert, history: [status change], evidence: [event],
// deliveries: [webhook delivery]}, each list oldest first; 400 for an
// invalid id, 404 when there is no such alert.
func (h *handler) apiAlert(c echo.Context) error {
	d, err := h.loadAlert(c)
	if err != nil {
		return err
	}
	out := alertDetailJSON{Alert: newAlertJSON(d.Alert), Evidence: newEventsJSON(d.Evidence), Deliveries: newDeliveriesJSON(d.Deliveries)}
	out.History = make([]statusChangeJSON, len(d.History))
	for i, s := range d.History {
		out.History[i] = statusChangeJSON{ID: s.ID, AlertID: s.AlertID, Status: s.Status, Actor: s.Actor, Comment: s.Comment, Time: s.Time.UTC()}
	}
	return c.JSON(http.StatusOK, out)
}
