package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// runCmd runs the CLI with args and returns its exit code and output.
func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{name: "no args lists commands", args: nil, code: exitOK, contains: []string{"serve", "publish", "demo", "version"}},
		{name: "version", args: []string{"version"}, code: exitOK, contains: []string{"sessionmon ", "(commit ", "go1."}},
		{name: "serve help names env vars and defaults", args: []string{"serve", "--help"}, code: exitOK,
			contains: []string{"--nats-url", "SESSIONMON_NATS_URL", "--data-dir", `default "./data"`, "SESSIONMON_NATS_TOKEN_FILE"}},
		{name: "help COMMAND", args: []string{"help", "publish"}, code: exitOK, contains: []string{"--file", "reported with its line"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, contains: []string{`unknown command "frobnicate"`}},
		{name: "unknown flag", args: []string{"serve", "--nats-ulr", "x"}, code: exitUsage, contains: []string{"nats-ulr"}},
		{name: "bad config names the variable", args: []string{"serve", "--log-format", "xml"}, code: exitUsage, contains: []string{"SESSIONMON_LOG_FORMAT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(t, t.Context(), tt.args...)
			require.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			for _, c := range tt.contains {
				require.Contains(t, out+errOut, c)
			}
		})
	}
}

// event returns a valid schema v1 event line.
func event(id, subject string) string {
	e := schemas.Event{
		ID: id, SchemaVersion: 1, Type: schemas.LoginFailed, Time: schemas.At(time.Now().Add(-time.Minute)),
		App: "shop", Subject: subject, Reason: "bad_password",
	}
	b, err := schemas.Encode(&e)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestPublishFile(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	stream, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)

	lines := []string{
		event("ev-1", "k1:AAAAAAAAAAAAAAAAAAAAAA"),
		`{"id":"ev-2","schema_version":1,"type":"login.failed","time":"2026-11-25T10:00:00Z","app":"shop","subject":"k1:BBBBBBBBBBBBBBBBBBBBBB"}`,
		"",
		`not json at all`,
		event("ev-3", "k1:CCCCCCCCCCCCCCCCCCCCCC"),
		event("ev-1", "k1:AAAAAAAAAAAAAAAAAAAAAA"),
		`{"id":"ev-4","schema_version":1,"type":"login.failed","time":"2026-11-25T10:00:00.000Z","app":"shop","subject":"alice@example.com"}`,
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))

	code, out, errOut := runCmd(t, t.Context(), "publish", "--file", file, "--nats-url", s.ClientURL())
	require.Equal(t, exitError, code, "rejected lines make the exit code 1")
	require.Contains(t, out, "published 2, duplicates 1, rejected 3 of 6 lines")
	require.Contains(t, errOut, "line 2: invalid event: time: must be RFC 3339")
	require.Contains(t, errOut, "line 4: invalid event: (event): must be a JSON object")
	require.Contains(t, errOut, "line 7: invalid event: subject: must be a pseudonym")
	require.NotContains(t, errOut, "alice@example.com", "errors must not echo personal data")

	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs)
}

// TestPublishFileManyEvents publishes a file far larger than the SDK's
// window, asynchronously: the counts stay exact (each repeated id once a
// duplicate, each bad line once rejected), the stream holds every event
// once, and publishing the same file again stores nothing new.
func TestPublishFileManyEvents(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	stream, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)

	// As ingest does, tell publishers how to batch.
	stopLayout, err := natsconn.ServeLayout(t.Context(), js.Conn(), js, nil)
	require.NoError(t, err)
	t.Cleanup(stopLayout)

	const events = 6000
	var b strings.Builder
	for i := range events {
		line := event(fmt.Sprintf("many-%05d", i), fmt.Sprintf("k1:many%015d", i%300))
		b.WriteString(line + "\n")
		if i%1000 == 0 {
			b.WriteString(line + "\n") // the same id again: a duplicate
			b.WriteString(`{"id":"bad"}` + "\n")
		}
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))

	code, out, errOut := runCmd(t, t.Context(), "publish", "--file", file, "--nats-url", s.ClientURL())
	require.Equal(t, exitError, code, errOut)
	require.Contains(t, out, fmt.Sprintf("published %d, duplicates 6, rejected 6 of %d lines", events, events+12))
	msgs, ids := storedEvents(t, stream)
	require.Len(t, ids, events, "every event stored once")
	require.Less(t, msgs, uint64(events/10), "events went in batched messages")

	_, out, _ = runCmd(t, t.Context(), "publish", "--file", file, "--nats-url", s.ClientURL())
	require.Contains(t, out, fmt.Sprintf("published 0, duplicates %d, rejected 6 of %d lines", events+6, events+12))
	again, ids := storedEvents(t, stream)
	require.Equal(t, msgs, again, "the same file packs into the same batches, which the stream drops")
	require.Len(t, ids, events)
}

