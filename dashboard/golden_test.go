package dashboard

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden pages in testdata/golden")

// goldenNow is the dashboard's clock in the golden tests: the seeded data
// and every time on the pages are fixed.
var goldenNow = time.Date(2026, time.March, 2, 10, 0, 0, 0, time.UTC)

// What varies between runs, and what it becomes in a golden file.
var (
	csrfValue    = regexp.MustCompile(`name="csrf_token" value="[^"]*"`)
	assetVersion = regexp.MustCompile(`\?v=[0-9A-Za-z_-]+`)
)

// normalizePage replaces what varies between runs (CSRF tokens, asset
// versions) with fixed text.
func normalizePage(body []byte) []byte {
	body = csrfValue.ReplaceAll(body, []byte(`name="csrf_token" value="CSRF"`))
	return assetVersion.ReplaceAll(body, []byte(`?v=VERSION`))
}

// checkGolden compares got with testdata/golden/<name>.html, or writes it
// there with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", "golden", name+".html")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, got, 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "run go test ./dashboard/ -run TestGoldenPages -update to write it")
	if !bytes.Equal(want, got) {
		// require.Equal on strings prints a diff.
		require.Equal(t, string(want), string(got), "%s differs; if the change is intended, run with -update", file)
	}
}

// TestGoldenPages renders the main pages on fixed data (real ClickHouse and
// NATS, a fixed clock) and compares them with testdata/golden.
func TestGoldenPages(t *testing.T) {
	env := newPagesEnvAt(t, func() time.Time { return goldenNow })
	env.seed(t, 3)
	seedGoldenSuppressions(t, env)
	seedGoldenNetworks(t, env)
	for _, tc := range []struct{ name, path string }{
		{"overview", "/"},
		{"alert_list", "/alerts"},
		{"alert_show", "/alerts/" + testAlertID(0)},
		{"subject_show", "/subjects/k1:SubjectAAAA"},
		{"session_show", "/sessions/k1:SessionAAAA"},
		{"error", "/alerts?severity=urgent"},
		{"suppressions", "/suppressions"},
		{"networks", "/networks"},
		// No detect process runs: the lookup says so, the list stays.
		{"networks_lookup", "/networks?subject=k1:SubjectAAAA"},
		{"suppression_new", "/suppressions?detector=impossible_travel&app=shop&ip_prefix=198.51.100.0%2F24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := env.get(t, tc.path)
			require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, rec.Code, rec.Body.String())
			checkGolden(t, tc.name, normalizePage(rec.Body.Bytes()))
		})
	}
	t.Run("login", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		env.s.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/login?next=%2Falerts", nil))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		checkGolden(t, "login", normalizePage(rec.Body.Bytes()))
	})
}
