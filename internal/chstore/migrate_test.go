package chstore_test

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/schemas"
)

// recordedVersions counts the raw schema_migrations rows per version.
func recordedVersions(t *testing.T, s *chstore.Store) map[uint32]int {
	t.Helper()
	recs, err := s.MigrationRecords(t.Context())
	require.NoError(t, err)
	out := make(map[uint32]int)
	for _, r := range recs {
		out[r.Version]++
	}
	return out
}

// emptyDSN returns the DSN of the test's database, dropped so that it is
// created by the next Migrate.
func emptyDSN(t *testing.T) string {
	t.Helper()
	dsn := chtest.DSN(t)
	require.NoError(t, chtest.New(t).DropDatabase(t.Context()))
	return dsn
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	s := chtest.New(t) // migrated once already

	applied, err := s.Migrate(t.Context())
	require.NoError(t, err)
	require.Empty(t, applied, "second Migrate applies nothing")

	recs, err := s.MigrationRecords(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	require.Equal(t, uint32(1), recs[0].Version)
	require.Equal(t, "001_create_events", recs[0].Name)
	require.False(t, recs[0].AppliedAt.IsZero())
	// Without a configured retention the TTL migration is skipped everywhere.
	require.Equal(t, unconditionalVersions(t), recordedVersions(t, s), "each migration recorded once")

	n, err := s.CountEvents(t.Context())
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn := emptyDSN(t)

	const procs = 4
	stores := make([]*chstore.Store, procs)
	for i := range stores {
		stores[i] = chtest.Open(t, dsn)
	}
	var g errgroup.Group
	for _, s := range stores {
		g.Go(func() error {
			_, err := s.Migrate(t.Context())
			return err
		})
	}
	require.NoError(t, g.Wait())

	for _, s := range stores {
		applied, err := s.Migrate(t.Context())
		require.NoError(t, err)
		require.Empty(t, applied)
	}
	// Racing processes may each record a migration; the rows share the
	// version and collapse (Migrate reads them with FINAL).
	versions := recordedVersions(t, stores[0])
	require.Len(t, versions, len(unconditionalVersions(t)))
	for v := range unconditionalVersions(t) {
		require.Contains(t, versions, v)
	}
	require.NoError(t, stores[0].InsertEvents(t.Context(), testRows(3, baseTime)))
	n, err := stores[0].CountEvents(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(3), n)
}

func TestMigrateRetention(t *testing.T) {
	t.Parallel()
	dsn := chtest.DSN(t)
	server, err := chtest.New(t).ServerVersion(t.Context())
	require.NoError(t, err)

	steps := []struct {
		name             string
		days, alertsDays int
		hold, lift       bool
		// want: applied on servers with TTL support (and REMOVE TTL, for
		// holds); older ones skip it.
		want []string
	}{
		{name: "first retention applies the ttl", days: 30, want: []string{"002_events_ttl"}},
		{name: "same retention again is a no-op", days: 30},
		{name: "changed retention applies again", days: 60, want: []string{"002_events_ttl"}},
		{name: "alerts period applies the alerts ttl", days: 60, alertsDays: 365, want: []string{"008_alerts_ttl"}},
		{name: "a legal hold removes both", days: 60, alertsDays: 365, hold: true, want: []string{"002_events_ttl", "008_alerts_ttl"}},
		{name: "held: nothing changes, even without retention", hold: true},
		{name: "lifted: both come back", days: 60, alertsDays: 365, lift: true, want: []string{"002_events_ttl", "008_alerts_ttl"}},
	}
	at := time.Now()
	for _, step := range steps {
		s := chtest.Open(t, dsn, chstore.WithRetentionDays(step.days), chstore.WithAlertRetentionDays(step.alertsDays))
		if step.hold {
			require.NoError(t, s.SetLegalHold(t.Context(), "sub_0001", "case", "dpo", at))
		}
		if step.lift {
			require.NoError(t, s.LiftLegalHold(t.Context(), "sub_0001", "dpo", at.Add(time.Second)))
		}
		applied, err := s.Migrate(t.Context())
		require.NoError(t, err, step.name)
		want := step.want
		if !server.SupportsTTL() || (step.hold && !server.AtLeast(20, 10)) {
			want = nil
		}
		if want == nil {
			require.Empty(t, applied, step.name)
		} else {
			require.Equal(t, want, applied, step.name)
		}
	}
	if !server.SupportsTTL() {
		versions := recordedVersions(t, chtest.New(t))
		require.NotContains(t, versions, uint32(2), "skipped migrations are not recorded")
		require.NotContains(t, versions, uint32(8), "skipped migrations are not recorded")
	}
}

func TestMigrateDirectives(t *testing.T) {
	t.Parallel()
	dsn := emptyDSN(t)
	fsys := fstest.MapFS{
		"001_two_tables.sql": {Data: []byte(
			"-- two statements in one file\n" +
				"CREATE TABLE IF NOT EXISTS {{.Database}}.t1 (x UInt8) ENGINE = MergeTree() ORDER BY x;\n" +
				"CREATE TABLE IF NOT EXISTS {{.Database}}.t2 (x UInt8) ENGINE = MergeTree() ORDER BY x;\n")},
		"002_future.sql": {Data: []byte(
			"-- sessionmon: min_server=999.1\n" +
				"CREATE TABLE IF NOT EXISTS {{.Database}}.t3 (x UInt8) ENGINE = MergeTree() ORDER BY x;\n")},
		"003_after.sql": {Data: []byte(
			"CREATE TABLE IF NOT EXISTS {{.Database}}.t4 (x UInt8) ENGINE = MergeTree() ORDER BY x;\n")},
	}
	s := chtest.Open(t, dsn, chstore.WithMigrations(fsys))
	applied, err := s.Migrate(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{"001_two_tables", "003_after"}, applied)

	applied, err = s.Migrate(t.Context())
	require.NoError(t, err)
	require.Empty(t, applied)
	require.Equal(t, map[uint32]int{1: 1, 3: 1}, recordedVersions(t, s))
}

func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dsn     string
		wantErr error
	}{
		{name: "unparsable dsn", dsn: "clickhouse://[::1", wantErr: chstore.ErrInvalidDSN},
		{name: "database name with a quote", dsn: "clickhouse://127.0.0.1:9000/bad%60name", wantErr: chstore.ErrInvalidDSN},
		{name: "database name with a dash", dsn: "clickhouse://127.0.0.1:9000/bad-name", wantErr: chstore.ErrInvalidDSN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := chstore.Open(t.Context(), tt.dsn, nil)
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestOpenDefaultDatabase(t *testing.T) {
	t.Parallel()
	chtest.New(t) // skips without a server
	s := chtest.Open(t, chtest.ServerDSN())
	require.Equal(t, chstore.DefaultDatabase, s.Database())
	require.NoError(t, s.Ping(t.Context()))
}

// unconditionalVersions returns the embedded migrations that apply without
// a configured retention, each counted once.
func unconditionalVersions(t *testing.T) map[uint32]int {
	t.Helper()
	entries, err := fs.ReadDir(schemas.ClickHouseMigrations, "clickhouse")
	require.NoError(t, err)
	out := map[uint32]int{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		body, err := fs.ReadFile(schemas.ClickHouseMigrations, "clickhouse/"+name)
		require.NoError(t, err)
		if strings.Contains(string(body), "needs=") {
			continue
		}
		v, err := strconv.ParseUint(name[:3], 10, 32)
		require.NoError(t, err, name)
		out[uint32(v)] = 1
	}
	require.Contains(t, out, uint32(1))
	return out
}