// storedEvents returns the events stream's message count and the ids of
// the events in it, each stored once (a duplicate fails the test).
func storedEvents(t *testing.T, stream jetstream.Stream) (uint64, map[string]bool) {
	t.Helper()
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	ids := map[string]bool{}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		require.NoError(t, pii.AdmitMessage(m.Subject, m.Header, m.Data, time.Now(), func(_ int, _ []byte, e *schemas.Event, err error) {
			require.NoError(t, err)
			require.False(t, ids[e.ID], "event %s stored twice", e.ID)
			ids[e.ID] = true
		}))
	}
	return info.State.Msgs, ids
}

// streamEventCount returns how many events the stream's messages carry
// (one each, or a batch's count).
func streamEventCount(ctx context.Context, stream jetstream.Stream) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return 0, err
		}
		lines, _, err := schemas.SplitBatch(m.Header, m.Data)
		if err != nil {
			return 0, err
		}
		n += uint64(len(lines))
	}
	return n, nil
}

func mustStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	st, err := js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	return st
}

func TestServeWithDemo(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	store := chtest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out, errOut syncBuffer
	dumpLogOnFailure(t, &errOut)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dataDir, "--nats-listen", natsAddr, "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr,
			"--clickhouse-dsn", chtest.DSN(t), "--ingest-batch-age", "100ms",
			"--demo", "--demo-users", "20", "--demo-rate", "5000"}, &out, &errOut)
	}()

	poll.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || body.Checks["events_stream"] != "ok" || body.Checks["ingest"] != "ok" {
			return fmt.Errorf("readyz %d: %v", resp.StatusCode, body)
		}
		return nil
	})

	// The embedded server accepts outside clients with the credentials
	// serve wrote, and the demo fills the stream.
	s := natstest.ConnectURL(t, "nats://"+natsAddr, nats.UserCredentials(natsauth.CredsFile(natsauth.Dir(dataDir), natsauth.AdminUser)))
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		st, err := s.Stream(t.Context(), schemas.EventStream)
		if err != nil {
			return err
		}
		info, err := st.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs < 500 {
			return fmt.Errorf("%d events in the stream", info.State.Msgs)
		}
		return nil
	})
	// ... and ingest stores every event of it in ClickHouse, once.
	poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		events, err := streamEventCount(t.Context(), mustStream(t, s))
		if err != nil {
			return err
		}
		n, err := store.CountEvents(t.Context())
		if err != nil {
			return err
		}
		if n != events {
			return fmt.Errorf("%d of %d events in clickhouse", n, events)
		}
		return nil
	})
	// ... and the detectors find the demo's attacks: alerts on the stream
	// and in ClickHouse.
	poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		st, err := s.Stream(t.Context(), schemas.AlertStream)
		if err != nil {
			return err
		}
		info, err := st.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs < 10 {
			return fmt.Errorf("%d alerts on the stream", info.State.Msgs)
		}
		stored, err := store.AlertsSince(t.Context(), time.Now().Add(-48*time.Hour), 1000)
		if err != nil {
			return err
		}
		if len(stored) < 10 {
			return fmt.Errorf("%d alerts in clickhouse", len(stored))
		}
		return nil
	})
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(metrics), "sessionmon_ingest_events_total")

	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, "stderr:\n%s", errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of cancellation")
	}
}

