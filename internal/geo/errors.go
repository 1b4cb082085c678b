package geo

import (
	"errors"
	"fmt"
)

// Sentinels of Open and FindNetworks. Match them with errors.Is.
var (
	// ErrInvalidDatabase means a file is not a MaxMind DB (mmdb) file, or
	// is damaged.
	ErrInvalidDatabase = errors.New("not a valid mmdb file")
	// ErrUnknownDatabaseType means an mmdb file's metadata names a
	// database_type this package cannot read. The error is a
	// *DatabaseTypeError.
	ErrUnknownDatabaseType = errors.New("unknown geo database type")
	// ErrNoCityDatabase means FindNetworks was asked for places but no
	// city or country database is configured.
	ErrNoCityDatabase = errors.New("no geo city database configured")
	// ErrClosed means the Resolver was closed.
	ErrClosed = errors.New("geo resolver closed")
)

// DatabaseTypeError reports an mmdb file whose database_type is not one
// this package reads.
type DatabaseTypeError struct {
	Path string
	Type string
}

// Error names the file, its type and the types that are read.
func (e *DatabaseTypeError) Error() string {
	return fmt.Sprintf("geo database %s: unknown database_type %q (want a city, country, ASN or anonymous-IP database: %s)",
		e.Path, e.Type, knownTypesList())
}

// Is makes errors.Is(err, ErrUnknownDatabaseType) true.
func (e *DatabaseTypeError) Is(target error) bool { return target == ErrUnknownDatabaseType }
