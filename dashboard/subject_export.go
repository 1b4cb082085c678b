package dashboard

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/sessionmon/sessionmon/retention"
)

// exportSubject downloads everything stored about the subject of the
// :subject path parameter as NDJSON (one retention.ExportRecord a line: events,
// alerts, alert status changes, webhook deliveries). The export is
// audited with the subject's hash only.
func (h *handler) exportSubject(c echo.Context) error {
	subject, err := subjectParam(c)
	if err != nil {
		return err
	}
	target := subjectTarget(subject)
	d, err := h.store.SubjectData(c.Request().Context(), subject)
	if err != nil {
		h.audit(c, "subject.export", target, auditFailure, "")
		return err
	}
	hdr := c.Response().Header()
	hdr.Set(echo.HeaderContentType, "application/x-ndjson")
	hdr.Set(echo.HeaderContentDisposition, `attachment; filename="subject-`+target[len("subject sha256:"):][:12]+`.ndjson"`)
	hdr.Set(echo.HeaderCacheControl, "no-store")
	c.Response().WriteHeader(http.StatusOK)
	n, err := retention.WriteExport(c.Response(), d)
	if err != nil {
		h.audit(c, "subject.export", target, auditFailure, "lines="+strconv.Itoa(n))
		return fmt.Errorf("export subject: %w", err)
	}
	h.audit(c, "subject.export", target, auditSuccess, "lines="+strconv.Itoa(n))
	return nil
}

// apiExportSubject answers GET /api/v1/subjects/{subject}/export.
//
// Path parameter subject: a pseudonym. Response 200, application/x-ndjson:
// one {"data_set": "events"|"alerts"|"alert_status"|"webhook_deliveries",
// "row": {column: value}} object a line, everything stored about the
// subject, each row once (the format of `sessionmon export`); 400 for an
// invalid subject. The export is recorded in the audit log.
func (h *handler) apiExportSubject(c echo.Context) error { return h.exportSubject(c) }
