package natsconn

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/logging"
)

// lockedBuffer is a bytes.Buffer the server's goroutines may log into.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records decodes the JSON log lines written so far.
func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		out = append(out, rec)
	}
	return out
}

func TestServerLoggerLevels(t *testing.T) {
	var buf lockedBuffer
	logger, lv := logging.New(&buf, "json", slog.LevelDebug)
	sl := newServerLogger(logger)
	sl.Noticef("Server is ready")
	sl.Warnf("Plaintext passwords detected, use nkeys or bcrypt")
	sl.Errorf("Error listening on port: %d, %q", 4222, "address already in use")
	sl.Fatalf("Can't start JetStream: %s", "no space left on device")
	sl.Debugf("Checking JetStream account %s", "$SYS")
	sl.Tracef("<<- [PING]")
	lv.Set(slog.LevelInfo)
	sl.Debugf("hidden at info")

	recs := buf.records(t)
	require.Len(t, recs, 5)
	want := []struct{ level, msg string }{
		{"INFO", "Server is ready"},
		{"WARN", "Plaintext passwords detected, use nkeys or bcrypt"},
		{"ERROR", `Error listening on port: 4222, "address already in use"`},
		{"ERROR", "Can't start JetStream: no space left on device"},
		{"DEBUG", "Checking JetStream account $SYS"},
	}
	for i, w := range want {
		require.Equal(t, w.level, recs[i]["level"], recs[i])
		require.Equal(t, w.msg, recs[i]["msg"], recs[i])
		require.Equal(t, "nats-server", recs[i]["component"], recs[i])
		require.NotContains(t, recs[i], "message")
	}
}

// The embedded server's own lines arrive with its text as the message.
func TestEmbeddedServerLogs(t *testing.T) {
	var buf lockedBuffer
	logger, _ := logging.New(&buf, "json", slog.LevelInfo)
	s, err := StartEmbedded(config.NATS{Listen: "127.0.0.1:0"}, t.TempDir(), logger)
	require.NoError(t, err)
	s.Shutdown()
	s.WaitForShutdown()

	var server []map[string]any
	for _, rec := range buf.records(t) {
		if rec["component"] == "nats-server" {
			server = append(server, rec)
		}
	}
	require.NotEmpty(t, server)
	var starting, ready bool
	for _, rec := range server {
		msg, _ := rec["msg"].(string)
		require.NotEqual(t, "nats-server", msg, "the server's text is the message: %v", rec)
		require.Contains(t, []any{"INFO", "WARN", "ERROR"}, rec["level"], rec)
		starting = starting || strings.HasPrefix(msg, "Starting nats-server")
		ready = ready || msg == "Server is ready"
	}
	require.True(t, starting && ready, "no start-up lines among %v", server)
}
