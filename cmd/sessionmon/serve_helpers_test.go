package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
)

// servedPipeline is a `sessionmon serve` a test started: embedded NATS,
// real ClickHouse, the dashboard with an admin signed in through the API.
type servedPipeline struct {
	base     string // http://<metrics-addr>, also the dashboard-addr
	natsAddr string
	dataDir  string
	api      apiFunc
}

// startServeWithAdmin runs `sessionmon serve` with a config file holding an admin
// user (made with `sessionmon user add`, as docs/dashboard.md says) and yaml
// (more top-level sections), waits until the checks named in ready pass,
// signs in to the dashboard and makes an API token. serve stops, and must
// exit cleanly, when the test ends.
func startServeWithAdmin(t *testing.T, yaml string, ready ...string) *servedPipeline {
	t.Helper()
	// The database is made first, so that it is dropped (by a cleanup)
	// after serve stopped.
	dsn := chtest.DSN(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	const admin, password = "ops", "correct horse battery staple"
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(password+"\n"), 0o600))
	code, out, errOut := runCmd(t, t.Context(), "user", "add", admin, "--role", "admin", "--password-file", pwFile)
	require.Equal(t, exitOK, code, errOut)
	var entry strings.Builder
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "#") {
			entry.WriteString("    " + line)
		}
	}
	cfgFile := filepath.Join(dir, "sessionmon.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(yaml+"dashboard:\n  users:\n"+entry.String()), 0o600))
	p := serveWithConfig(t, dsn, dataDir, cfgFile, ready...)
	p.api = dashboardAPI(t, p.base, admin, password)
	return p
}

// serveWithConfig runs `sessionmon serve` on the ClickHouse database dsn with
// dataDir and the config file cfgFile, and waits until the checks named in
// ready pass. serve stops, and must exit cleanly, when the test ends.
func serveWithConfig(t *testing.T, dsn, dataDir, cfgFile string, ready ...string) *servedPipeline {
	t.Helper()
	p := &servedPipeline{natsAddr: freeAddr(t), dataDir: dataDir}
	httpAddr := freeAddr(t)
	p.base = "http://" + httpAddr
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan int, 1)
	var stdout, serveLog syncBuffer
	dumpLogOnFailure(t, &serveLog)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgFile, "--data-dir", dataDir, "--nats-listen", p.natsAddr, "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr,
			"--clickhouse-dsn", dsn, "--ingest-batch-age", "100ms", "--insecure-dev-cookies"}, &stdout, &serveLog)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			require.Equal(t, exitOK, code, "serve's exit code")
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop within 30 s of cancellation")
		}
	})
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(p.base + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		for _, c := range ready {
			if body.Checks[c] != "ok" {
				return fmt.Errorf("readyz %d: %v", resp.StatusCode, body.Checks)
			}
		}
		return nil
	})
	return p
}
