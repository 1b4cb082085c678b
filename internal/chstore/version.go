package chstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version such as 18.16.1 or 24.8.4.13.
type Version struct {
	Major, Minor, Patch int
	// Raw is the version string the server reported.
	Raw string
}

// ParseVersion parses the result of SELECT version(): dot-separated numbers,
// of which at least major and minor must be present. Extra parts (build
// numbers) are kept only in Raw.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: s}
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("parse clickhouse version %q: want major.minor[.patch...]", s)
	}
	dst := []*int{&v.Major, &v.Minor, &v.Patch}
	for i := 0; i < len(dst) && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("parse clickhouse version %q: part %d is not a number", s, i+1)
		}
		*dst[i] = n
	}
	return v, nil
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	if v.Major != major {
		return v.Major > major
	}
	return v.Minor >= minor
}

// SupportsTTL reports whether the server knows table TTLs (ClickHouse 19.6).
func (v Version) SupportsTTL() bool { return v.AtLeast(19, 6) }

// String returns the version as major.minor.patch.
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// ServerVersion asks the server for its version.
func (s *Store) ServerVersion(ctx context.Context) (Version, error) {
	var raw string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		return Version{}, fmt.Errorf("query server version: %w", err)
	}
	return ParseVersion(raw)
}
