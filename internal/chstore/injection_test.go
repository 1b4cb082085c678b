package chstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

// injections are SQL fragments a hostile filter value might carry. Every
// query binds its arguments, so each must be treated as a plain value: it
// matches nothing, changes nothing and breaks nothing.
var injections = []string{
	`' OR 1=1 --`,
	`x' OR '1'='1`,
	`'; DROP TABLE events; --`,
	`") OR 1=1 --`,
	`sub_0001' UNION SELECT name FROM system.tables --`,
	`\' OR 1=1 #`,
	"sub_0001\x00' OR 1=1",
	`sub_0001%' OR subject LIKE '%`,
	`1) OR (1=1`,
}

// TestQueriesBindEveryArgument feeds injection strings to every query that
// takes a string from outside (a filter, an id, a pseudonym) and checks that
// each is a value: nothing is found for it, no error other than a refused
// argument comes back, and the stored rows are all still there.
func TestQueriesBindEveryArgument(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	var rows []chstore.EventRow
	for i := range 50 {
		rows = append(rows, chstore.NewEventRow(testEvent(i), baseTime))
	}
	require.NoError(t, s.InsertEvents(ctx, rows))
	require.NoError(t, s.InsertAlerts(ctx, []chstore.AlertRow{testAlert(0), testAlert(1)}))
	before, err := s.CountRows(ctx)
	require.NoError(t, err)
	since := baseTime.Add(-24 * time.Hour)

	for _, in := range injections {
		t.Run(in, func(t *testing.T) {
			// A refused argument (ErrInvalidArgument) is as good as a value
			// that matches nothing; any other error means the text reached
			// the SQL.
			check := func(name string, n int, err error) {
				t.Helper()
				if err != nil {
					require.ErrorIsf(t, err, chstore.ErrInvalidArgument, "%s", name)
					return
				}
				require.Zerof(t, n, "%s found rows for %q", name, in)
			}
			ev, err := s.EventsBySubject(ctx, in, 10)
			check("EventsBySubject", len(ev), err)
			hist, err := s.AlertStatusHistory(ctx, in)
			check("AlertStatusHistory", len(hist), err)
			cur, err := s.CurrentAlertStatus(ctx, in, testAlert(0).ID)
			check("CurrentAlertStatus", len(cur), err)
			del, err := s.WebhookDeliveriesOfAlert(ctx, in)
			check("WebhookDeliveriesOfAlert", len(del), err)
			del, err = s.WebhookDeliveriesSince(ctx, since, in, 10)
			check("WebhookDeliveriesSince", len(del), err)
			dl, err := s.DeletionLogOfJob(ctx, in)
			check("DeletionLogOfJob", len(dl), err)
			_, ok, err := s.LastRun(ctx, in)
			check("LastRun", map[bool]int{true: 1}[ok], err)
			counts, err := s.CountSubjectRows(ctx, in)
			check("CountSubjectRows", int(counts.Total()), err)
			data, err := s.SubjectData(ctx, in)
			check("SubjectData", len(data.Events)+len(data.Alerts), err)
			_, err = s.Partitions(ctx, in)
			require.ErrorIs(t, err, chstore.ErrInvalidArgument, "Partitions takes only known tables")
		})
	}

	after, err := s.CountRows(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "no row changed")
	n, err := s.CountEvents(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 50, n)
}
