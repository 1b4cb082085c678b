package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

var allRows = chstore.SubjectRows{chstore.TableEvents: 2, chstore.TableAlerts: 1, chstore.TableAlertStatus: 1, chstore.TableWebhookDeliveries: 1}

func TestLegalHoldBlocksErasure(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seedSubjects(t, s)
	e := retention.NewEraser(s, nil, nil)

	h, err := retention.SetLegalHold(ctx, s, "sub_0001", "case 42", "dpo")
	require.NoError(t, err)
	_, err = e.Request(ctx, "sub_0001", "alice")
	require.ErrorIs(t, err, retention.ErrLegalHold)
	require.EqualError(t, err, "erasure request: subject is under legal hold since "+h.Time.Format(time.RFC3339)+
		" (reason: case 42); lift it with `sessionmon hold lift --subject PSEUDONYM`")
	_, err = retention.Erase(ctx, s, "sub_0001")
	require.ErrorIs(t, err, retention.ErrLegalHold, "the plain erasure refuses too")
	left, err := s.CountSubjectRows(ctx, "sub_0001")
	require.NoError(t, err)
	require.Equal(t, allRows, left, "nothing was deleted")
	reqs, err := e.Requests(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, reqs, "a refused request is not filed")

	// A hold set after the request was filed fails it when it runs.
	require.NoError(t, retention.LiftLegalHold(ctx, s, "sub_0001", "dpo"))
	r, err := e.Request(ctx, "sub_0001", "alice")
	require.NoError(t, err)
	_, err = retention.SetLegalHold(ctx, s, "sub_0001", "case 43", "dpo")
	require.NoError(t, err)
	r, err = e.Process(ctx, r.ID)
	require.ErrorIs(t, err, retention.ErrLegalHold)
	require.Equal(t, chstore.ErasureFailed, r.Status)
	require.Contains(t, r.Error, "reason: case 43")

	// Lifted: the failed request can be run again.
	require.NoError(t, retention.LiftLegalHold(ctx, s, "sub_0001", "dpo"))
	r, err = e.Process(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, chstore.ErasureDone, r.Status)
	require.Equal(t, allRows, r.Rows)
	left, err = s.CountSubjectRows(ctx, "sub_0001")
	require.NoError(t, err)
	require.Zero(t, left.Total())
	h2, ok, err := s.LegalHold(ctx, "sub_0001")
	require.NoError(t, err)
	require.True(t, ok, "the erasure keeps the hold history")
	require.False(t, h2.Active)
}

func TestRequestValidates(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	e := retention.NewEraser(s, nil, nil)
	_, err := e.Request(t.Context(), "bad subject!", "alice")
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	require.ErrorContains(t, err, "subject: must be a pseudonym")
	_, err = e.Request(t.Context(), "sub_0001", " ")
	require.ErrorIs(t, err, retention.ErrInvalidRequest)
	require.ErrorContains(t, err, "requested_by: required")
	_, err = e.Process(t.Context(), "erasure-nope")
	require.ErrorIs(t, err, retention.ErrNotFound)
	_, err = retention.SetLegalHold(t.Context(), s, "sub_0001", "", "dpo")
	require.ErrorContains(t, err, "reason: required")
}

