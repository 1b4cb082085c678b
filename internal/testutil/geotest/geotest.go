// Package geotest gives tests GeoIP databases: MaxMind's test databases,
// carried in testdata/geoip (see its README.md), and databases a test
// writes itself (WriteDatabases).
package geotest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionmon/sessionmon/internal/testutil/repo"
)

// databases are the files of testdata/geoip that tests read.
var databases = []string{
	"GeoIP2-City-Test.mmdb",
	"GeoLite2-City-Test.mmdb",
	"GeoLite2-ASN-Test.mmdb",
	"GeoIP2-Anonymous-IP-Test.mmdb",
}

// Dir returns the directory of MaxMind's test databases inside the
// repository. A missing database fails the test: they are part of every
// clone, so a test never skips for want of one.
func Dir(t testing.TB) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	dir := filepath.Join(root, "internal", "testutil", "geotest", "testdata", "geoip")
	for _, name := range databases {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("geotest: MaxMind test database missing from the repository: %v", err)
		}
	}
	return dir
}
