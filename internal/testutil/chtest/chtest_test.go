package chtest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dsn  string
		want string
	}{
		{name: "no path", dsn: "clickhouse://127.0.0.1:9000", want: "clickhouse://127.0.0.1:9000/test_x"},
		{name: "path replaced, query kept", dsn: "clickhouse://u:p@127.0.0.1:9000/other?dial_timeout=2s", want: "clickhouse://u:p@127.0.0.1:9000/test_x?dial_timeout=2s"},
		{name: "several hosts", dsn: "clickhouse://h1:9000,h2:9000/db", want: "clickhouse://h1:9000,h2:9000/test_x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := withDatabase(tt.dsn, "test_x")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewAndDSN(t *testing.T) {
	t.Parallel()
	var dsn, db string
	t.Run("inner", func(t *testing.T) {
		s := New(t)
		require.Same(t, s, New(t), "one store per test")
		dsn = DSN(t)
		db = s.Database()
		require.Regexp(t, `^test_[0-9a-f]{16}$`, db)
		require.Contains(t, dsn, "/"+db)

		other := Open(t, dsn)
		require.Equal(t, db, other.Database())
		n, err := other.CountEvents(t.Context())
		require.NoError(t, err, "the database is migrated")
		require.Zero(t, n)
	})
	if t.Skipped() || dsn == "" {
		return
	}
	s := Open(t, dsn)
	_, err := s.CountEvents(t.Context())
	require.Error(t, err, "the database %s is dropped when its test ends", db)
}

func TestNewIsolatesTests(t *testing.T) {
	t.Parallel()
	a, b := make(chan string, 1), make(chan string, 1)
	t.Run("a", func(t *testing.T) { a <- New(t).Database() })
	t.Run("b", func(t *testing.T) { b <- New(t).Database() })
	if len(a) == 0 || len(b) == 0 {
		t.Skip("no ClickHouse server")
	}
	require.NotEqual(t, <-a, <-b)
}
