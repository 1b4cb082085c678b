package chstore

import "errors"

// Sentinel errors of this package; match them with errors.Is.
var (
	// ErrInvalidDSN rejects a DSN that clickhouse-go cannot parse or whose
	// database name is not a plain identifier.
	ErrInvalidDSN = errors.New("invalid clickhouse dsn")
	// ErrInvalidMigration rejects a migration file with a bad name, directive
	// or template. It is a programmer error in schemas/clickhouse.
	ErrInvalidMigration = errors.New("invalid migration")
	// ErrInvalidArgument rejects an argument out of range, such as a limit < 1.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound says that what was asked for (an alert, a session) is not
	// stored.
	ErrNotFound = errors.New("not found")
)
