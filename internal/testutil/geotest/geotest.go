// Package geotest locates MaxMind's test databases for tests.
package geotest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sessionmon/sessionmon/internal/testutil/repo"
)

// Dir returns shared/testdata/geoip beside the repository (the module root,
// then ../shared). Outside CI a missing directory skips the test; with
// CI=true it fails.
func Dir(t testing.TB) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	dir := filepath.Join(root, "..", "shared", "testdata", "geoip")
	if _, err := os.Stat(filepath.Join(dir, "GeoIP2-City-Test.mmdb")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("geotest: MaxMind test databases missing at %s: %v", dir, err)
		}
		t.Skipf("geotest: MaxMind test databases missing at %s (set up ../shared/testdata/geoip to run this test)", dir)
	}
	return dir
}
