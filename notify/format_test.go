package notify

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testAlert returns a full alert; i varies its id.
func testAlert(i int) schemas.Alert {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return schemas.Alert{
		ID:         fmtID(i),
		Detector:   "brute_force",
		Severity:   schemas.SeverityHigh,
		Time:       schemas.At(at),
		DetectedAt: schemas.At(at.Add(150 * time.Millisecond)),
		App:        "shop",
		Subject:    "sub_1",
		Title:      "Many failed logins",
		Summary:    "12 failed logins for sub_1 in 5 minutes <from 203.0.113.0/24>",
		Details:    map[string]any{"failures": 12},
		Evidence:   []string{"ev-1", "ev-2"},
	}
}

func fmtID(i int) string {
	b, _ := json.Marshal(i)
	id := "00000000000000000000000000000000" + string(b)
	return id[len(id)-32:]
}

func testAlertJSON(t testing.TB, a schemas.Alert) []byte {
	t.Helper()
	b, err := json.Marshal(&a)
	require.NoError(t, err)
	return b
}

func TestFormats(t *testing.T) {
	t.Parallel()
	raw := testAlertJSON(t, testAlert(7))
	m, err := decodeAlert(raw)
	require.NoError(t, err)
	tests := []struct {
		name        string
		webhook     Webhook
		dashboard   string
		contentType string
	}{
		{name: "json", webhook: Webhook{Name: "w", Format: FormatJSON}, contentType: "application/json"},
		{name: "slack", webhook: Webhook{Name: "w", Format: FormatSlack}, dashboard: "https://sessionmon.example.com/", contentType: "application/json"},
		{name: "slack_no_dashboard", webhook: Webhook{Name: "w", Format: FormatSlack}, contentType: "application/json"},
		{name: "template", webhook: Webhook{Name: "teams", Format: FormatTemplate, ContentType: "application/json",
			Template: `{"title": {{json .Alert.Title}}, "text": {{json .Alert.Summary}}, "link": {{json .AlertURL}}, "webhook": "{{.Webhook}}", "severity": "{{.Alert.Severity}}"}`},
			dashboard: "https://sessionmon.example.com", contentType: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := newFormatter(&tt.webhook, tt.webhook.Template, tt.dashboard)
			require.NoError(t, err)
			body, ct, err := f.format(m)
			require.NoError(t, err)
			require.Equal(t, tt.contentType, ct)
			require.True(t, json.Valid(body), "%s", body)
			if tt.name == "json" {
				require.Equal(t, raw, body, "the alert JSON as published")
				return
			}
			golden := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, body, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(body))
		})
	}
}

func TestTemplateErrorIsPermanent(t *testing.T) {
	t.Parallel()
	w := Webhook{Name: "w", Format: FormatTemplate, Template: `{{.Alert.Nope}}`}
	f, err := newFormatter(&w, w.Template, "")
	require.NoError(t, err)
	m, err := decodeAlert(testAlertJSON(t, testAlert(1)))
	require.NoError(t, err)
	_, _, err = f.format(m)
	require.Error(t, err)
}

func TestDecodeAlertInvalid(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`nope`, `{}`, `{"id":"x","detector":"d","severity":"urgent"}`} {
		_, err := decodeAlert([]byte(raw))
		require.ErrorIs(t, err, ErrInvalidAlert, raw)
	}
}
