// Package geotest locates MaxMind's test databases for tests.
package geotest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionmon/sessionmon/internal/testutil/repo"
)

// databases are the files of MaxMind's test data that the tests open.
var databases = []string{
	"GeoIP2-Anonymous-IP-Test.mmdb",
	"GeoIP2-City-Test.mmdb",
	"GeoLite2-ASN-Test.mmdb",
	"GeoLite2-City-Test.mmdb",
}

// Dir returns internal/testutil/geotest/testdata of the repository, which
// holds MaxMind's test databases (see its NOTICE). They are part of the
// repository, so a missing one fails the test.
func Dir(t testing.TB) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	dir := filepath.Join(root, "internal", "testutil", "geotest", "testdata")
	for _, name := range databases {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("geotest: MaxMind test database missing from the repository: %v", err)
		}
	}
	return dir
}
