package retention

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// ExportRecord is one line of an access request's export (GDPR Art. 15),
// as `sessionmon export` and the dashboard write it: the data set a row
// comes from and the row, every stored column under its snake_case name.
type ExportRecord struct {
	DataSet string         `json:"data_set"`
	Row     map[string]any `json:"row"`
}

// WriteExport writes everything in d as NDJSON, one ExportRecord a line:
// events, alerts, alert status changes, webhook deliveries. It returns the
// number of lines written.
func WriteExport(out io.Writer, d chstore.SubjectData) (int, error) {
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	n := 0
	for _, set := range []struct {
		name string
		rows any
	}{
		{chstore.TableEvents, d.Events},
		{chstore.TableAlerts, d.Alerts},
		{chstore.TableAlertStatus, d.AlertStatus},
		{chstore.TableWebhookDeliveries, d.WebhookDeliveries},
	} {
		rows := reflect.ValueOf(set.rows)
		for i := range rows.Len() {
			if err := enc.Encode(ExportRecord{DataSet: set.name, Row: rowFields(rows.Index(i))}); err != nil {
				return n, fmt.Errorf("export %s: %w", set.name, err)
			}
			n++
		}
	}
	if err := w.Flush(); err != nil {
		return n, fmt.Errorf("write export: %w", err)
	}
	return n, nil
}

// rowFields maps a chstore row struct to its exported fields, keyed in
// snake_case; times are UTC and a duration becomes whole milliseconds
// under NAME_ms.
func rowFields(v reflect.Value) map[string]any {
	t := v.Type()
	m := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		key, val := snakeCase(sf.Name), v.Field(i).Interface()
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

// snakeCase turns a Go field name into snake_case, keeping initialisms
// together: ClientIPPrefix is client_ip_prefix, TimeMS is time_ms.
func snakeCase(name string) string {
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
