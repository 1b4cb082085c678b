// Package chstore is sessionmon's ClickHouse store: the only package that
// holds SQL. It applies the migrations embedded in schemas, writes event
// batches and answers the queries the rest of sessionmon needs.
//
// It speaks the native protocol (clickhouse://host:9000). That works with
// Debian 12's ClickHouse 18.16 as well as current releases; clickhouse-go's
// HTTP protocol does not work with 18.16 (its handshake sends a setting that
// 18.16 rejects).
//
// Every statement names its tables as database.table, so the connection
// itself does not depend on the database existing: Migrate creates it.
//
// Reads that must not see redelivered events twice use SELECT ... FINAL,
// which both 18.16 and current releases support on ReplacingMergeTree.
//
// A Store is safe for concurrent use; clickhouse-go pools its connections.
package chstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sessionmon/sessionmon/schemas"
)

// DefaultDatabase is the database used when the DSN names none.
const DefaultDatabase = "sessionmon"

// databaseName keeps the database name safe to splice into SQL unquoted.
var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Store is a connection pool to one ClickHouse database.
type Store struct {
	conn          driver.Conn
	db            string
	logger        *slog.Logger
	retentionDays int
	// alertRetentionDays is the TTL backstop of alerts.
	alertRetentionDays int
	migrations         fs.FS
	// cluster is the ClickHouse cluster of WithCluster, "" on a single node.
	cluster string
	// InsertEvents tuning.
	blockRows         int
	insertConcurrency int

	// insertSettings are the settings every insert sends, decided from
	// what the server knows at the first successful look (insertContext).
	insertSettings atomic.Pointer[clickhouse.Settings]

	// dialOpts are the connection's options, for the connections to each
	// server of the cluster (replicas.go), which replicas holds.
	dialOpts *clickhouse.Options
	replicas replicaConns
}

// Option configures a Store.
type Option func(*Store)

// WithRetentionDays sets the TTL backstop that Migrate applies on servers
// that support TTL (19.6 and newer): rows whose time is older than days are
// deleted by ClickHouse. 0, the default, applies no TTL.
func WithRetentionDays(days int) Option {
	return func(s *Store) { s.retentionDays = days }
}

// WithAlertRetentionDays sets the TTL backstop of the alerts table, as
// WithRetentionDays does for events. 0, the default, applies no TTL.
func WithAlertRetentionDays(days int) Option {
	return func(s *Store) { s.alertRetentionDays = days }
}

// Open connects to the ClickHouse server of dsn, for example
// clickhouse://127.0.0.1:9000/sessionmon?dial_timeout=2s, and pings it.
// The DSN's path names the database (default sessionmon), which need not
// exist yet. A nil logger discards.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDSN, err)
	}
	db := o.Auth.Database
	if db == "" {
		db = DefaultDatabase
	}
	if !databaseName.MatchString(db) {
		return nil, fmt.Errorf("%w: database name %q: want letters, digits and _", ErrInvalidDSN, db)
	}
	// Connect to the server's default database: ours may not exist yet.
	o.Auth.Database = ""
	migrations, err := fs.Sub(schemas.ClickHouseMigrations, "clickhouse")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMigration, err)
	}
	s := &Store{
		db:                db,
		logger:            logger.With("component", "chstore"),
		migrations:        migrations,
		blockRows:         defaultInsertBlockRows,
		insertConcurrency: defaultInsertConcurrency,
	}
	for _, opt := range opts {
		opt(s)
	}
	if s.retentionDays < 0 || s.alertRetentionDays < 0 {
		return nil, fmt.Errorf("%w: retention days %d and %d: must not be negative", ErrInvalidArgument, s.retentionDays, s.alertRetentionDays)
	}
	if err := checkCluster(s.cluster); err != nil {
		return nil, err
	}
	if s.cluster != "" {
		// An insert into a Distributed table returns only once every shard
		// stored its rows: ingest acknowledges events after that, never
		// while they wait in a node's send queue.
		if o.Settings == nil {
			o.Settings = clickhouse.Settings{}
		}
		o.Settings["insert_distributed_sync"] = 1
	}
	dial := *o
	s.dialOpts = &dial
	conn, err := clickhouse.Open(o)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("ping clickhouse %v: %w", o.Addr, err), conn.Close())
	}
	s.conn = conn
	return s, nil
}

// Database returns the name of the store's database.
func (s *Store) Database() string { return s.db }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}

// Close closes the connection pool. Calls in flight fail.
func (s *Store) Close() error {
	if err := errors.Join(s.conn.Close(), s.closeReplicas()); err != nil {
		return fmt.Errorf("close clickhouse: %w", err)
	}
	return nil
}

// DropDatabase drops the store's database with all its data. Tests use it to
// clean up; nothing in the service calls it.
func (s *Store) DropDatabase(ctx context.Context) error {
	if err := s.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db); err != nil {
		return fmt.Errorf("drop database %s: %w", s.db, err)
	}
	return nil
}

// isAlreadyExists reports whether err is ClickHouse's "table already exists"
// (57) or "database already exists" (82), which a concurrent migration by
// another process can cause despite IF NOT EXISTS.
func isAlreadyExists(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	// 57 table and 82 database already exist; 44 (ILLEGAL_COLUMN) is
	// also an ADD COLUMN of a column that exists (ClickHouse 18.16 has no
	// IF NOT EXISTS there).
	return ex.Code == 57 || ex.Code == 82 ||
		(ex.Code == 44 && strings.Contains(ex.Message, "already exists"))
}
