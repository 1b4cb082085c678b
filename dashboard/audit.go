package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/sdk"
)

// Audit outcomes.
const (
	auditSuccess = chstore.AuditSuccess
	auditFailure = chstore.AuditFailure
	auditDenied  = chstore.AuditDenied
)

// auditTimeout bounds writing one audit row.
const auditTimeout = 5 * time.Second

// auditSubject is how the audit log (and any log) names a data subject:
// by the SHA-256 of their pseudonym, never the pseudonym itself.
func auditSubject(pseudonym string) string {
	sum := sha256.Sum256([]byte(pseudonym))
	return "subject sha256:" + hex.EncodeToString(sum[:])
}

// audit appends an analyst's or admin's action to the audit log.
// target names the object (an alert id; a subject only as its sha256).
// A successful action of a signed-in user or token is also published as
// an action.performed event (sensitive when its route needs
// re-authentication), so sessionmon watches the dashboard's own users.
func (h *handler) audit(c echo.Context, action, target, outcome, detail string) {
	p := currentPrincipal(c)
	name := p.Name
	if name == "" {
		name = "anonymous"
	}
	h.writeAudit(c, name, p.Role.String(), action, target, outcome, detail)
	if p.Role == RoleNone || outcome != auditSuccess {
		return
	}
	var (
		sid    string
		authAt time.Time
	)
	if as := sessionOf(c); as != nil {
		sid, authAt = as.id, as.s.AuthAt
	}
	sensitive, _ := c.Get(ctxSensitive).(bool)
	h.auth.mon.actionPerformed(c, p, sid, authAt, action, sensitive, h.now())
}

// writeAudit writes one audit row and waits until ClickHouse confirmed it,
// so the action is on record before its answer. A failure is logged (the
// action has happened and is not undone); it names the action and the
// request id, never the actor's input.
func (h *handler) writeAudit(c echo.Context, actor, role, action, target, outcome, detail string) {
	row := chstore.AuditRow{
		ID: sdk.NewEventID(), Time: h.now(), Actor: actor, Role: role, Action: action,
		Target: target, Outcome: outcome, Detail: detail, RequestID: requestIDOf(c),
	}
	if ci := h.auth.mon.ri.ClientInfo(c.Request()); ci.IPPrefix.IsValid() {
		row.SourceIPPrefix = ci.IPPrefix.String()
	}
	if h.store == nil {
		h.logger.Warn("audit row not written: no ClickHouse store", slog.String("action", action), slog.String("request_id", row.RequestID))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), auditTimeout)
	defer cancel()
	if err := h.store.InsertAudit(ctx, row); err != nil {
		h.logger.Error("audit row not written", slog.String("action", action),
			slog.String("request_id", row.RequestID), slog.Any("error", err))
	}
}
