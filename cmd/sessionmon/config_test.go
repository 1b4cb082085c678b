package main

import (
	"bytes"
	"context"
	"encoding/json"
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
log_format: json
log_level: info
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
dashboard_addr: 127.0.0.1:8080
dashboard:
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
	file, code, stdout, _ := runConfigCheck(t, "nats_url: nats://127.0.0.1:4222\nstream_max_age: 1w\nstream_duplicates: 2w\nstream_replicas: seven\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+`:4: stream_replicas: must be an integer (got "seven")`, strings.TrimSpace(stdout))

	file, code, stdout, _ = runConfigCheck(t, "stream_max_age: 1d\nstream_duplicates: 2d\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+":2: stream_duplicates: stream-duplicates (SESSIONMON_STREAM_DUPLICATES): must not be longer than stream-max-age", strings.TrimSpace(stdout))

	file, code, stdout, _ = runConfigCheck(t, "log_format: json\nnats_url: x\n   nats_user: y\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+":3: mapping values are not allowed in this context", strings.TrimSpace(stdout), "a syntax error has its line")
}

func TestConfigCheckOK(t *testing.T) {
	t.Parallel()
	file, code, stdout, stderr := runConfigCheck(t, `stream_max_age: 2w
stream_duplicates: 2m
notify:
  retry_max: 1h
  webhooks:
    - {name: ops, url: "https://hooks.example.com/x", secret_file: /run/secrets/ops, give_up_after: 2d, detectors: [impossible_travel]}
retention:
  periods: {events: 4w}
dashboard_addr: 127.0.0.1:8080
dashboard:
  absolute_timeout: 1d
`)
	require.Equal(t, exitOK, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Equal(t, "config OK: "+file+"\n", stdout)
}

// TestConfigCheckDeprecatedKeys: a deprecated key is a warning, not a
// problem: it is printed with its line and the key to write instead, and
// the file is OK. Set under both keys, an option is a problem.
func TestConfigCheckDeprecatedKeys(t *testing.T) {
	t.Parallel()
	file, code, stdout, stderr := runConfigCheck(t, `log_format: json
stream:
  partitions: 16
dashboard:
  addr: 127.0.0.1:8080
  absolute_timeout: 1d
`)
	require.Equal(t, exitOK, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Equal(t, file+":3: warning: stream.partitions is a deprecated key: write event_partitions at the top level of the file instead\n"+
		file+":5: warning: dashboard.addr is a deprecated key: write dashboard_addr at the top level of the file instead\n"+
		"config OK: "+file+"\n", stdout)

	file, code, stdout, _ = runConfigCheck(t, "event_partitions: 8\nstream:\n  partitions: 16\n")
	require.Equal(t, exitUsage, code)
	require.Equal(t, file+":1: event_partitions: set twice: here and on line 3 by its deprecated key stream.partitions; remove stream.partitions\n", stdout)
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

// TestDeprecatedKeyIsLogged: a command that reads a config file with a
// deprecated key logs one warning for it, at WARN, and runs with its value.
func TestDeprecatedKeyIsLogged(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sessionmon.yaml")
	require.NoError(t, os.WriteFile(file, []byte("log_format: json\nsimulate:\n  users: 250\n"), 0o600))
	dir := filepath.Join(t.TempDir(), "sim")
	code, _, errOut := runCmd(t, t.Context(), "simulate", "--config", file, "--out", dir, "--days", "1", "--seed", "3")
	require.Equal(t, exitOK, code, errOut)
	var warnings []map[string]any
	for line := range strings.Lines(errOut) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == "WARN" {
			warnings = append(warnings, rec)
		}
	}
	require.Len(t, warnings, 1, errOut)
	require.Equal(t, "deprecated config file key", warnings[0]["msg"])
	require.Equal(t, "simulate.users", warnings[0]["key"])
	require.Equal(t, "users", warnings[0]["use"])
	require.EqualValues(t, 3, warnings[0]["line"])
	require.Contains(t, errOut, "simulate: 250 users", "the value applies")
}
