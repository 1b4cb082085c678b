package dashboard

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// exportRecord is one line of a subject export: the table a row comes from
// and the row, every stored column under its snake_case name. It is the
// format of `sessionmon export`.
type exportRecord struct {
	DataSet string         `json:"data_set"`
	Row     map[string]any `json:"row"`
}

// rowFields maps a chstore row struct to its exported fields, keyed in
// snake_case; a duration becomes whole milliseconds under NAME_ms.
func rowFields(v reflect.Value) map[string]any {
	t := v.Type()
	m := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		val := v.Field(i).Interface()
		key := toSnake(sf.Name)
		switch x := val.(type) {
		case time.Duration:
			key, val = key+"_ms", x.Milliseconds()
		case time.Time:
			val = x.UTC()
		}
		m[key] = val
	}
	return m
}

// toSnake turns a Go field name into snake_case, keeping initialisms
// together: ClientIPPrefix is client_ip_prefix, TimeMS is time_ms.
func toSnake(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prevLower := unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if prevLower || (unicode.IsUpper(rs[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// writeExport writes d as NDJSON and returns the number of lines.
func writeExport(w *bufio.Writer, d chstore.SubjectData) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	sets := []struct {
		name string
		rows any
	}{
		{chstore.TableEvents, d.Events},
		{chstore.TableAlerts, d.Alerts},
		{chstore.TableAlertStatus, d.AlertStatus},
		{chstore.TableWebhookDeliveries, d.WebhookDeliveries},
	}
	for _, s := range sets {
		rows := reflect.ValueOf(s.rows)
		for i := range rows.Len() {
			if err := enc.Encode(exportRecord{DataSet: s.name, Row: rowFields(rows.Index(i))}); err != nil {
				return n, fmt.Errorf("export %s: %w", s.name, err)
			}
			n++
		}
	}
	return n, w.Flush()
}

// exportSubject downloads everything stored about the subject of the
// :subject path parameter as NDJSON (one exportRecord a line: events,
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
		h.audit(c, "subject.export", target, "failed", "")
		return err
	}
	hdr := c.Response().Header()
	hdr.Set(echo.HeaderContentType, "application/x-ndjson")
	hdr.Set(echo.HeaderContentDisposition, `attachment; filename="subject-`+target[len("subject sha256:"):][:12]+`.ndjson"`)
	hdr.Set(echo.HeaderCacheControl, "no-store")
	c.Response().WriteHeader(http.StatusOK)
	n, err := writeExport(bufio.NewWriter(c.Response()), d)
	if err != nil {
		h.audit(c, "subject.export", target, "failed", "lines="+strconv.Itoa(n))
		return fmt.Errorf("export subject: %w", err)
	}
	h.audit(c, "subject.export", target, "ok", "lines="+strconv.Itoa(n))
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
