package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// requireInOrder checks that every want is in s, each after the one
// before, and returns s from the end of the last.
func requireInOrder(t *testing.T, s string, wants ...string) {
	t.Helper()
	rest := s
	for _, w := range wants {
		i := strings.Index(rest, w)
		require.GreaterOrEqual(t, i, 0, "%q not found (in order) in:\n%s", w, s)
		rest = rest[i+len(w):]
	}
}

func TestRetentionRunProgress(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	now := time.Now().UTC()
	old, failed, recent := now.Add(-40*24*time.Hour), now.Add(-10*24*time.Hour), now.Add(-time.Hour)
	var rows []chstore.EventRow
	for i, ev := range []struct {
		at  time.Time
		typ schemas.Type
	}{{old, schemas.LoginSucceeded}, {failed, schemas.LoginFailed}, {recent, schemas.LoginFailed}} {
		rows = append(rows, chstore.NewEventRow(&schemas.Event{
			ID: fmt.Sprintf("ev-%d", i), SchemaVersion: schemas.SchemaVersion, Type: ev.typ,
			Time: schemas.At(ev.at), App: "shop", Subject: "sub_0001",
		}, ev.at))
	}
	require.NoError(t, store.InsertEvents(ctx, rows))
	runEnv := func(out, errOut *bytes.Buffer, dryRun bool) *env {
		e := retentionEnv(t, out, dryRun, "run")
		e.cfg.RetentionYAML = []byte("periods: {events: 30d}\nevent_types: {login.failed: 7d}\n")
		e.cfg.Format = "json"
		e.stderr = errOut
		return e
	}

	var out, errOut bytes.Buffer
	require.NoError(t, runRetention(ctx, runEnv(&out, &errOut, true)))
	part := old.Format("20060102")
	requireInOrder(t, errOut.String(),
		"retention run: events: started\n",
		"retention run: events: drop_partition "+part+": 1 rows to delete\n",
		"retention run: events: done, 1 rows to delete in ",
		"retention run: events: delete_rows type = 'login.failed' AND ", ": 1 rows to delete\n",
		"retention run (dry run): 2 steps would delete 2 rows, ", "; nothing deleted, in ")

	out.Reset()
	errOut.Reset()
	require.NoError(t, runRetention(ctx, runEnv(&out, &errOut, false)))
	var run retentionRunJSON
	require.NoError(t, json.Unmarshal(out.Bytes(), &run), "stdout is one JSON document:\n%s", out.String())
	require.Len(t, run.Steps, 2)
	stderr := errOut.String()
	requireInOrder(t, stderr,
		"retention run: events: started\n",
		"retention run: events: drop_partition "+part+": started, 1 rows\n",
		"retention run: events: drop_partition "+part+": done, 1 rows in ",
		"retention run: events: done, 1 rows deleted in ", ", 1 steps\n",
		"retention run: alerts: started\n",
		"retention run: alerts: done, 0 rows deleted in ", ", 0 steps\n",
		"retention run: events: delete_rows type = 'login.failed' AND ", ": started, 1 rows\n",
		"retention run: events: delete_rows type = 'login.failed' AND ", ": done, 1 rows in ",
		"retention run: 2 steps, 2 rows deleted, 0 rows kept under legal hold, ", " data sets skipped, 0 steps failed, in ")
	require.True(t, strings.HasSuffix(stderr, "\n"))
	require.Equal(t, 1, strings.Count(stderr, "retention run: 2 steps"), "one summary, at the end:\n%s", stderr)
	require.True(t, strings.HasPrefix(stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:], "retention run: 2 steps"),
		"the summary is the last line:\n%s", stderr)
	require.NotContains(t, stderr, "\r", "not a terminal: one line per step")
	require.NotContains(t, stderr, "sub_0001")
	n, err := store.CountEvents(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
}

