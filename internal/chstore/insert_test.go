package chstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

func TestInsertEvents(t *testing.T) {
	t.Parallel()
	later := baseTime.Add(time.Minute)
	tests := []struct {
		name         string
		batches      [][]chstore.EventRow
		wantCount    uint64
		wantDistinct uint64
	}{
		{name: "empty batch writes nothing", batches: [][]chstore.EventRow{nil}, wantCount: 0},
		{name: "one batch", batches: [][]chstore.EventRow{testRows(500, baseTime)}, wantCount: 500, wantDistinct: 500},
		{
			name:      "same batch twice counts once",
			batches:   [][]chstore.EventRow{testRows(500, baseTime), testRows(500, baseTime)},
			wantCount: 500, wantDistinct: 500,
		},
		{
			name:      "redelivery with a later ingest time counts once",
			batches:   [][]chstore.EventRow{testRows(300, baseTime), testRows(500, later)},
			wantCount: 500, wantDistinct: 500,
		},
		{
			name:      "duplicates inside one batch count once",
			batches:   [][]chstore.EventRow{slices.Concat(testRows(100, baseTime), testRows(100, baseTime))},
			wantCount: 100, wantDistinct: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := chtest.New(t)
			for _, b := range tt.batches {
				require.NoError(t, s.InsertEvents(t.Context(), b))
			}
			n, err := s.CountEvents(t.Context())
			require.NoError(t, err)
			require.Equal(t, tt.wantCount, n)
			total, distinct, err := s.CountEventsByID(t.Context())
			require.NoError(t, err)
			require.Equal(t, tt.wantCount, total)
			require.Equal(t, tt.wantDistinct, distinct)
		})
	}
}

func TestInsertEventsRedeliveryKeepsLatestIngest(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	first := chstore.NewEventRow(testEvent(7), baseTime)
	second := first
	second.IngestedAt = baseTime.Add(time.Hour)
	second.UABrowser = "Firefox" // e.g. re-ingested with a newer parser
	require.NoError(t, s.InsertEvents(t.Context(), []chstore.EventRow{second}))
	require.NoError(t, s.InsertEvents(t.Context(), []chstore.EventRow{first}))

	got, err := s.EventsBySubject(t.Context(), first.Subject, 10)
	require.NoError(t, err)
	require.Equal(t, []chstore.EventRow{second}, got)
}

func TestInsertEventsCanceled(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.Error(t, s.InsertEvents(ctx, testRows(10, baseTime)))
}

func TestEventsBySubject(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	rows := testRows(1000, baseTime) // 100 subjects, 10 events each
	rows[0].UABrowser, rows[0].UAOS, rows[0].UADevice = "Chrome", "Linux", "desktop"
	rows[0].GeoSource, rows[0].HasGeo, rows[0].ClientLat, rows[0].ClientLon = chstore.GeoSourceGeoIP, true, 52.5, 13.4
	rows[100].TokenClaims, rows[100].AttrsKeys, rows[100].AttrsValues = nil, nil, nil
	require.NoError(t, s.InsertEvents(t.Context(), rows))
	require.NoError(t, s.InsertEvents(t.Context(), rows[:50]))

	var want []chstore.EventRow
	for _, r := range rows {
		if r.Subject == rows[0].Subject {
			want = append(want, r)
		}
	}
	slices.Reverse(want) // newest first
	require.Len(t, want, 10)

	tests := []struct {
		name    string
		subject string
		limit   int
		want    []chstore.EventRow
	}{
		{name: "all events newest first, round trip", subject: rows[0].Subject, limit: 100, want: want},
		{name: "limit", subject: rows[0].Subject, limit: 3, want: want[:3]},
		{name: "unknown subject", subject: "sub_nobody", limit: 10, want: []chstore.EventRow{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.EventsBySubject(t.Context(), tt.subject, tt.limit)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	_, err := s.EventsBySubject(t.Context(), rows[0].Subject, 0)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

// BenchmarkInsertEvents measures InsertEvents on full rows (50 columns,
// attrs and claims set), batch after batch, and reports rows/s. conc is
// WithInsertConcurrency: 1 sends each batch as one INSERT.
//
//	go test -run '^$' -bench InsertEvents -benchtime 5s ./internal/chstore/
func BenchmarkInsertEvents(b *testing.B) {
	for _, bc := range []struct {
		batch, conc int
	}{
		{batch: 20_000, conc: 1}, // ingest's default batch size
		{batch: 20_000, conc: 2},
		{batch: 50_000, conc: 1},
		{batch: 50_000, conc: 2},
		{batch: 100_000, conc: 2},
	} {
		b.Run(fmt.Sprintf("batch=%d/conc=%d", bc.batch, bc.conc), func(b *testing.B) {
			s := chtest.Open(b, chtest.DSN(b), chstore.WithInsertConcurrency(bc.conc))
			rows := testRows(bc.batch, baseTime)
			b.ReportAllocs()
			for b.Loop() {
				if err := s.InsertEvents(b.Context(), rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func TestInsertEventsInBlocks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		blockRows int
		conc      int
		rows      int
	}{
		{name: "rows fill blocks exactly", blockRows: 100, conc: 1, rows: 1000},
		{name: "last block partial", blockRows: 300, conc: 1, rows: 1000},
		{name: "one row per block", blockRows: 1, conc: 1, rows: 20},
		{name: "small batch is not split", blockRows: 8192, conc: 4, rows: 19_999},
		{name: "large batch split in two", blockRows: 4096, conc: 2, rows: 25_001},
		{name: "split capped by rows per insert", blockRows: 8192, conc: 8, rows: 30_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := chtest.Open(t, chtest.DSN(t), chstore.WithInsertBlockRows(tt.blockRows), chstore.WithInsertConcurrency(tt.conc))
			rows := testRows(tt.rows, baseTime)
			require.NoError(t, s.InsertEvents(t.Context(), rows))
			require.NoError(t, s.InsertEvents(t.Context(), rows))
			total, distinct, err := s.CountEventsByID(t.Context())
			require.NoError(t, err)
			require.Equal(t, uint64(tt.rows), total)
			require.Equal(t, uint64(tt.rows), distinct)

			got, err := s.EventsBySubject(t.Context(), rows[0].Subject, tt.rows)
			require.NoError(t, err)
			require.NotEmpty(t, got)
			require.Equal(t, rows[0], got[len(got)-1], "oldest event of the subject round-trips")
			require.Equal(t, rows[len(rows)-1].ID, lastOf(t, s, rows[len(rows)-1].Subject).ID)
		})
	}
}

// lastOf returns the newest event of subject.
func lastOf(t *testing.T, s *chstore.Store, subject string) chstore.EventRow {
	t.Helper()
	got, err := s.EventsBySubject(t.Context(), subject, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	return got[0]
}

func TestInsertSpanningManyDays(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	// A backfill: one batch over 150 days, more partitions than current
	// servers allow in one INSERT block by default.
	rows := testRows(150, baseTime)
	for i := range rows {
		at := baseTime.Add(-time.Duration(i) * 24 * time.Hour).Truncate(time.Second)
		rows[i].Time, rows[i].TimeMS = at, at.UnixMilli()
	}
	require.NoError(t, s.InsertEvents(t.Context(), rows))
	n, err := s.CountEvents(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(150), n)
}
