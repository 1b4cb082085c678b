package dashboard

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// defaultAuditLimit is the audit page's size unless ?limit= says otherwise.
const defaultAuditLimit = 50

// auditView is the audit page's data.
type auditView struct {
	Rows []chstore.AuditRow
	// Next is the cursor of the next (older) page, for ?cursor=.
	Next  string
	Limit int
}

// auditEntryJSON is one audit row in /api/v1/audit.
type auditEntryJSON struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	Actor          string    `json:"actor"`
	Role           string    `json:"role"`
	Action         string    `json:"action"`
	Target         string    `json:"target"`
	Outcome        string    `json:"outcome"`
	Detail         string    `json:"detail"`
	RequestID      string    `json:"request_id"`
	SourceIPPrefix string    `json:"source_ip_prefix"`
}

// auditPageJSON is the body of /api/v1/audit.
type auditPageJSON struct {
	Entries []auditEntryJSON `json:"entries"`
	// Next is the cursor for ?cursor= of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// showAuditLog shows the audit log, newest first (admin).
func (h *handler) showAuditLog(c echo.Context) error {
	page, limit, err := h.auditPage(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewAuditList, auditView{Rows: page.Rows, Next: page.Next, Limit: limit})
}

// apiAuditLog is GET /api/v1/audit?limit=&cursor= (admin).
func (h *handler) apiAuditLog(c echo.Context) error {
	page, _, err := h.auditPage(c)
	if err != nil {
		return err
	}
	out := auditPageJSON{Entries: make([]auditEntryJSON, 0, len(page.Rows)), Next: page.Next}
	for _, r := range page.Rows {
		out.Entries = append(out.Entries, auditEntryJSON{
			ID: r.ID, Time: r.Time, Actor: r.Actor, Role: r.Role, Action: r.Action, Target: r.Target,
			Outcome: r.Outcome, Detail: r.Detail, RequestID: r.RequestID, SourceIPPrefix: r.SourceIPPrefix,
		})
	}
	return c.JSON(http.StatusOK, out)
}

func (h *handler) auditPage(c echo.Context) (chstore.AuditPage, int, error) {
	limit := defaultAuditLimit
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > chstore.MaxAuditLimit {
			return chstore.AuditPage{}, 0, badParam("limit", "must be a number from 1 to %d", chstore.MaxAuditLimit)
		}
		limit = n
	}
	before := c.QueryParam("cursor")
	if h.store == nil {
		return chstore.AuditPage{}, 0, echo.NewHTTPError(http.StatusServiceUnavailable, "audit log: no ClickHouse store configured")
	}
	page, err := h.store.AuditLog(c.Request().Context(), limit, before)
	if err != nil {
		if before != "" && errors.Is(err, chstore.ErrInvalidArgument) {
			return chstore.AuditPage{}, 0, badParam("cursor", "must be a cursor returned as next")
		}
		return chstore.AuditPage{}, 0, err
	}
	return page, limit, nil
}
