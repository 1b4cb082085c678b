package retention_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const day = retention.Day

// event returns event i (subject sub_i) of type typ at at.
func event(i int, typ schemas.Type, at time.Time) chstore.EventRow {
	return chstore.NewEventRow(&schemas.Event{
		ID: fmt.Sprintf("ev-%04d", i), SchemaVersion: schemas.SchemaVersion, Type: typ,
		Time: schemas.At(at), App: "shop", Subject: fmt.Sprintf("sub_%04d", i),
	}, at)
}

// seed stores events 1..7 (subject sub_i) and three alert status changes
// around now.
func seed(t *testing.T, s *chstore.Store) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{
		event(1, schemas.LoginSucceeded, now.Add(-40*day)),
		event(2, schemas.LoginFailed, now.Add(-40*day)),
		event(3, schemas.LoginFailed, now.Add(-day)),
		event(4, schemas.LoginSucceeded, now.Add(-day)),
		event(5, schemas.LoginFailed, now.Add(-10*day)),
		event(6, schemas.LoginSucceeded, now.Add(-10*day)),
		// Older than 30 days, but its day partition is not wholly expired.
		event(7, schemas.LoginSucceeded, now.Add(-30*day-time.Hour)),
	}))
	status := func(id string, at time.Time) chstore.AlertStatusRow {
		return chstore.AlertStatusRow{ID: id, AlertID: "a-" + id, Status: string(schemas.StatusResolved), Actor: "dpo", Time: at}
	}
	require.NoError(t, s.AppendAlertStatus(ctx,
		status("sep", time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC)),
		status("oct", time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)),
		status("nov", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
	))
}

// stored returns which of events 1..7 are stored.
func stored(t *testing.T, s *chstore.Store) []int {
	t.Helper()
	var out []int
	for i := 1; i <= 7; i++ {
		rows, err := s.EventsBySubject(t.Context(), fmt.Sprintf("sub_%04d", i), 10)
		require.NoError(t, err)
		if len(rows) > 0 {
			out = append(out, i)
		}
	}
	return out
}

func statusRows(t *testing.T, s *chstore.Store) uint64 {
	t.Helper()
	n, err := s.CountMatching(t.Context(), chstore.RowFilter{Table: chstore.TableAlertStatus, Before: now.Add(day)})
	require.NoError(t, err)
	return n
}

func testConfig(t *testing.T) retention.Config {
	t.Helper()
	cfg, err := retention.ParseConfig([]byte(`
periods: {events: 30d, alert_status: 30d}
event_types: {login.failed: 7d}
`))
	require.NoError(t, err)
	return cfg
}

func wantSteps(after bool) []retention.Step {
	left := func(n uint64) uint64 {
		if after {
			return 0
		}
		return n
	}
	return []retention.Step{
		{DataSet: "events", Action: chstore.ActionDropPartition, Policy: "periods.events 30d", Target: "20261016", RowsBefore: 2, RowsAfter: left(2)},
		{DataSet: "alert_status", Action: chstore.ActionDropPartition, Policy: "periods.alert_status 30d", Target: "202609", RowsBefore: 1, RowsAfter: left(1)},
		{DataSet: "alert_status", Action: chstore.ActionDeleteRows, Policy: "periods.alert_status 30d",
			Target: "time >= '2026-10-01 00:00:00' AND time < '2026-10-26 12:00:00'", RowsBefore: 1, RowsAfter: left(1)},
		{DataSet: "events", Action: chstore.ActionDeleteRows, Policy: "event_types.login.failed 7d",
			Target: "type = 'login.failed' AND time >= '2026-10-26 00:00:00' AND time < '2026-11-18 12:00:00'", RowsBefore: 1, RowsAfter: left(1)},
	}
}

func TestRunDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	seed(t, s)
	rep, err := retention.Run(t.Context(), s, testConfig(t), now, true)
	require.NoError(t, err)
	require.True(t, rep.DryRun)
	require.Empty(t, rep.Job)
	require.Equal(t, wantSteps(false), rep.Steps)
	require.Zero(t, rep.RowsDeleted())

	require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, stored(t, s))
	require.Equal(t, uint64(3), statusRows(t, s))
	log, err := s.DeletionLog(t.Context(), 100)
	require.NoError(t, err)
	require.Empty(t, log, "a dry run writes no deletion log")
}