func TestDemoFileThroughOfflineDetect(t *testing.T) {
	t.Parallel()
	events := filepath.Join(t.TempDir(), "events.ndjson")
	code, _, errOut := runCmd(t, t.Context(), "demo", "--output", events, "--demo-users", "200")
	require.Equal(t, exitOK, code, errOut)

	found := map[string]int{}
	for _, a := range detectAlerts(t, events) {
		require.NotEmpty(t, a["summary"])
		found[a["detector"].(string)]++
	}
	// The demo holds every attack; the detectors find each kind and
	// nothing on the 200 ordinary users beyond what the attacks explain.
	for _, name := range detect.DetectorNames() {
		require.Positive(t, found[name], "no %s alert from demo traffic", name)
	}
}

// detectAlerts runs detect --input over events with args, checks that
// every line was valid and the alerts went to --output, and returns them.
func detectAlerts(t *testing.T, events string, args ...string) []map[string]any {
	t.Helper()
	out := filepath.Join(t.TempDir(), "alerts.ndjson")
	code, stdout, errOut := runCmd(t, t.Context(), append([]string{"detect", "--input", events, "--output", out}, args...)...)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout, errOut)
	require.Empty(t, stdout, "alerts go to --output")
	require.Contains(t, errOut, " 0 invalid lines")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var alerts []map[string]any
	for line := range strings.Lines(string(b)) {
		var a map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &a))
		alerts = append(alerts, a)
	}
	return alerts
}

func TestDetectReportsBadLines(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(event("ev-1", "k1:AAAAAAAAAAAAAAAAAAAAAA")+"\n{broken\n"), 0o600))
	code, out, errOut := runCmd(t, t.Context(), "detect", "--input", file)
	require.Equal(t, exitOK, code, errOut)
	require.Empty(t, out)
	require.Contains(t, errOut, "line 2:")
	require.Contains(t, errOut, "1 events, 1 invalid lines, 0 alerts")
}

func TestServeDeliversDemoAlertsToWebhook(t *testing.T) {
	t.Parallel()
	var received atomic.Int64
	ids := sync.Map{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-signature") == "" || r.Header.Get("webhook-id") == "" {
			http.Error(w, "unsigned", http.StatusBadRequest)
			return
		}
		if _, dup := ids.LoadOrStore(r.Header.Get("webhook-id"), true); !dup {
			received.Add(1)
		}
	}))
	t.Cleanup(receiver.Close)
	cfgFile := filepath.Join(t.TempDir(), "sessionmon.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`notify:
  webhooks:
    - name: siem
      url: %s
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
      min_severity: high
      allow_http: true
      allow_private: true
`, receiver.URL)), 0o600))

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out, errOut syncBuffer
	dumpLogOnFailure(t, &errOut)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgFile, "--data-dir", t.TempDir(), "--nats-listen", freeAddr(t), "--metrics-addr", freeAddr(t), "--dashboard-addr", freeAddr(t),
			"--clickhouse-dsn", chtest.DSN(t), "--demo", "--demo-users", "20", "--demo-rate", "5000"}, &out, &errOut)
	}()
	poll.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		if n := received.Load(); n < 5 {
			return fmt.Errorf("%d alerts delivered", n)
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, "stderr:\n%s", errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of cancellation")
	}
}

// dumpLogOnFailure logs what a serve run wrote to its log when the test
// fails, to tell a slow run from a broken one.
func dumpLogOnFailure(t *testing.T, log *syncBuffer) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", log.String())
		}
	})
}

// TestPublishFileWithoutStream: a server without the events stream is
// refused at once, saying what to do, instead of every publish waiting.
func TestPublishFileWithoutStream(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	file := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(event("ev-1", "k1:AAAAAAAAAAAAAAAAAAAAAA")+"\n"), 0o600))
	code, _, errOut := runCmd(t, t.Context(), "publish", "--file", file, "--nats-url", s.ClientURL())
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "has no events stream SESSIONMON_EVENTS")
}