func TestRunPendingResumesAfterCrash(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seedSubjects(t, s)
	// A process filed a request for sub_0001, marked it running and died
	// before it was done; another request was filed and never started.
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	crashed := chstore.ErasureRequest{ID: "erasure-crashed", Seq: 1, Subject: "sub_0001", RequestedBy: "alice",
		Status: chstore.ErasurePending, Requested: at, Updated: at}
	require.NoError(t, s.AppendErasureStatus(ctx, crashed))
	crashed.Seq, crashed.Status, crashed.Updated = 2, chstore.ErasureRunning, at.Add(time.Second)
	require.NoError(t, s.AppendErasureStatus(ctx, crashed))
	done := chstore.ErasureRequest{ID: "erasure-done", Seq: 2, Subject: "sub_0002", RequestedBy: "bob",
		Status: chstore.ErasureDone, Requested: at, Updated: at}
	require.NoError(t, s.AppendErasureStatus(ctx, done))

	var (
		forgotten []string
		alertIDs  [][]string
	)
	e := retention.NewEraser(s, func(_ context.Context, subject string, ids []string) (chstore.StreamMessages, error) {
		forgotten = append(forgotten, subject)
		alertIDs = append(alertIDs, ids)
		return chstore.StreamMessages{"SESSIONMON_EVENTS": 3, "SESSIONMON_ALERTS": 1}, nil
	}, nil)
	n, err := e.RunPending(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the unfinished request runs")
	require.Equal(t, []string{"sub_0001"}, forgotten)
	require.Equal(t, [][]string{{"alert-sub_0001"}}, alertIDs, "the subject's alert ids, read before the alerts were erased")

	r, ok, err := s.ErasureRequest(ctx, "erasure-crashed")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, chstore.ErasureDone, r.Status)
	require.Equal(t, uint32(4), r.Seq, "pending, running, running again, done")
	require.Equal(t, allRows, r.Rows)
	require.Equal(t, chstore.StreamMessages{"SESSIONMON_EVENTS": 3, "SESSIONMON_ALERTS": 1}, r.Streams, "the proof counts the messages deleted per stream")
	require.Empty(t, r.Error)
	require.Empty(t, r.Subject, "a done request keeps no pseudonym")
	require.Equal(t, schemas.SubjectHash("sub_0001"), r.SubjectHash)
	// Not in any status change, nor in the request done before
	// pseudonyms were cleared.
	require.Zero(t, queryCount(t, "SELECT count() FROM "+s.Database()+".erasure_requests WHERE subject != ''"))
	require.Equal(t, uint64(4), queryCount(t, "SELECT count() FROM "+s.Database()+".erasure_requests WHERE subject_hash = '"+
		schemas.SubjectHash("sub_0001")+"'"), "every status change keeps the hash")
	old, _, err := s.ErasureRequest(ctx, "erasure-done")
	require.NoError(t, err)
	require.Empty(t, old.Subject)
	require.Equal(t, schemas.SubjectHash("sub_0002"), old.SubjectHash)

	left, err := s.CountSubjectRows(ctx, "sub_0001")
	require.NoError(t, err)
	require.Zero(t, left.Total())
	other, err := s.CountSubjectRows(ctx, "sub_0002")
	require.NoError(t, err)
	require.Equal(t, allRows, other, "nobody else's rows are touched, not even those of a done request")

	// Nothing left: a second pass does nothing.
	n, err = e.RunPending(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestProcessRecordsForgetFailure(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seedSubjects(t, s)
	e := retention.NewEraser(s, func(context.Context, string, []string) (chstore.StreamMessages, error) {
		return chstore.StreamMessages{"SESSIONMON_EVENTS": 1}, errors.New("detector busy")
	}, nil)
	r, err := e.Request(ctx, "sub_0002", "alice")
	require.NoError(t, err)
	r, err = e.Process(ctx, r.ID)
	require.ErrorContains(t, err, "NATS streams and detector state not purged: detector busy")
	require.Equal(t, chstore.ErasureFailed, r.Status)
	require.Equal(t, allRows, r.Rows, "the stored rows were erased all the same")
	reqs, err := e.Requests(ctx, 10)
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	require.Equal(t, r, reqs[0])
	require.Equal(t, "sub_0002", r.Subject, "a failed request keeps the pseudonym, to be tried again")

	// A later request erases the subject: the failed one no longer needs
	// the pseudonym, and cannot be run again.
	ok := retention.NewEraser(s, func(context.Context, string, []string) (chstore.StreamMessages, error) { return nil, nil }, nil)
	later, err := ok.Request(ctx, "sub_0002", "alice")
	require.NoError(t, err)
	later, err = ok.Process(ctx, later.ID)
	require.NoError(t, err)
	require.Equal(t, chstore.ErasureDone, later.Status)
	failed, _, err := s.ErasureRequest(ctx, r.ID)
	require.NoError(t, err)
	require.Empty(t, failed.Subject)
	require.Equal(t, schemas.SubjectHash("sub_0002"), failed.SubjectHash)
	require.Zero(t, queryCount(t, "SELECT count() FROM "+s.Database()+".erasure_requests WHERE subject != ''"))
	_, err = ok.Process(ctx, r.ID)
	require.ErrorIs(t, err, retention.ErrInvalidRequest)
	require.ErrorContains(t, err, "a later request erased its subject")
}

// exec runs q on the test's database with a connection of its own: tests
// use it for states the store never produces.
func exec(t *testing.T, q string) {
	t.Helper()
	opts, err := clickhouse.ParseDSN(chtest.DSN(t))
	require.NoError(t, err)
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Exec(t.Context(), q))
}

// queryCount runs the count query q on the test's database with a
// connection of its own, to look at the rows as stored.
func queryCount(t *testing.T, q string) uint64 {
	t.Helper()
	opts, err := clickhouse.ParseDSN(chtest.DSN(t))
	require.NoError(t, err)
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	defer conn.Close()
	var n uint64
	require.NoError(t, conn.QueryRow(t.Context(), q).Scan(&n))
	return n
}

// stickMutation starts a mutation on table that fails on every row and so
// never finishes (ClickHouse retries it), blocking later mutations of the
// table.
func stickMutation(t *testing.T, s *chstore.Store, table string) {
	t.Helper()
	exec(t, "ALTER TABLE "+s.Database()+"."+table+" DELETE WHERE throwIf(length(toString(time)) > 0) = 1")
}

func TestEraseMutationTimeout(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seedSubjects(t, s)
	stickMutation(t, s, chstore.TableEvents)
	e := retention.NewEraser(s, nil, nil, retention.WithMutationTimeout(300*time.Millisecond))
	r, err := e.Request(ctx, "sub_0001", "alice")
	require.NoError(t, err)
	r, err = e.Process(ctx, r.ID)
	var te *chstore.MutationTimeoutError
	require.True(t, errors.As(err, &te), "%v", err)
	require.Equal(t, chstore.TableEvents, te.Table)
	require.Equal(t, chstore.ErasureFailed, r.Status)
	require.Contains(t, r.Error, "mutations of table events not done after 300ms")
	require.NotContains(t, r.Error, "sub_0001", "errors name mutations by id, not by their predicate")

	log, err := s.DeletionLog(ctx, 100)
	require.NoError(t, err)
	var failed bool
	for _, row := range log {
		if row.DataSet == chstore.TableEvents {
			failed = row.Outcome == chstore.OutcomeFailed
		}
	}
	require.True(t, failed, "the deletion log says the events step failed")
}
