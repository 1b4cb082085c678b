package chstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/schemas"
)

// eventAt returns row i of testRows, moved to at with type typ.
func eventAt(i int, at time.Time, typ schemas.Type) chstore.EventRow {
	e := testEvent(i)
	e.Time = schemas.At(at)
	e.Type = typ
	return chstore.NewEventRow(e, at)
}

func TestRetentionPartitionsDropAndDelete(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	day1 := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	day2 := day1.AddDate(0, 0, 1)
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{
		eventAt(1, day1, schemas.LoginFailed),
		eventAt(2, day1.Add(time.Hour), schemas.LoginSucceeded),
		eventAt(3, day2, schemas.LoginFailed),
		eventAt(4, day2.Add(time.Hour), schemas.LoginSucceeded),
	}))

	parts, err := s.Partitions(ctx, chstore.TableEvents)
	require.NoError(t, err)
	require.Len(t, parts, 2)
	require.Equal(t, "20261001", parts[0].ID)
	require.Equal(t, uint64(2), parts[0].Rows)
	require.Equal(t, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), parts[0].Start)
	require.Equal(t, time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), parts[0].End)
	require.True(t, parts[0].Expired(parts[0].End))
	require.False(t, parts[0].Expired(parts[0].End.Add(-time.Second)))

	oldest, ok, err := s.OldestRow(ctx, chstore.TableEvents)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, day1, oldest)

	require.NoError(t, s.DropPartition(ctx, chstore.TableEvents, "20261001"))
	n, err := s.CountRows(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), n)

	f := chstore.RowFilter{Table: chstore.TableEvents, Type: schemas.LoginFailed, Before: day2.Add(time.Minute)}
	n, err = s.CountMatching(ctx, f)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
	require.NoError(t, s.DeleteRows(ctx, f))
	require.NoError(t, s.WaitMutations(ctx, chstore.TableEvents, 50*time.Millisecond, time.Minute))
	n, err = s.CountMatching(ctx, f)
	require.NoError(t, err)
	require.Zero(t, n)
	rows, err := s.EventsBySubject(ctx, "sub_0004", 10)
	require.NoError(t, err)
	require.Len(t, rows, 1, "the other type stays")

	_, ok, err = s.OldestRow(ctx, chstore.TableAlerts)
	require.NoError(t, err)
	require.False(t, ok, "empty table")

	cols, err := s.TableColumns(ctx, chstore.TableAlertStatus)
	require.NoError(t, err)
	require.Equal(t, chstore.Column{Name: "id", Type: "String"}, cols[0])
}

func TestRetentionRejectsUnsafeArguments(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	before := time.Now()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"drop/unknown table", s.DropPartition(ctx, "schema_migrations", "20261001")},
		{"drop/id not digits", s.DropPartition(ctx, chstore.TableEvents, "20261001 OR 1")},
		{"delete/type not in enum", s.DeleteRows(ctx, chstore.RowFilter{Table: chstore.TableEvents, Type: "x' OR '1", Before: before})},
		{"delete/type on alerts", s.DeleteRows(ctx, chstore.RowFilter{Table: chstore.TableAlerts, Type: schemas.LoginFailed, Before: before})},
		{"delete/no before", s.DeleteRows(ctx, chstore.RowFilter{Table: chstore.TableEvents})},
	} {
		require.ErrorIs(t, tc.err, chstore.ErrInvalidArgument, tc.name)
	}
	_, err := s.Partitions(ctx, "events; DROP TABLE x")
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

func TestDeletionLog(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 25, 3, 30, 0, 250e6, time.UTC)
	rows := []chstore.DeletionLogRow{
		{ID: "a", Job: "j1", Policy: "periods.events 30d", DataSet: "events", Action: chstore.ActionDropPartition,
			Target: "20261001", RowsBefore: 5, Started: at, Finished: at.Add(time.Second), Outcome: chstore.OutcomeOK},
		{ID: "b", Job: "j1", Policy: "retention", DataSet: "*", Action: chstore.ActionRun, RowsBefore: 5,
			Started: at.Add(2 * time.Second), Finished: at.Add(3 * time.Second), Outcome: chstore.OutcomeOK},
	}
	require.NoError(t, s.InsertDeletionLog(ctx, rows))
	got, err := s.DeletionLogOfJob(ctx, "j1")
	require.NoError(t, err)
	require.Equal(t, rows, got)
	last, ok, err := s.LastRun(ctx, chstore.OutcomeOK)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, rows[1], last)
	_, ok, err = s.LastRun(ctx, chstore.OutcomeFailed)
	require.NoError(t, err)
	require.False(t, ok)
	newest, err := s.DeletionLog(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, rows[1:], newest)
	require.ErrorIs(t, s.InsertDeletionLog(ctx, []chstore.DeletionLogRow{{ID: "x"}}), chstore.ErrInvalidArgument)
}
