package chstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/schemas"
)

func TestLegalHolds(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 25, 9, 0, 0, 123e6, time.UTC)

	_, ok, err := s.LegalHold(ctx, "sub_0001")
	require.NoError(t, err)
	require.False(t, ok, "never held")

	require.NoError(t, s.SetLegalHold(ctx, "sub_0001", "case 42", "dpo", at))
	require.NoError(t, s.SetLegalHold(ctx, "sub_0002", "case 43", "dpo", at))
	require.NoError(t, s.LiftLegalHold(ctx, "sub_0002", "legal", at.Add(time.Second)))

	h, ok, err := s.LegalHold(ctx, "sub_0001")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, chstore.LegalHold{Subject: "sub_0001", Active: true, Reason: "case 42", Actor: "dpo", Time: at}, h)
	h, ok, err = s.LegalHold(ctx, "sub_0002")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, h.Active, "lifted: the latest change wins")
	require.Equal(t, "legal", h.Actor)

	active, err := s.ActiveLegalHolds(ctx)
	require.NoError(t, err)
	require.Len(t, active, 1)
	require.Equal(t, "sub_0001", active[0].Subject)

	require.ErrorIs(t, s.SetLegalHold(ctx, "x' OR 1", "r", "a", at), chstore.ErrInvalidArgument)
	require.ErrorIs(t, s.SetLegalHold(ctx, "sub_0003", "r", "a", time.Time{}), chstore.ErrInvalidArgument)
}

func TestErasureRequestStatus(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	req := func(id string, seq uint32, status string, updated time.Time) chstore.ErasureRequest {
		return chstore.ErasureRequest{ID: id, Seq: seq, Subject: "sub_0001", RequestedBy: "dpo", Status: status,
			Requested: at, Updated: updated}
	}
	done := req("r1", 3, chstore.ErasureDone, at.Add(2*time.Second))
	done.Rows = chstore.SubjectRows{chstore.TableEvents: 4, chstore.TableAlerts: 1}
	for _, r := range []chstore.ErasureRequest{
		req("r1", 1, chstore.ErasurePending, at), req("r1", 2, chstore.ErasureRunning, at.Add(time.Second)), done,
		req("r2", 1, chstore.ErasurePending, at.Add(time.Minute)), req("r2", 2, chstore.ErasureRunning, at.Add(time.Minute)),
		req("r3", 1, chstore.ErasurePending, at.Add(2*time.Minute)),
	} {
		require.NoError(t, s.AppendErasureStatus(ctx, r))
	}

	got, ok, err := s.ErasureRequest(ctx, "r1")
	require.NoError(t, err)
	require.True(t, ok)
	done.SubjectHash = schemas.SubjectHash("sub_0001")
	require.Equal(t, done, got)
	_, ok, err = s.ErasureRequest(ctx, "nope")
	require.NoError(t, err)
	require.False(t, ok)

	unfinished, err := s.UnfinishedErasureRequests(ctx)
	require.NoError(t, err)
	require.Len(t, unfinished, 2)
	require.Equal(t, []string{"r2", "r3"}, []string{unfinished[0].ID, unfinished[1].ID}, "oldest first")
	require.Equal(t, chstore.ErasureRunning, unfinished[0].Status, "same updated time: the higher seq wins")

	all, err := s.ErasureRequests(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"r3", "r2"}, []string{all[0].ID, all[1].ID}, "newest first")

	bad := req("r4", 1, "maybe", at)
	require.ErrorIs(t, s.AppendErasureStatus(ctx, bad), chstore.ErrInvalidArgument)
	noSubject := req("r4", 1, chstore.ErasureRunning, at)
	noSubject.Subject = ""
	require.ErrorIs(t, s.AppendErasureStatus(ctx, noSubject), chstore.ErrInvalidArgument, "only a done request may drop the pseudonym")
	noSubject.Status, noSubject.SubjectHash = chstore.ErasureDone, "sub_0001"
	require.ErrorIs(t, s.AppendErasureStatus(ctx, noSubject), chstore.ErrInvalidArgument, "a hash, not a pseudonym")
	_, err = s.ErasureRequests(ctx, 0)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

func TestRowFilterLeavesHeldRowsOut(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	day := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	// testEvent(i) has subject sub_000i.
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{
		eventAt(1, day, schemas.LoginFailed), eventAt(2, day, schemas.LoginFailed), eventAt(3, day, schemas.LoginFailed),
	}))
	f := chstore.RowFilter{Table: chstore.TableEvents, Before: day.Add(time.Hour), ExceptSubjects: []string{"sub_0001", "sub_0003"}}
	require.Equal(t, "time < '2026-10-01 13:00:00' AND subject NOT IN (2 held subjects)", f.String())
	n, err := s.CountMatching(ctx, f)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
	n, err = s.CountMatching(ctx, f.Held())
	require.NoError(t, err)
	require.Equal(t, uint64(3), n)
	require.NoError(t, s.DeleteRows(ctx, f))
	require.NoError(t, s.WaitMutations(ctx, chstore.TableEvents, 50*time.Millisecond, time.Minute))
	for sub, want := range map[string]int{"sub_0001": 1, "sub_0002": 0, "sub_0003": 1} {
		rows, err := s.EventsBySubject(ctx, sub, 10)
		require.NoError(t, err)
		require.Len(t, rows, want, sub)
	}
	require.ErrorIs(t, s.DeleteRows(ctx, chstore.RowFilter{Table: chstore.TableAlertStatus, Before: day, ExceptSubjects: []string{"sub_0001"}}),
		chstore.ErrInvalidArgument)
	require.ErrorIs(t, s.DeleteRows(ctx, chstore.RowFilter{Table: chstore.TableEvents, Before: day, ExceptAlertIDs: []string{"a"}}),
		chstore.ErrInvalidArgument)
}

