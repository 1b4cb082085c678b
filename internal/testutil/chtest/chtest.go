// Package chtest gives each test its own database on a real ClickHouse
// server.
//
// The server comes from CLICKHOUSE_TEST_DSN (default
// clickhouse://127.0.0.1:9000; `bash scripts/clickhouse.sh start` runs one).
// When it cannot be reached the test is skipped with a message, unless
// CI=true, where that is a failure.
//
// A test's database is named test_<random>, created and migrated on first
// use, and dropped by t.Cleanup.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// EnvDSN names the environment variable with the test server's DSN.
const EnvDSN = "CLICKHOUSE_TEST_DSN"

// DefaultDSN is used when EnvDSN is unset.
const DefaultDSN = "clickhouse://127.0.0.1:9000?dial_timeout=2s"

// setupTimeout bounds connecting, migrating and dropping a test database.
const setupTimeout = time.Minute

// testDB is the database made for one test.
type testDB struct {
	dsn   string
	store *chstore.Store
}

// dbs maps a testing.TB to its *testDB.
var dbs sync.Map

// New returns a store on the test's own migrated database, made on the first
// call of New or DSN in this test. The store is closed, and the database
// dropped, by t.Cleanup; do not close it yourself.
func New(t testing.TB) *chstore.Store {
	t.Helper()
	return setup(t).store
}

// DSN returns the DSN of the test's own migrated database (the one New
// returns a store on), so that code under test can open its own store.
func DSN(t testing.TB) string {
	t.Helper()
	return setup(t).dsn
}

// Open opens another store on dsn, closed by t.Cleanup. A failure to connect
// fails the test.
func Open(t testing.TB, dsn string, opts ...chstore.Option) *chstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	s, err := chstore.Open(ctx, dsn, nil, opts...)
	if err != nil {
		t.Fatalf("chtest: open %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ServerDSN returns the DSN of the test server, from EnvDSN or DefaultDSN.
func ServerDSN() string {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

func setup(t testing.TB) *testDB {
	t.Helper()
	if db, ok := dbs.Load(t); ok {
		return db.(*testDB)
	}
	dsn, err := withDatabase(ServerDSN(), "test_"+randomHex(8))
	if err != nil {
		t.Fatalf("chtest: %s: %v", EnvDSN, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()
	s, err := chstore.Open(ctx, dsn, nil)
	if err != nil {
		msg := fmt.Sprintf("chtest: no ClickHouse server at %s (%v); start one with `bash scripts/clickhouse.sh start` or set %s", ServerDSN(), err, EnvDSN)
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	db := &testDB{dsn: dsn, store: s}
	t.Cleanup(func() {
		dbs.Delete(t)
		// t.Context is already canceled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := s.DropDatabase(ctx); err != nil {
			t.Errorf("chtest: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("chtest: %v", err)
		}
	})
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("chtest: migrate %s: %v", s.Database(), err)
	}
	dbs.Store(t, db)
	return db
}

// withDatabase returns dsn with its path set to db, keeping the query.
func withDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse dsn: %w", err)
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}
