package chstore

import (
	"context"
	"io/fs"
)

// WithMigrations replaces the embedded migrations with those in the root of
// fsys, for tests of the migration runner.
func WithMigrations(fsys fs.FS) Option {
	return func(s *Store) { s.migrations = fsys }
}

// WithInsertBlockRows sets how many rows InsertEvents sends per block.
func WithInsertBlockRows(n int) Option {
	return func(s *Store) { s.blockRows = n }
}

// Exec runs a statement on the store's connection; tests use it to set up
// states the store's API never produces (a mutation that cannot finish).
func (s *Store) Exec(ctx context.Context, q string) error { return s.conn.Exec(ctx, q) }
