package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runConfigCheck(t *testing.T, yaml string) (file string, code int, stdout, stderr string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "sessionmon.yaml")
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	var out, errb bytes.Buffer
	code = run(context.Background(), []string{"config", "check", "--config", file}, &out, &errb)
	return file, code, out.String(), errb.String()
}

// TestConfigCheckReportsEveryMistake: three mistakes in three sections are
// all reported, each with its line in the file and its full key path.
func TestConfigCheckReportsEveryMistake(t *testing.T) {
	t.Parallel()
	file, code, stdout, stderr := runConfigCheck(t, `# sessionmon.yaml
log:
  format: json
detect:
  detectors:
    brute_force: {threshold: 5, dedup_window: 1w}
    impossible_travel:
      max_speed_kmh: 900
      max_sped_kmh: 800
notify:
  webhooks:
    - name: ops
      url: https://hooks.example.com/sessionmon
      secret_file: /run/secrets/ops
      give_up_after: 2d
      detectors: [brute_force, imposible_travel]
retention:
  periods:
    events: 4w
    alrts: 60d
dashboard:
  addr: 127.0.0.1:8080
  idle_timeout: 1d
  absolute_timeout: 1w
`)
	require.Equal(t, exitUsage, code, "stderr: %s", stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Equal(t, []string{
		file + ":9: detect.detectors.impossible_travel.max_sped_kmh: unknown key (known: ",
		file + `:16: notify.webhooks[0].detectors[1]: unknown detector "imposible_travel" (known: `,
		file + ":20: retention.periods.alrts: unknown data set (want one of ",
	}, prefixes(lines, []string{
		file + ":9: detect.detectors.impossible_travel.max_sped_kmh: unknown key (known: ",
		file + `:16: notify.webhooks[0].detectors[1]: unknown detector "imposible_travel" (known: `,
		file + ":20: retention.periods.alrts: unknown data set (want one of ",
	}), "stdout:\n%s", stdout)
	require.Contains(t, lines[1], "impossible_travel", "the known detectors are listed")
	require.NotContains(t, stdout, "config OK")
}

// prefixes returns, for each line, the one of want it starts with (or the
// line itself).
func prefixes(lines, want []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l
		for _, w := range want {
			if strings.HasPrefix(l, w) {
				out[i] = w
			}
		}
	}
	return out
}

func TestConfigCheckOptionsAndSyntax(t *testing.T) {
	t.Parallel()
	file, code, stdout, _ := runConfigCheck(t, "nats:\n  url: nats://127.0.0.1:4222\nstream:\n  max_age: 1w\n  duplicates: 2w\n  replicas: seven\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+`:6: stream.replicas: must be an integer (got "seven")`, strings.TrimSpace(stdout))

	file, code, stdout, _ = runConfigCheck(t, "stream:\n  max_age: 1d\n  duplicates: 2d\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+":3: stream.duplicates: stream-duplicates (SESSIONMON_STREAM_DUPLICATES): must not be longer than stream-max-age", strings.TrimSpace(stdout))

	file, code, stdout, _ = runConfigCheck(t, "log:\n  format: json\nnats:\n  url: x\n   user: y\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+":5: mapping values are not allowed in this context", strings.TrimSpace(stdout), "a syntax error has its line")
}

func TestConfigCheckOK(t *testing.T) {
	t.Parallel()
	file, code, stdout, stderr := runConfigCheck(t, `stream: {max_age: 2w, duplicates: 2m}
notify:
  retry_max: 1h
  webhooks:
    - {name: ops, url: "https://hooks.example.com/x", secret_file: /run/secrets/ops, give_up_after: 2d, detectors: [impossible_travel]}
retention:
  periods: {events: 4w}
dashboard:
  addr: 127.0.0.1:8080
  absolute_timeout: 1d
`)
	require.Equal(t, exitOK, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Equal(t, "config OK: "+file+"\n", stdout)
}

func TestConfigCheckNeedsAFile(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"config", "check"}, &out, &errb)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errb.String(), "no config file")
}

func TestConfigCheckExampleFile(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	file := filepath.Join("..", "..", "deploy", "sessionmon.example.yaml")
	code := run(context.Background(), []string{"config", "check", "--config", file}, &out, &errb)
	require.Equal(t, exitOK, code, "stdout: %s\nstderr: %s", out.String(), errb.String())
	require.Equal(t, "config OK: "+file+"\n", out.String())
}
