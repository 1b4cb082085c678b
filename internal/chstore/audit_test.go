package chstore_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

func TestAuditLogInsertAndPages(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	long := strings.Repeat("é", 600) // 1200 bytes
	var rows []chstore.AuditRow
	for i, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		rows = append(rows, chstore.AuditRow{ID: id, Time: at.Add(time.Duration(i/2) * time.Millisecond), Actor: "alice", Role: "admin",
			Action: "alert.status", Target: "alert-1", Outcome: chstore.AuditSuccess, Detail: long, RequestID: "r", SourceIPPrefix: "192.0.2.0/24"})
	}
	require.NoError(t, s.InsertAudit(ctx, rows...))

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		p, err := s.AuditLog(ctx, 2, cursor)
		require.NoError(t, err)
		for _, r := range p.Rows {
			got = append(got, r.ID)
			require.LessOrEqual(t, len(r.Detail), 1000)
			require.True(t, utf8.ValidString(r.Detail), "cut on a character boundary")
			require.Equal(t, "192.0.2.0/24", r.SourceIPPrefix)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	// Newest first; rows of the same millisecond by id, each once.
	require.Equal(t, []string{"a5", "a4", "a3", "a2", "a1"}, got)

	_, err := s.AuditLog(ctx, 0, "")
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	_, err = s.AuditLog(ctx, 10, "not-a-cursor")
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	err = s.InsertAudit(ctx, chstore.AuditRow{ID: "x", Time: at})
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	require.ErrorContains(t, err, "action must not be empty")
}
