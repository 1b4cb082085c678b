package retention

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

func TestSnakeCase(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"TimeMS": "time_ms", "ClientIPPrefix": "client_ip_prefix", "UABrowser": "ua_browser",
		"AlertID": "alert_id", "HTTPStatus": "http_status", "ID": "id", "AuthLastAuthAtMS": "auth_last_auth_at_ms",
	} {
		require.Equal(t, want, snakeCase(in), in)
	}
}

func TestWriteExport(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	d := chstore.SubjectData{
		Events:      []chstore.EventRow{{ID: "ev-1", Type: "login.succeeded", Time: at, Subject: "sub_0001"}},
		Alerts:      []chstore.AlertRow{{ID: "a1", Detector: "brute_force", Subject: "sub_0001"}},
		AlertStatus: []chstore.AlertStatusRow{{ID: "s1", AlertID: "a1", Status: "resolved"}},
	}
	var buf bytes.Buffer
	n, err := WriteExport(&buf, d)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	var first ExportRecord
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, chstore.TableEvents, first.DataSet)
	require.Equal(t, "ev-1", first.Row["id"])
	require.Equal(t, "2026-11-25T09:00:00Z", first.Row["time"], "times in UTC")
	require.Contains(t, lines[1], `"data_set":"alerts"`)
	require.Contains(t, lines[2], `"data_set":"alert_status"`)
}
