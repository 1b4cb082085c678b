package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// versionLine is the shape of `sessionmon --version`.
var versionLine = regexp.MustCompile(`^sessionmon \S+ \(commit \S+, go1\.[0-9.]+\S*, [a-z0-9]+/[a-z0-9]+\)\n$`)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, out, errOut := runCmd(t, t.Context(), args...)
		require.Equal(t, exitOK, code, "%v: %s", args, errOut)
		require.Regexp(t, versionLine, out, "%v", args)
		require.Empty(t, errOut)
	}
	v, commit, goVersion := buildInfo()
	require.NotEmpty(t, v)
	require.NotEmpty(t, commit)
	require.True(t, strings.HasPrefix(goVersion, "go1."), goVersion)
}

func TestPseudoCommit(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"v0.0.0-20261207142428-abcdef123456":                "abcdef123456",
		"v1.2.4-0.20261207142428-abcdef123456+dirty":        "abcdef123456+dirty",
		"v2.0.1-0.20261207142428-abcdef123456+incompatible": "abcdef123456",
		"v1.2.3":  "unknown",
		"(devel)": "unknown",
	} {
		require.Equal(t, want, pseudoCommit(v), v)
	}
}

// TestUsageErrors: a command line a command can't run exits 2 with the
// command's usage on stderr, before anything connects.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args  []string
		usage string // the command's usage line
		want  string
	}{
		{args: []string{"erase"}, usage: "Usage: sessionmon erase --subject", want: "--subject is required"},
		{args: []string{"erase", "list", "all"}, usage: "Usage: sessionmon erase", want: "too many arguments"},
		{args: []string{"hold"}, usage: "Usage: sessionmon hold set", want: "missing subcommand: want set or lift or list"},
		{args: []string{"hold", "set"}, usage: "Usage: sessionmon hold set", want: "set: --subject is required"},
		{args: []string{"dlq"}, usage: "Usage: sessionmon dlq list", want: "missing subcommand: want list"},
		{args: []string{"dlq", "lst"}, usage: "Usage: sessionmon dlq list", want: `unknown subcommand "lst"`},
		{args: []string{"dlq", "list", "--frobnicate"}, usage: "Usage: sessionmon dlq list", want: "flag provided but not defined: -frobnicate"},
		{args: []string{"dlq", "list", "-o", "yaml"}, usage: "", want: "must be table or json"},
		{args: []string{"creds"}, usage: "Usage: sessionmon creds app NAME", want: "missing subcommand"},
		{args: []string{"creds", "revoke-http"}, usage: "Usage: sessionmon creds app NAME", want: "revoke-http: missing the token's ID"},
		{args: []string{"retention"}, usage: "Usage: sessionmon retention run", want: "want run or report"},
		{args: []string{"notify", "resend"}, usage: "Usage: sessionmon notify", want: `unknown subcommand "resend"`},
		{args: []string{"user", "add"}, usage: "Usage: sessionmon user add NAME", want: "missing the user's NAME"},
		{args: []string{"publish"}, usage: "Usage: sessionmon publish --file", want: "--file is required"},
		{args: []string{"serve", "now"}, usage: "Usage: sessionmon serve", want: `unexpected argument "now"`},
		{args: []string{"version", "--short"}, usage: "Usage: sessionmon version", want: "flag provided but not defined: -short"},
		{args: []string{"frobnicate"}, usage: "Usage: sessionmon COMMAND", want: `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(t, t.Context(), tt.args...)
			require.Equal(t, exitUsage, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, tt.want)
			require.Contains(t, errOut, tt.usage)
			if tt.usage != "" && tt.args[0] != "frobnicate" {
				require.Contains(t, errOut, "Run 'sessionmon "+tt.args[0]+" --help' for its options.")
			}
			require.NotContains(t, errOut, "level=")
		})
	}
}

// TestRuntimeErrorIsOneLine: a command that fails exits 1 with one line on
// stderr, not a log record.
func TestRuntimeErrorIsOneLine(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(t, t.Context(), "health", "--metrics-addr", freeAddr(t))
	require.Equal(t, exitError, code)
	require.Empty(t, out)
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
	require.True(t, strings.HasPrefix(errOut, "sessionmon health: GET http://"), errOut)
	require.Contains(t, errOut, "connection refused")
	require.NotContains(t, errOut, "level=ERROR")
}

// TestCommandsReadOnlyTheirOptions: a variable of another command's option
// is ignored, and the environment does not switch detect offline.
func TestCommandsReadOnlyTheirOptions(t *testing.T) {
	events := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(events, []byte(event("ev-env-1", "k1:AAAAAAAAAAAAAAAAAAAAAA")+"\n"), 0o600))
	t.Setenv("SESSIONMON_EVENTS", "x")   // bench's, malformed
	t.Setenv("SESSIONMON_INPUT", events) // detect's flag only
	t.Setenv("SESSIONMON_LIMIT", "many") // dlq's, malformed

	code, out, errOut := runCmd(t, t.Context(), "version")
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, versionLine, out)

	// Live detect with no NATS listening fails connecting; offline, it
	// would have read the file and exited 0 with a summary.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code, out, errOut = runCmd(t, ctx, "detect", "--nats-url", "nats://"+freeAddr(t), "--data-dir", t.TempDir(),
		"--metrics-addr", freeAddr(t))
	require.Equal(t, exitError, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, errOut, "sessionmon detect: connect to nats")
	require.NotContains(t, errOut, "events/s")
	require.Empty(t, out)

	// The command's own variables are still read.
	code, _, errOut = runCmd(t, t.Context(), "dlq", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "SESSIONMON_LIMIT")
}

// TestDLQListJSON: dlq list -o json prints the dead letters as one JSON
// array with the columns of the table, never the refused message.
func TestDLQListJSON(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	chtest.New(t)
	srv := startServe(t, "--data-dir", dataDir, "--nats-listen", natsAddr, "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr,
		"--clickhouse-dsn", chtest.DSN(t), "--ingest-batch-age", "100ms")
	dumpLogOnFailure(t, srv.errOut)
	waitNATSReady(t, httpAddr)

	dlq := func() []map[string]any {
		t.Helper()
		code, out, errOut := runCmd(t, t.Context(), "dlq", "list", "-o", "json", "--data-dir", dataDir, "--nats-listen", natsAddr)
		require.Equal(t, exitOK, code, errOut)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
		return rows
	}
	require.Empty(t, dlq(), "no dead letters: []")

	nc, err := nats.Connect("nats://"+natsAddr, nats.UserCredentials(natsauth.CredsFile(natsauth.Dir(dataDir), natsauth.AdminUser)))
	require.NoError(t, err)
	defer nc.Close()
	const email = "alice.dlq@example.com"
	require.NoError(t, nc.Publish(schemas.EventSubject("shop", "k1:BBBBBBBBBBBBBBBBBBBBBB"), []byte(`{"not a":"schema v1 event","email":"`+email+`"}`)))
	require.NoError(t, nc.Flush())

	var rows []map[string]any
	poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		if rows = dlq(); len(rows) != 1 {
			return fmt.Errorf("%d dead letters", len(rows))
		}
		return nil
	})
	row := rows[0]
	require.Len(t, row, 6, "the columns of the table: %v", row)
	for _, k := range []string{"seq", "event_seq", "time", "reason", "fields", "error"} {
		require.Contains(t, row, k)
	}
	require.NotEmpty(t, row["reason"])
	_, err = time.Parse(time.RFC3339, row["time"].(string))
	require.NoError(t, err)

	code, out, errOut := runCmd(t, t.Context(), "dlq", "list", "--format", "json", "--data-dir", dataDir, "--nats-listen", natsAddr)
	require.Equal(t, exitOK, code, errOut)
	require.NotContains(t, out, email)
	require.True(t, json.Valid([]byte(out)))
}

// TestBuildInfoMetric: every process's registry says which build runs.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	mfs, err := newRegistry().Gather()
	require.NoError(t, err)
	v, c, goVersion := buildInfo()
	for _, mf := range mfs {
		if mf.GetName() != "sessionmon_build_info" {
			continue
		}
		require.Len(t, mf.GetMetric(), 1)
		m := mf.GetMetric()[0]
		require.Equal(t, 1.0, m.GetGauge().GetValue())
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		require.Equal(t, map[string]string{"version": v, "commit": c, "goversion": goVersion}, labels)
		return
	}
	t.Fatal("no sessionmon_build_info")
}
