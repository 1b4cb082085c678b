package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// retentionEnv returns an env for the retention command on the test's
// database, with a 30-day events period.
func retentionEnv(t *testing.T, out *bytes.Buffer, dryRun bool, args ...string) *env {
	t.Helper()
	cfg := config.Default()
	cfg.ClickHouseDSN = chtest.DSN(t)
	cfg.RetentionYAML = []byte("periods: {events: 30d}\n")
	cfg.RetentionRun.DryRun = dryRun
	cfg.NATS.URL = natstest.RunServer(t).ClientURL()
	// Progress goes to stderr, apart from the result on stdout.
	return &env{cfg: &cfg, logger: slog.New(slog.DiscardHandler), stdout: out, stderr: new(bytes.Buffer), args: args}
}

func TestRetentionRunAndReport(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	old := time.Now().UTC().Add(-40 * 24 * time.Hour)
	recent := time.Now().UTC().Add(-24 * time.Hour)
	var rows []chstore.EventRow
	for i, at := range []time.Time{old, recent} {
		rows = append(rows, chstore.NewEventRow(&schemas.Event{
			ID: "ev-" + string(rune('a'+i)), SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginSucceeded,
			Time: schemas.At(at), App: "shop", Subject: "sub_0001",
		}, at))
	}
	require.NoError(t, store.InsertEvents(ctx, rows))

	var out bytes.Buffer
	require.NoError(t, runRetention(ctx, retentionEnv(t, &out, true, "run")))
	require.Contains(t, out.String(), "dry run: nothing was deleted")
	require.Contains(t, out.String(), old.Format("20060102"))
	out.Reset()
	dryJSON := retentionEnv(t, &out, true, "run")
	dryJSON.cfg.Format = "json"
	require.NoError(t, runRetention(ctx, dryJSON))
	var run retentionRunJSON
	require.NoError(t, json.Unmarshal(out.Bytes(), &run), out.String())
	require.True(t, run.DryRun)
	require.NotEmpty(t, run.Steps)
	require.Equal(t, "events", run.Steps[0].DataSet)
	require.Equal(t, run.Steps[0].RowsBefore, run.Steps[0].RowsAfter, "a dry run deletes nothing")
	n, err := store.CountEvents(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), n)

	out.Reset()
	require.NoError(t, runRetention(ctx, retentionEnv(t, &out, false, "run")))
	require.Contains(t, out.String(), "job retention-")
	n, err = store.CountEvents(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)

	out.Reset()
	require.NoError(t, runRetention(ctx, retentionEnv(t, &out, false, "report")))
	for _, want := range []string{
		"events\n  period: 30d\n",
		"fields: id, type, time, time_ms,",
		"oldest data present: " + recent.Truncate(time.Second).Format(time.RFC3339),
		"alerts\n  period: 365d\n",
		"oldest data present: none (empty)",
		"dead_letters\n  period: 7d\n  stored in: JetStream stream SESSIONMON_DLQ",
		"last successful run: retention-",
		"1 rows deleted",
	} {
		require.Contains(t, out.String(), want)
	}

	// While another process holds the retention lock (the scheduled job
	// of a serve), a run does nothing and says so.
	busy := retentionEnv(t, &out, false, "run")
	js := natstest.ConnectURL(t, busy.cfg.NATS.URL)
	release, err := natsconn.TryLock(ctx, js, "retention", time.Hour)
	require.NoError(t, err)
	require.ErrorContains(t, runRetention(ctx, busy), "another process is running retention")
	release()
	require.NoError(t, runRetention(ctx, busy))

	// -o json: the report as one JSON object.
	out.Reset()
	reportJSON := retentionEnv(t, &out, false, "report")
	reportJSON.cfg.Format = "json"
	require.NoError(t, runRetention(ctx, reportJSON))
	var rep retentionReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.NotEmpty(t, rep.DataSets)
	require.Equal(t, "events", rep.DataSets[0].Name)
	require.Equal(t, "30d", rep.DataSets[0].Period)
	require.True(t, rep.DataSets[0].TableExists)
	require.Contains(t, rep.DataSets[0].Fields, "time_ms")
	require.NotNil(t, rep.LastRun)
	require.Regexp(t, `^retention-`, rep.LastRun.Job)
	require.Contains(t, out.String(), `"last_successful_run": {`)

	var ue *usageError
	require.ErrorAs(t, runRetention(ctx, retentionEnv(t, &out, false, "purge")), &ue)
	require.Contains(t, ue.Error(), "want run or report")
	e := retentionEnv(t, &out, false, "report")
	e.cfg.DLQ.MaxAge = 30 * 24 * time.Hour
	require.ErrorContains(t, runRetention(ctx, e), "SESSIONMON_DLQ_MAX_AGE")
}

func TestStreamsMayNotOutliveRetention(t *testing.T) {
	t.Parallel()
	rc, err := retention.ParseConfig([]byte("periods: {events: 3d, dead_letters: 2d}\n"))
	require.NoError(t, err)
	cfg := config.Default() // events kept 7d in NATS, dead letters 7d
	err = checkStreamLimits(&cfg, rc)
	require.ErrorContains(t, err, "SESSIONMON_STREAM_MAX_AGE")
	require.ErrorContains(t, err, "SESSIONMON_DLQ_MAX_AGE")

	cfg.Stream.MaxAge, cfg.DLQ.MaxAge = 3*24*time.Hour, 2*24*time.Hour
	require.NoError(t, checkStreamLimits(&cfg, rc))
}
