package chstore

import "io/fs"

// WithMigrations replaces the embedded migrations with those in the root of
// fsys, for tests of the migration runner.
func WithMigrations(fsys fs.FS) Option {
	return func(s *Store) { s.migrations = fsys }
}

// WithInsertBlockRows sets how many rows InsertEvents sends per block.
func WithInsertBlockRows(n int) Option {
	return func(s *Store) { s.blockRows = n }
}
