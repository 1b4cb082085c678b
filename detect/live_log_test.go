package detect

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// TestAlertLogCarriesNoPseudonym: the log line of a published alert names
// the alert, never its subject or session (pseudonyms are personal data).
func TestAlertLogCarriesNoPseudonym(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := &Service{logger: slog.New(slog.NewJSONHandler(&buf, nil)), metrics: NewMetrics(nil)}
	const subject, session = "k1:SUBJECTxxxxxxxxxxxxxx", "k1:SESSIONxxxxxxxxxxxxxx"
	a := &schemas.Alert{ID: "alert-1", Detector: bruteForceName, Severity: schemas.SeverityHigh, App: "shop",
		Subject: subject, Session: session, Evidence: []string{"ev-1"}}
	s.published(a, nil)

	require.NotContains(t, buf.String(), subject)
	require.NotContains(t, buf.String(), session)
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "alert", line["msg"])
	require.Equal(t, "alert-1", line["alert_id"])
	require.Equal(t, bruteForceName, line["detector"])
	require.Equal(t, string(schemas.SeverityHigh), line["severity"])
	require.Equal(t, "shop", line["app"])
}
