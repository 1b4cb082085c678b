package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/schemas"
)

// maxCommentLen is detect's limit on a status change's comment.
const maxCommentLen = 2000

// statusInput is a triage action: the new status and why.
type statusInput struct {
	Status  string `json:"status" form:"status"`
	Comment string `json:"comment" form:"comment"`
}

// bindBody reads a form or a JSON body (by Content-Type) into dst.
func bindBody(c echo.Context, dst any) error {
	if err := (&echo.DefaultBinder{}).BindBody(c, dst); err != nil {
		return badParam("body", "must be a form or a JSON object of the documented fields")
	}
	return nil
}

// actorName is who the audit log and status changes name for c.
func actorName(c echo.Context) string {
	p := currentPrincipal(c)
	if p.Name != "" {
		return p.Name
	}
	return p.Role.String()
}

// setAlertStatus validates a triage action on the alert named by the :id
// path parameter and publishes it as a status change (ingest's alerts
// writer appends it to alert_status), then audits it.
func (h *handler) setAlertStatus(c echo.Context) (schemas.StatusChange, error) {
	id, err := alertID(c)
	if err != nil {
		return schemas.StatusChange{}, err
	}
	var in statusInput
	if err := bindBody(c, &in); err != nil {
		return schemas.StatusChange{}, err
	}
	if !slices.Contains(alertStatuses, in.Status) {
		return schemas.StatusChange{}, badParam("status", "must be open, acknowledged, resolved or false_positive")
	}
	if utf8.RuneCountInString(in.Comment) > maxCommentLen || len(in.Comment) > 4*maxCommentLen {
		return schemas.StatusChange{}, badParam("comment", "must have at most %d characters", maxCommentLen)
	}
	ctx := c.Request().Context()
	// The alert must exist: a status change of an unknown id would be
	// stored all the same.
	if _, err := h.store.AlertDetail(ctx, id); err != nil {
		return schemas.StatusChange{}, err
	}
	if h.js == nil {
		return schemas.StatusChange{}, echo.NewHTTPError(http.StatusServiceUnavailable, "triage needs NATS")
	}
	sc, err := alertbus.PublishStatusChange(ctx, h.js, schemas.StatusChange{
		AlertID: id, Status: schemas.AlertStatus(in.Status), Actor: actorName(c), Comment: in.Comment,
		Time: schemas.At(h.now().UTC()),
	})
	if err != nil {
		h.audit(c, "alert.status", "alert "+id, auditFailure, in.Status)
		if errors.Is(err, schemas.ErrInvalidStatusChange) {
			return sc, badParam("status", "%s", err.Error())
		}
		return sc, fmt.Errorf("change status of alert: %w", err)
	}
	h.audit(c, "alert.status", "alert "+id, auditSuccess, in.Status)
	return sc, nil
}

// changeAlertStatus is the triage form of the alert page (POST
// /alerts/:id/status, fields status and comment): it records the change
// and redirects to the alert with a flash message.
func (h *handler) changeAlertStatus(c echo.Context) error {
	sc, err := h.setAlertStatus(c)
	if err != nil {
		return err
	}
	return h.redirectFlash(c, "/alerts/"+sc.AlertID, string(sc.Status))
}

// apiChangeAlertStatus answers POST /api/v1/alerts/{id}/status.
//
// Path parameter id: the alert id. Body (JSON or form): status (open,
// acknowledged, resolved, false_positive), comment (optional, at most 2000
// characters). The actor is the token's or user's name. Response 202:
// statusChangeJSON {id, alert_id, status, actor, comment, time}, the change
// as published (it reaches the alert's history within seconds); 400 naming
// the invalid field; 404 when there is no such alert.
func (h *handler) apiChangeAlertStatus(c echo.Context) error {
	sc, err := h.setAlertStatus(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, statusChangeJSON{ID: sc.ID, AlertID: sc.AlertID, Status: string(sc.Status),
		Actor: sc.Actor, Comment: sc.Comment, Time: sc.Time.UTC()})
}
