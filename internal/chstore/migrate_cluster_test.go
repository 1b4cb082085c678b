package chstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

// goldenStatements splits a DDL golden file as migrations are split:
// comment lines dropped, a ';' at the end of a line ends a statement.
func goldenStatements(t *testing.T, path string) []string {
	t.Helper()
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	var (
		out []string
		cur strings.Builder
	)
	for line := range strings.Lines(string(src)) {
		if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	require.Empty(t, strings.TrimSpace(cur.String()), "%s ends without ';'", path)
	return out
}

// TestClusterDDLParses sends every statement of the cluster golden files
// to the test server. A single server has no distributed DDL (no
// ZooKeeper), so ON CLUSTER fails, but only after the statement was
// parsed: a syntax error (code 62) means the server cannot read it. (A
// server that has distributed DDL has no cluster sessionmon_cluster, so
// the statements fail there too and create nothing.)
func TestClusterDDLParses(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	v, err := s.ServerVersion(t.Context())
	require.NoError(t, err)
	// The 24.8 files hold TTL statements that older servers cannot parse
	// (and never receive: those migrations are skipped there).
	files := []string{filepath.Join("testdata", "ddl", "cluster", "18.16.sql")}
	if v.AtLeast(20, 10) {
		files, err = filepath.Glob(filepath.Join("testdata", "ddl", "cluster", "*.sql"))
		require.NoError(t, err)
	}
	n := 0
	for _, f := range files {
		for _, q := range goldenStatements(t, f) {
			require.Contains(t, q, " ON CLUSTER ", "%s: every cluster statement runs on the cluster", f)
			err := s.Exec(t.Context(), q)
			var ex *clickhouse.Exception
			if err != nil && errors.As(err, &ex) {
				require.NotEqual(t, int32(62), ex.Code, "%s: syntax error in\n%s\n%v", f, q, err)
			}
			n++
		}
	}
	require.GreaterOrEqual(t, n, 14, "bootstrap and every table of the 18.16 file")
}

// TestMigrateRefusesOtherMode: a database created on a single node is
// not migrated by a cluster store, before any statement runs.
func TestMigrateRefusesOtherMode(t *testing.T) {
	t.Parallel()
	single := chtest.New(t) // migrated on a single node
	s := chtest.Open(t, chtest.DSN(t), chstore.WithCluster("sessionmon_cluster"))
	require.Equal(t, "sessionmon_cluster", s.Cluster())
	applied, err := s.Migrate(t.Context())
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	require.ErrorContains(t, err, "clickhouse-cluster sessionmon_cluster: database "+single.Database()+" was created on a single node")
	require.Nil(t, applied)
}

func TestOpenRejectsBadClusterName(t *testing.T) {
	t.Parallel()
	_, err := chstore.Open(t.Context(), "clickhouse://127.0.0.1:1/x", nil, chstore.WithCluster("c1; DROP"))
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	require.ErrorContains(t, err, `cluster name "c1; DROP"`)
}