func TestWaitMutationsTimeout(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	require.NoError(t, s.InsertEvents(ctx, testRows(2, baseTime)))
	// A mutation that fails on every row never finishes: ClickHouse retries it.
	require.NoError(t, s.Exec(ctx, "ALTER TABLE "+s.Database()+".events DELETE WHERE throwIf(length(id) > 0) = 1"))
	err := s.WaitMutations(ctx, chstore.TableEvents, 20*time.Millisecond, 300*time.Millisecond)
	var te *chstore.MutationTimeoutError
	require.True(t, errors.As(err, &te), "%v", err)
	require.Equal(t, chstore.TableEvents, te.Table)
	require.Len(t, te.Mutations, 1)
	require.Contains(t, err.Error(), "mutations of table events not done after 300ms: "+te.Mutations[0])
	require.NoError(t, s.WaitMutations(ctx, chstore.TableAlerts, 20*time.Millisecond, 300*time.Millisecond), "other tables are not waited for")
	require.ErrorIs(t, s.WaitMutations(ctx, chstore.TableEvents, 20*time.Millisecond, 0), chstore.ErrInvalidArgument)
}

// TestClearErasureSubject: once a subject is erased, none of the status
// changes of its finished requests (the done one and an earlier failed
// one) keeps the pseudonym, only its hash, and the done request reads back
// with the hash and the messages deleted per stream; a request of the
// subject still pending, and other subjects' requests, keep theirs.
func TestClearErasureSubject(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	status := func(id string, seq uint32, subject, st string) chstore.ErasureRequest {
		return chstore.ErasureRequest{ID: id, Seq: seq, Subject: subject, RequestedBy: "dpo", Status: st, Requested: at,
			Updated: at.Add(time.Duration(seq) * time.Second)}
	}
	done := status("r1", 3, "", chstore.ErasureDone)
	done.SubjectHash = schemas.SubjectHash("sub_0001")
	done.Rows = chstore.SubjectRows{chstore.TableEvents: 2}
	done.Streams = chstore.StreamMessages{"SESSIONMON_EVENTS": 2, "SESSIONMON_DLQ": 1}
	for _, r := range []chstore.ErasureRequest{
		status("r0", 1, "sub_0001", chstore.ErasurePending), status("r0", 2, "sub_0001", chstore.ErasureFailed),
		status("r1", 1, "sub_0001", chstore.ErasurePending), status("r1", 2, "sub_0001", chstore.ErasureRunning), done,
		status("r2", 1, "sub_0001", chstore.ErasurePending),
		status("r3", 1, "sub_0002", chstore.ErasurePending), status("r3", 2, "sub_0002", chstore.ErasureFailed),
	} {
		require.NoError(t, s.AppendErasureStatus(ctx, r))
	}
	named, err := s.ErasedSubjectsStillNamed(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"sub_0001"}, named, "sub_0002 was never erased")

	n, err := s.ClearErasureSubject(ctx, "sub_0001", 20*time.Millisecond, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, n, "the done request and the failed one")
	require.Zero(t, countRows(t, s, "erasure_requests", "subject = 'sub_0001' AND id IN ('r0', 'r1')"))
	require.Equal(t, uint64(5), countRows(t, s, "erasure_requests", "subject_hash = '"+schemas.SubjectHash("sub_0001")+"' AND id IN ('r0', 'r1')"))
	require.Equal(t, uint64(1), countRows(t, s, "erasure_requests", "subject = 'sub_0001'"), "the pending request keeps it")
	require.Equal(t, uint64(2), countRows(t, s, "erasure_requests", "subject = 'sub_0002'"))
	named, err = s.ErasedSubjectsStillNamed(ctx)
	require.NoError(t, err)
	require.Empty(t, named)

	r, _, err := s.ErasureRequest(ctx, "r1")
	require.NoError(t, err)
	require.Equal(t, done, r)
	n, err = s.ClearErasureSubject(ctx, "sub_0001", 20*time.Millisecond, time.Minute)
	require.NoError(t, err)
	require.Zero(t, n, "again: nothing left to clear")
	_, err = s.ClearErasureSubject(ctx, "bad subject", time.Millisecond, time.Second)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

// countRows counts the rows of table matching where as stored, on a
// connection of its own.
func countRows(t *testing.T, s *chstore.Store, table, where string) uint64 {
	t.Helper()
	opts, err := clickhouse.ParseDSN(chtest.DSN(t))
	require.NoError(t, err)
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	defer conn.Close()
	var n uint64
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count() FROM "+s.Database()+"."+table+" WHERE "+where).Scan(&n))
	return n
}
