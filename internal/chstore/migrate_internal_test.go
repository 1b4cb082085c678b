package chstore

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestEmbeddedMigrations(t *testing.T) {
	t.Parallel()
	sub, err := fs.Sub(schemas.ClickHouseMigrations, "clickhouse")
	require.NoError(t, err)
	migs, err := loadMigrations(sub)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(migs), 2)
	for i, m := range migs {
		require.Equal(t, uint32(i+1), m.version, "migration versions must be 1, 2, 3, … without gaps")
		stmts, sum, err := m.render(templateData{Database: "sessionmon", RetentionDays: 30})
		require.NoError(t, err, m.name)
		require.NotEmpty(t, stmts, m.name)
		require.Len(t, sum, 64, m.name)
		for _, q := range stmts {
			require.NotContains(t, q, ";", "%s: one statement per ';'", m.name)
			require.NotContains(t, q, "{{", m.name)
		}
	}
}

// ttlMigrations returns the embedded TTL backstop migrations by name.
func ttlMigrations(t *testing.T) map[string]migration {
	t.Helper()
	sub, err := fs.Sub(schemas.ClickHouseMigrations, "clickhouse")
	require.NoError(t, err)
	migs, err := loadMigrations(sub)
	require.NoError(t, err)
	out := map[string]migration{}
	for _, m := range migs {
		if m.needs != "" {
			out[m.name] = m
		}
	}
	return out
}

func TestTTLMigrationsRender(t *testing.T) {
	t.Parallel()
	migs := ttlMigrations(t)
	tests := []struct {
		name string
		file string
		data templateData
		want string
	}{
		{name: "events/period", file: "002_events_ttl", data: templateData{Database: "db1", RetentionDays: 45, AlertRetentionDays: 365},
			want: "ALTER TABLE db1.events MODIFY TTL time + INTERVAL 45 DAY"},
		{name: "events/legal hold removes it", file: "002_events_ttl", data: templateData{Database: "db1", RetentionDays: 45, LegalHold: true},
			want: "ALTER TABLE db1.events REMOVE TTL"},
		{name: "alerts/period", file: "008_alerts_ttl", data: templateData{Database: "db1", RetentionDays: 45, AlertRetentionDays: 365},
			want: "ALTER TABLE db1.alerts MODIFY TTL time + INTERVAL 365 DAY"},
		{name: "alerts/legal hold removes it", file: "008_alerts_ttl", data: templateData{Database: "db1", AlertRetentionDays: 365, LegalHold: true},
			want: "ALTER TABLE db1.alerts REMOVE TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, ok := migs[tt.file]
			require.True(t, ok, tt.file)
			require.Equal(t, &Version{Major: 19, Minor: 6, Raw: "19.6"}, m.minServer)
			require.True(t, m.repeatable)
			stmts, _, err := m.render(tt.data)
			require.NoError(t, err)
			require.Equal(t, []string{tt.want}, stmts)
		})
	}
	require.Equal(t, "retention_days", migs["002_events_ttl"].needs)
	require.Equal(t, "alert_retention_days", migs["008_alerts_ttl"].needs)
}

// TestEventsTTLChecksumUnchanged guards installations: without a legal
// hold, 002 must render byte for byte as it did before holds existed, or
// every installation would re-apply (and re-materialize) its TTL.
func TestEventsTTLChecksumUnchanged(t *testing.T) {
	t.Parallel()
	const before = `-- sessionmon: min_server=19.6 needs=retention_days repeatable
--
-- TTL backstop: ClickHouse itself deletes events older than the configured
-- retention even if the retention job never runs. TTL arrived in ClickHouse
-- 19.6, so older servers skip this migration (and apply it once upgraded).
-- It is re-applied whenever the configured number of days changes.
ALTER TABLE {{.Database}}.events MODIFY TTL time + INTERVAL {{.RetentionDays}} DAY;
`
	old, err := parseMigration(2, "002_events_ttl", before)
	require.NoError(t, err)
	data := templateData{Database: "sessionmon", RetentionDays: 90, AlertRetentionDays: 365}
	_, want, err := old.render(data)
	require.NoError(t, err)
	_, got, err := ttlMigrations(t)["002_events_ttl"].render(data)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []string // names in order
		wantErr bool
	}{
		{
			name: "sorted by version, other files ignored",
			fsys: fstest.MapFS{
				"010_b.sql": file("SELECT 2;"),
				"002_a.sql": file("SELECT 1;"),
				"README.md": file("docs"),
				"notes.txt": file("x"),
				"sub/x.sql": file("SELECT 3;"),
				"003_c.sql": file("-- comment only line\nSELECT 3"),
			},
			want: []string{"002_a", "003_c", "010_b"},
		},
		{name: "bad file name", fsys: fstest.MapFS{"1_a.sql": file("SELECT 1;")}, wantErr: true},
		{name: "upper case name", fsys: fstest.MapFS{"001_A.sql": file("SELECT 1;")}, wantErr: true},
		{name: "duplicate version", fsys: fstest.MapFS{"001_a.sql": file("SELECT 1;"), "0001_b.sql": file("SELECT 1;")}, wantErr: true},
		{name: "unknown directive", fsys: fstest.MapFS{"001_a.sql": file("-- sessionmon: fancy\nSELECT 1;")}, wantErr: true},
		{name: "bad min_server", fsys: fstest.MapFS{"001_a.sql": file("-- sessionmon: min_server=new\nSELECT 1;")}, wantErr: true},
		{name: "bad template", fsys: fstest.MapFS{"001_a.sql": file("SELECT {{.Database;")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			migs, err := loadMigrations(tt.fsys)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidMigration)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, m := range migs {
				names = append(names, m.name)
			}
			require.Equal(t, tt.want, names)
		})
	}
}

func TestMigrationRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		want    []string
		wantErr bool
	}{
		{
			name: "two statements over several lines",
			src:  "-- header\nCREATE TABLE {{.Database}}.a\n(\n    x UInt8\n)\nENGINE = Memory;\n\n-- next\nCREATE TABLE {{.Database}}.b (x UInt8) ENGINE = Memory;\n",
			want: []string{"CREATE TABLE d.a\n(\n    x UInt8\n)\nENGINE = Memory", "CREATE TABLE d.b (x UInt8) ENGINE = Memory"},
		},
		{name: "last statement without semicolon", src: "SELECT 1;\nSELECT {{.RetentionDays}}", want: []string{"SELECT 1", "SELECT 7"}},
		{name: "comments only", src: "-- nothing\n", wantErr: true},
		{name: "unknown placeholder", src: "SELECT {{.Nope}};", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := parseMigration(1, "001_x", tt.src)
			require.NoError(t, err)
			got, _, err := m.render(templateData{Database: "d", RetentionDays: 7})
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidMigration)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMigrationSkipReason(t *testing.T) {
	t.Parallel()
	old := Version{Major: 18, Minor: 16, Patch: 1}
	v19 := Version{Major: 19, Minor: 14}
	current := Version{Major: 24, Minor: 8, Patch: 4}
	migs := ttlMigrations(t)
	events, alerts := migs["002_events_ttl"], migs["008_alerts_ttl"]
	both := templateData{RetentionDays: 90, AlertRetentionDays: 365}
	tests := []struct {
		name    string
		m       migration
		server  Version
		data    templateData
		applied bool
		want    string // "" applies
	}{
		{name: "plain migration applies on 18.16", m: migration{}, server: old},
		{name: "events ttl/on 18.16", m: events, server: old, data: both, want: "needs clickhouse 19.6.0"},
		{name: "alerts ttl/on 18.16", m: alerts, server: old, data: both, want: "needs clickhouse 19.6.0"},
		{name: "events ttl/without retention", m: events, server: current, data: templateData{AlertRetentionDays: 365}, want: "no retention configured"},
		{name: "alerts ttl/without retention", m: alerts, server: current, data: templateData{RetentionDays: 90}, want: "no retention configured"},
		{name: "events ttl/on a current release", m: events, server: current, data: both},
		{name: "alerts ttl/on a current release", m: alerts, server: current, data: both},
		{name: "legal hold/never applied: nothing to remove", m: events, server: current, data: templateData{RetentionDays: 90, LegalHold: true},
			want: "legal hold active: no TTL backstop until it is lifted"},
		{name: "legal hold/applied: removed", m: alerts, server: current, data: templateData{LegalHold: true}, applied: true},
		{name: "legal hold/server cannot remove", m: events, server: v19, data: templateData{RetentionDays: 90, LegalHold: true}, applied: true,
			want: "legal hold active, but removing the TTL backstop needs clickhouse 20.10.0: the TTL still applies to held subjects"},
		{name: "legal hold/on 18.16", m: events, server: old, data: templateData{LegalHold: true}, applied: true, want: "needs clickhouse 19.6.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.m.skipReason(tt.server, tt.data, tt.applied))
		})
	}
}
