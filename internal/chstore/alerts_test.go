package chstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/schemas"
)

// testAlert returns a full alert row; i varies the id and time (a minute
// apart, from baseTime).
func testAlert(i int) chstore.AlertRow {
	at := baseTime.Add(time.Duration(i)*time.Minute + 123*time.Millisecond)
	return chstore.AlertRow{
		ID:             fmt.Sprintf("%032x", i+1),
		Detector:       "brute_force",
		Technique:      "T1110.001",
		RuleVersion:    1,
		Severity:       "medium",
		SeverityRank:   2,
		Time:           at,
		DetectedAt:     at.Add(150 * time.Millisecond),
		App:            "shop",
		Subject:        fmt.Sprintf("sub_%04d", i),
		Session:        "ses_1",
		SourceIPPrefix: "203.0.113.0/24",
		SourceASN:      64500,
		Title:          "Many failed logins",
		Summary:        "10 failed logins in 10 minutes",
		Details:        `{"failures":10,"threshold":10}`,
		Evidence:       []string{"ev-1", "ev-2"},
	}
}

func TestInsertAlertsStoredOnce(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	rows := []chstore.AlertRow{testAlert(0), testAlert(1), testAlert(2)}
	require.NoError(t, s.InsertAlerts(ctx, rows))
	// A redelivered alert is written again and collapses.
	require.NoError(t, s.InsertAlerts(ctx, rows[1:]))
	require.NoError(t, s.InsertAlerts(ctx, nil))

	got, err := s.AlertsSince(ctx, baseTime.Add(-time.Hour), 100)
	require.NoError(t, err)
	require.Len(t, got, 3, "each alert once")
	for i, r := range got {
		want := rows[2-i] // newest first
		require.False(t, r.StoredAt.IsZero())
		r.StoredAt = time.Time{}
		require.Equal(t, want, r)
	}

	got, err = s.AlertsSince(ctx, rows[1].Time, 100)
	require.NoError(t, err)
	require.Len(t, got, 2, "since is inclusive, to the millisecond")
	got, err = s.AlertsSince(ctx, baseTime.Add(-time.Hour), 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, rows[2].ID, got[0].ID)

	ids, err := s.AlertIDsSince(ctx, rows[1].Time)
	require.NoError(t, err)
	require.Equal(t, map[string]struct{}{rows[1].ID: {}, rows[2].ID: {}}, ids)

	_, err = s.AlertsSince(ctx, baseTime, 0)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

func TestInsertAlertsDefaults(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	r := testAlert(0)
	r.Details, r.Evidence = "", nil
	require.NoError(t, s.InsertAlerts(t.Context(), []chstore.AlertRow{r}))
	got, err := s.AlertsSince(t.Context(), baseTime, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "{}", got[0].Details)
	require.Equal(t, []string{}, got[0].Evidence)
}

func TestAlertStatus(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	a, b, c := testAlert(0).ID, testAlert(1).ID, testAlert(2).ID
	at := baseTime.Add(time.Hour)
	changes := []chstore.AlertStatusRow{
		{ID: "st-1", AlertID: a, Status: string(schemas.StatusAcknowledged), Actor: "alice", Comment: "looking", Time: at},
		{ID: "st-2", AlertID: a, Status: string(schemas.StatusFalsePositive), Actor: "bob", Comment: "vpn egress", Time: at.Add(time.Minute)},
		{ID: "st-3", AlertID: a, Status: string(schemas.StatusOpen), Actor: "carol", Comment: "not the vpn", Time: at.Add(2 * time.Minute)},
		{ID: "st-4", AlertID: a, Status: string(schemas.StatusResolved), Actor: "carol", Comment: "password reset", Time: at.Add(3 * time.Minute)},
		// Two changes in the same millisecond: the greater id is the later.
		{ID: "st-5", AlertID: b, Status: string(schemas.StatusAcknowledged), Actor: "dave", Time: at},
		{ID: "st-6", AlertID: b, Status: string(schemas.StatusResolved), Actor: "dave", Time: at},
	}
	// Appended out of order, one of them twice.
	require.NoError(t, s.AppendAlertStatus(ctx, changes[3], changes[1]))
	require.NoError(t, s.AppendAlertStatus(ctx, changes[0]))
	require.NoError(t, s.AppendAlertStatus(ctx, changes[2], changes[4], changes[5]))
	require.NoError(t, s.AppendAlertStatus(ctx, changes[1]))

	hist, err := s.AlertStatusHistory(ctx, a)
	require.NoError(t, err)
	require.Equal(t, changes[:4], hist, "oldest first, each change once")

	hist, err = s.AlertStatusHistory(ctx, c)
	require.NoError(t, err)
	require.Empty(t, hist)

	cur, err := s.CurrentAlertStatus(ctx, a, b, c)
	require.NoError(t, err)
	require.Equal(t, map[string]chstore.AlertStatusRow{a: changes[3], b: changes[5]}, cur, "c has no change: open")

	cur, err = s.CurrentAlertStatus(ctx)
	require.NoError(t, err)
	require.Empty(t, cur)

	tests := []struct {
		name string
		row  chstore.AlertStatusRow
	}{
		{name: "unknown status", row: chstore.AlertStatusRow{ID: "x", AlertID: a, Status: "closed", Time: at}},
		{name: "no id", row: chstore.AlertStatusRow{AlertID: a, Status: string(schemas.StatusResolved), Time: at}},
		{name: "no time", row: chstore.AlertStatusRow{ID: "x", AlertID: a, Status: string(schemas.StatusResolved)}},
	}
	for _, tt := range tests {
		err := s.AppendAlertStatus(ctx, tt.row)
		require.ErrorIs(t, err, chstore.ErrInvalidArgument, tt.name)
	}
}
