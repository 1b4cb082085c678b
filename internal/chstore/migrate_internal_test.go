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
	ttl := migs[1]
	require.Equal(t, "002_events_ttl", ttl.name)
	require.Equal(t, &Version{Major: 19, Minor: 6, Raw: "19.6"}, ttl.minServer)
	require.True(t, ttl.needRetention)
	require.True(t, ttl.repeatable)
	stmts, _, err := ttl.render(templateData{Database: "db1", RetentionDays: 45})
	require.NoError(t, err)
	require.Equal(t, []string{"ALTER TABLE db1.events MODIFY TTL time + INTERVAL 45 DAY"}, stmts)
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
	current := Version{Major: 24, Minor: 8, Patch: 4}
	ttl := migration{minServer: &Version{Major: 19, Minor: 6}, needRetention: true}
	tests := []struct {
		name      string
		m         migration
		server    Version
		retention int
		skipped   bool
	}{
		{name: "plain migration applies on 18.16", m: migration{}, server: old, skipped: false},
		{name: "ttl on 18.16", m: ttl, server: old, retention: 30, skipped: true},
		{name: "ttl without retention", m: ttl, server: current, retention: 0, skipped: true},
		{name: "ttl on a current release", m: ttl, server: current, retention: 30, skipped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.skipped, tt.m.skipReason(tt.server, tt.retention) != "")
		})
	}
}