func TestRunDeletesExpiredAndLogs(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seed(t, s)
	rep, err := retention.Run(ctx, s, testConfig(t), now, false)
	require.NoError(t, err)
	require.Equal(t, wantSteps(true), rep.Steps)
	require.Equal(t, uint64(5), rep.RowsDeleted())

	// 40 days old: gone; login.failed 10 days old: gone (7d); the rest
	// stays, including the 30d+1h one in a partly live day.
	require.Equal(t, []int{3, 4, 6, 7}, stored(t, s))
	require.Equal(t, uint64(1), statusRows(t, s))

	log, err := s.DeletionLogOfJob(ctx, rep.Job)
	require.NoError(t, err)
	require.Len(t, log, len(rep.Steps)+1)
	sum := log[0]
	for i, st := range rep.Steps {
		r := log[i+1]
		require.Equal(t, []any{st.DataSet, st.Action, st.Policy, st.Target, st.RowsBefore, st.RowsAfter, chstore.OutcomeOK, ""},
			[]any{r.DataSet, r.Action, r.Policy, r.Target, r.RowsBefore, r.RowsAfter, r.Outcome, r.Error}, "step %d", i)
	}
	require.Equal(t, chstore.ActionRun, sum.Action)
	require.Equal(t, uint64(5), sum.RowsBefore)
	last, ok, err := s.LastRun(ctx, chstore.OutcomeOK)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, sum, last)

	// Running again finds nothing to do, and says so in the log.
	again, err := retention.Run(ctx, s, testConfig(t), now, false)
	require.NoError(t, err)
	require.Empty(t, again.Steps)
	require.Equal(t, []int{3, 4, 6, 7}, stored(t, s))
	log, err = s.DeletionLogOfJob(ctx, again.Job)
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Equal(t, chstore.OutcomeOK, log[0].Outcome)
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := retention.DefaultConfig()
	cfg.Periods = map[string]retention.Period{}
	_, err := retention.Run(t.Context(), nil, cfg, now, true)
	require.ErrorIs(t, err, retention.ErrInvalidConfig)
	require.ErrorContains(t, err, "retention.periods.events: missing")
}

func TestRunKeepsHeldSubjects(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seed(t, s)
	// sub_0001 (40 days old, in a partition that expired) is held, and so
	// is sub_0005 (a login.failed 10 days old, past its 7-day period).
	for _, sub := range []string{"sub_0001", "sub_0005"} {
		_, err := retention.SetLegalHold(ctx, s, sub, "case 42", "dpo")
		require.NoError(t, err)
	}
	dry, err := retention.Run(ctx, s, testConfig(t), now, true)
	require.NoError(t, err)
	require.Equal(t, uint64(2), dry.RowsKept())
	require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, stored(t, s), "a dry run changes nothing")

	rep, err := retention.Run(ctx, s, testConfig(t), now, false)
	require.NoError(t, err)
	require.Equal(t, uint64(2), rep.RowsKept())
	// sub_0002 (40 days) is gone with the rest of its day, sub_0001 stays;
	// login.failed of sub_0005 stays, nobody else's old rows do.
	require.Equal(t, []int{1, 3, 4, 5, 6, 7}, stored(t, s))
	require.Equal(t, uint64(1), statusRows(t, s), "tables without held rows are handled as before")

	var ev []retention.Step
	for _, st := range rep.Steps {
		if st.DataSet == retention.DataSetEvents {
			ev = append(ev, st)
		}
	}
	require.Equal(t, []retention.Step{
		{DataSet: "events", Action: chstore.ActionDeleteRows, Policy: "periods.events 30d",
			Target:     "time >= '2026-10-16 00:00:00' AND time < '2026-10-17 00:00:00' AND subject NOT IN (2 held subjects)",
			RowsBefore: 1, RowsAfter: 0, Kept: 1},
		{DataSet: "events", Action: chstore.ActionKeepHeld, Policy: "event_types.login.failed 7d",
			Target: "type = 'login.failed' AND time >= '2026-10-26 00:00:00' AND time < '2026-11-18 12:00:00' AND subject NOT IN (2 held subjects)",
			Kept:   1},
	}, ev)

	log, err := s.DeletionLogOfJob(ctx, rep.Job)
	require.NoError(t, err)
	require.Contains(t, log[0].Target, "; 2 rows kept under legal hold", "the summary row")
	var kept int
	for _, r := range log[1:] {
		if r.DataSet == retention.DataSetEvents {
			require.Contains(t, r.Target, "; 1 rows kept under legal hold")
			require.NotContains(t, r.Target, "sub_000", "the log never names a subject")
			kept++
		}
	}
	require.Equal(t, 2, kept)

	// Lifted: the next run deletes what was kept.
	for _, sub := range []string{"sub_0001", "sub_0005"} {
		require.NoError(t, retention.LiftLegalHold(ctx, s, sub, "dpo"))
	}
	again, err := retention.Run(ctx, s, testConfig(t), now, false)
	require.NoError(t, err)
	require.Zero(t, again.RowsKept())
	require.Equal(t, []int{3, 4, 6, 7}, stored(t, s))
}

