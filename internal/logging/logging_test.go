package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDurationsAreText(t *testing.T) {
	var buf bytes.Buffer
	logger, _ := New(&buf, "json", slog.LevelInfo)
	logger.Info("retrying",
		slog.Duration("retry_in", 1500*time.Millisecond),
		slog.Group("batch", slog.Duration("age", 2*time.Minute)),
		slog.Any("wait", 250*time.Millisecond),
		slog.Int("rows", 3))
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
	require.Equal(t, "1.5s", rec["retry_in"])
	require.Equal(t, map[string]any{"age": "2m0s"}, rec["batch"])
	require.Equal(t, "250ms", rec["wait"])
	require.Equal(t, float64(3), rec["rows"], "other kinds are left alone")

	buf.Reset()
	logger, _ = New(&buf, "text", slog.LevelInfo)
	logger.With(slog.Duration("timeout", 5*time.Second)).Info("waiting", slog.Duration("retry_in", 1500*time.Millisecond))
	line := buf.String()
	require.True(t, strings.Contains(line, "timeout=5s") && strings.Contains(line, "retry_in=1.5s"), line)
}

func TestLevelVar(t *testing.T) {
	var buf bytes.Buffer
	logger, lv := New(&buf, "text", slog.LevelWarn)
	logger.Info("hidden")
	require.Empty(t, buf.String())
	lv.Set(slog.LevelInfo)
	logger.Info("shown")
	require.Contains(t, buf.String(), "msg=shown")
}