func TestEraseAndExportProgress(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	seedSubject(t, store)

	var out, errOut bytes.Buffer
	e := subjectEnv(t, &out, "sub_0001")
	e.stderr = &errOut
	require.NoError(t, runExport(ctx, e))
	require.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), 3, "stdout holds the NDJSON alone")
	requireInOrder(t, errOut.String(),
		"export: read from ClickHouse: started\n",
		"export: read from ClickHouse: done, 3 rows in ",
		"export: write NDJSON: started\n",
		"export: write NDJSON: done, 3 lines in ",
		"export: 3 lines written (1 events, 1 alerts, 0 alert status changes, 1 webhook deliveries) in ")
	require.NotContains(t, errOut.String(), "sub_0001")

	out.Reset()
	errOut.Reset()
	e = subjectEnv(t, &out, "sub_0001")
	e.stderr = &errOut
	require.NoError(t, runErase(ctx, e))
	require.Regexp(t, `^request (erasure-\S+): pending\nrequest erasure-\S+: done\n`, out.String(), "stdout as before")
	stderr := errOut.String()
	// Tables keyed by alert id go first (alert_status has no rows here).
	requireInOrder(t, stderr,
		"erase: webhook_deliveries: started, 1 rows\n",
		"erase: webhook_deliveries: done, 1 rows in ",
		"erase: alerts: started, 1 rows\n",
		"erase: alerts: done, 1 rows in ",
		"erase: events: started, 1 rows\n",
		"erase: events: done, 1 rows in ",
		"erase: NATS streams and detector state: started\n",
		"erase: NATS stream "+schemas.AlertStream+": 0 messages deleted\n",
		"erase: NATS stream "+schemas.DLQStream+": 0 messages deleted\n",
		"erase: NATS stream "+schemas.EventStream+": 0 messages deleted\n",
		"erase: NATS streams and detector state: done, 0 messages in ",
		"erase: erasure requests: clear the pseudonym: started\n",
		"erase: erasure requests: clear the pseudonym: done, ",
		"erase: request erasure-", " done in ", ": 3 rows erased, 0 messages deleted from NATS streams\n")
	require.NotContains(t, stderr, "alert_status:", "no rows, no step")
	require.NotContains(t, stderr, "sub_0001", "progress never names the subject")
	require.NotContains(t, stderr, "\r")
}

func TestDetectOfflineProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events := filepath.Join(dir, "events.ndjson")
	code, _, errOut := runCmd(t, t.Context(), "demo", "--output", events, "--demo-users", "50")
	require.Equal(t, exitOK, code, errOut)
	data, err := os.ReadFile(events)
	require.NoError(t, err)
	half := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 1

	// The events come through a pipe, half of them, then the rest once
	// progress was reported: a run that lasts longer than a report.
	fifo := filepath.Join(dir, "events.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	var stdout bytes.Buffer
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(t.Context(), []string{"detect", "--input", fifo}, &stdout, &stderr) }()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer w.Close()
	_, err = w.Write(data[:half])
	require.NoError(t, err)
	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if !regexp.MustCompile(`detect: [1-9]\d* events, `).MatchString(stderr.String()) {
			return fmt.Errorf("no progress yet:\n%s", stderr.String())
		}
		return nil
	})
	_, err = w.Write(data[half:])
	require.NoError(t, err)
	require.NoError(t, w.Close())
	select {
	case code = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("detect did not end")
	}
	errText := stderr.String()
	require.Equal(t, exitOK, code, errText)
	lines := strings.Count(string(data), "\n")
	require.Regexp(t, `(?m)^detect: [1-9]\d* events, \d+ events/s, \d+ alerts, \S+$`, errText, "a pipe has no size: no share")
	requireInOrder(t, errText, "detect: ", " events, ",
		fmt.Sprintf("detect: %d events, 0 invalid lines, ", lines))
	require.NotContains(t, errText, "\r")

	// stdout holds the alerts alone, as many as the summary says.
	alerts := 0
	for line := range strings.Lines(stdout.String()) {
		var a map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &a), line)
		require.NotEmpty(t, a["detector"])
		alerts++
	}
	require.Positive(t, alerts)
	require.Contains(t, errText, fmt.Sprintf(" invalid lines, %d alerts (", alerts))
}

func TestDetectProgressShare(t *testing.T) {
	t.Parallel()
	var (
		c    detect.OfflineCounters
		read atomic.Int64
		buf  syncBuffer
	)
	pr := progress.NewPrinter(&buf, "detect", false, 0)
	c.Events.Store(2)
	c.Alerts.Store(1)
	read.Store(4)
	stop := reportDetectProgress(pr, &c, &read, 8, 10*time.Millisecond)
	poll.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(buf.String(), "detect: 2 events, 50% of the input, ") {
			return fmt.Errorf("no progress line:\n%s", buf.String())
		}
		return nil
	})
	stop()
	require.Contains(t, buf.String(), " events/s, 1 alerts, ")
}