func TestRunMutationTimeoutFailsStep(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seed(t, s)
	stickMutation(t, s, chstore.TableEvents)
	cfg := testConfig(t)
	cfg.MutationTimeout = retention.Period(300 * time.Millisecond)
	rep, err := retention.Run(ctx, s, cfg, now, false)
	require.Error(t, err)
	var te *chstore.MutationTimeoutError
	require.True(t, errors.As(err, &te), "%v", err)
	require.Equal(t, chstore.TableEvents, te.Table)

	var failed *retention.Step
	for i, st := range rep.Steps {
		if st.Action == chstore.ActionDeleteRows && st.DataSet == retention.DataSetEvents {
			failed = &rep.Steps[i]
		}
	}
	require.NotNil(t, failed)
	require.ErrorAs(t, failed.Err, &te)
	require.Equal(t, failed.RowsBefore, failed.RowsAfter, "nothing deleted yet")

	log, err := s.DeletionLogOfJob(ctx, rep.Job)
	require.NoError(t, err)
	var outcomes []string
	for _, r := range log {
		if r.Action == chstore.ActionDeleteRows && r.DataSet == retention.DataSetEvents {
			outcomes = append(outcomes, r.Outcome)
			require.Contains(t, r.Error, "mutations of table events not done after 300ms: mutation_")
		}
	}
	require.Equal(t, []string{chstore.OutcomeFailed}, outcomes)
	require.Equal(t, chstore.OutcomeFailed, log[0].Outcome, "the run failed")
}

func TestRunSkipsMissingAuditLog(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	// As before the dashboard's migration 007 created it.
	exec(t, "DROP TABLE IF EXISTS "+s.Database()+"."+chstore.TableAuditLog)
	for _, dryRun := range []bool{true, false} {
		rep, err := retention.Run(t.Context(), s, testConfig(t), now, dryRun)
		require.NoError(t, err)
		require.Equal(t, []retention.Skip{{DataSet: retention.DataSetAuditLog, Reason: "table not created yet"}}, rep.Skipped)
	}
}

func TestRunPerAppPeriod(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := func(i int, app string, age time.Duration) chstore.EventRow {
		r := event(i, schemas.LoginSucceeded, now.Add(-age))
		r.App = app
		return r
	}
	// sub_1 and sub_2: "kiosk" (kept 7 days), 10 days and 1 day old;
	// sub_3: "shop" (kept 30 days), 10 days old.
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{
		at(1, "kiosk", 10*day), at(2, "kiosk", day), at(3, "shop", 10*day),
	}))
	cfg, err := retention.ParseConfig([]byte("periods: {events: 30d}\napps: {kiosk: 7d}\n"))
	require.NoError(t, err)
	rep, err := retention.Run(ctx, s, cfg, now, false)
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, stored(t, s), "only kiosk's events older than 7 days go")
	require.Len(t, rep.Steps, 1)
	require.Equal(t, "apps.kiosk 7d", rep.Steps[0].Policy)
	require.Equal(t, "app = 'kiosk' AND time >= '2026-10-26 00:00:00' AND time < '2026-11-18 12:00:00'", rep.Steps[0].Target)
	require.Equal(t, uint64(1), rep.Steps[0].RowsBefore)
}
