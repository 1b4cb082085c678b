package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
)

// TestServeHTTPAddresses: serve puts the dashboard and the HTTP intake on
// dashboard-addr and /metrics, /healthz, /readyz on metrics-addr; the same
// address serves all of them on one server. The dashboard waits for
// ClickHouse here (it answers 503): what is tested is which server answers.
func TestServeHTTPAddresses(t *testing.T) {
	t.Parallel()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	do := func(t *testing.T, method, url string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	// The intake's routing is what is tested, not the intake itself.
	intakeHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "intake")
	})
	notReady := func(context.Context) error { return errors.New("clickhouse not up in this test") }
	start := func(t *testing.T, cfg *config.Config, logger *slog.Logger) error {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		g, gctx := errgroup.WithContext(ctx)
		err := serveHTTPAndDashboard(gctx, g, cfg, nil, notReady, nil, intakeHandler, health.NewRegistry(), prometheus.NewRegistry(), logger)
		t.Cleanup(func() {
			cancel()
			require.NoError(t, g.Wait())
		})
		return err
	}
	discard := slog.New(slog.DiscardHandler)

	// separate checks that the dashboard and the intake answer on
	// dashboard-addr only, and the probes on metrics-addr only.
	separate := func(t *testing.T, cfg *config.Config) {
		t.Helper()
		dash, probes := "http://"+cfg.Dashboard.Addr, "http://"+cfg.MetricsAddr
		code, body := do(t, http.MethodGet, dash+"/login")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "dashboard starting")
		code, body = do(t, http.MethodPost, dash+intake.Path)
		require.Equal(t, http.StatusAccepted, code, "the intake is with the dashboard")
		require.Equal(t, "intake", body)
		code, body = do(t, http.MethodGet, dash+"/metrics")
		require.Contains(t, body, "dashboard starting", "no metrics on the dashboard's address (%d)", code)

		code, _ = do(t, http.MethodGet, probes+"/healthz")
		require.Equal(t, http.StatusOK, code)
		code, body = do(t, http.MethodGet, probes+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "dashboard waiting for clickhouse")
		code, body = do(t, http.MethodGet, probes+"/metrics")
		require.Equal(t, http.StatusOK, code, body)
		code, body = do(t, http.MethodGet, probes+"/login")
		require.Equal(t, http.StatusNotFound, code, "no dashboard on metrics-addr: %s", body)
		code, _ = do(t, http.MethodPost, probes+intake.Path)
		require.NotEqual(t, http.StatusAccepted, code, "no intake on metrics-addr")
	}

	t.Run("own dashboard-addr", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = freeAddr(t)
		cfg.Dashboard.Addr = freeAddr(t)
		require.NoError(t, start(t, &cfg, discard))
		separate(t, &cfg)
	})

	t.Run("dashboard-addr given as its default", func(t *testing.T) {
		// The default address given explicitly is honoured, not taken
		// for "unset" and moved onto metrics-addr.
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = freeAddr(t)
		cfg.Dashboard.Addr = dashboard.DefaultAddr
		ln, err := net.Listen("tcp", dashboard.DefaultAddr)
		if err != nil {
			// Something else has the port: serve must try it, and fail.
			err = start(t, &cfg, discard)
			require.ErrorContains(t, err, "http listen on "+dashboard.DefaultAddr)
			return
		}
		require.NoError(t, ln.Close())
		require.NoError(t, start(t, &cfg, discard))
		separate(t, &cfg)
	})

	t.Run("one address, one server", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = freeAddr(t)
		cfg.Dashboard.Addr = cfg.MetricsAddr
		require.NoError(t, start(t, &cfg, discard))
		base := "http://" + cfg.MetricsAddr
		code, _ := do(t, http.MethodGet, base+"/healthz")
		require.Equal(t, http.StatusOK, code)
		code, body := do(t, http.MethodGet, base+"/metrics")
		require.Equal(t, http.StatusOK, code, body)
		code, body = do(t, http.MethodGet, base+"/login")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "dashboard starting")
		code, _ = do(t, http.MethodPost, base+intake.Path)
		require.Equal(t, http.StatusAccepted, code)
	})

	t.Run("same port on overlapping interfaces", func(t *testing.T) {
		port := freeAddr(t)[len("127.0.0.1:"):]
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = "0.0.0.0:" + port
		cfg.Dashboard.Addr = "127.0.0.1:" + port
		err := start(t, &cfg, discard)
		require.ErrorContains(t, err, "both listen on port "+port)
		require.ErrorContains(t, err, "SESSIONMON_DASHBOARD_ADDR")
		require.NotContains(t, err.Error(), "http-addr")

		// The usual upgrade mistake: the old SESSIONMON_HTTP_ADDR=0.0.0.0:8080
		// with the dashboard's default address.
		cfg.HTTPAddr = cfg.MetricsAddr
		err = start(t, &cfg, discard)
		require.ErrorContains(t, err, "both listen on port "+port)
		require.ErrorContains(t, err, "(http-addr, SESSIONMON_HTTP_ADDR, sets metrics-addr now)")
	})

	t.Run("deprecated http-addr", func(t *testing.T) {
		var logs syncBuffer
		logger, _ := logging.New(&logs, "text", slog.LevelInfo)
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTPAddr = freeAddr(t)
		cfg.MetricsAddr = cfg.HTTPAddr
		cfg.Dashboard.Addr = freeAddr(t)
		require.NoError(t, start(t, &cfg, logger))
		code, _ := do(t, http.MethodGet, "http://"+cfg.HTTPAddr+"/healthz")
		require.Equal(t, http.StatusOK, code, "http-addr serves the probes")
		out := logs.String()
		require.Contains(t, out, "level=WARN msg=\"http-addr (SESSIONMON_HTTP_ADDR) is deprecated")
		require.Contains(t, out, "SESSIONMON_METRICS_ADDR")
		require.Contains(t, out, "are on dashboard-addr, not on http-addr")
	})
}

func TestSamePort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metrics, dash string
		clash         bool
	}{
		{"127.0.0.1:9477", "127.0.0.1:8080", false},
		{"0.0.0.0:8080", "127.0.0.1:8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"[::]:8080", "10.0.0.1:8080", true},
		{"localhost:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "10.0.0.1:8080", false},
		{"127.0.0.1:0", "0.0.0.0:0", false},
	} {
		err := samePort(tc.metrics, tc.dash)
		require.Equal(t, tc.clash, err != nil, "%s %s: %v", tc.metrics, tc.dash, err)
	}
}

// TestDashboardCommandAddresses: sessionmon dashboard serves the dashboard
// on dashboard-addr and its own /metrics, /healthz and /readyz (NATS, the
// events stream, ClickHouse) on metrics-addr.
func TestDashboardCommandAddresses(t *testing.T) {
	t.Parallel()
	natsAddr, serveProbes, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	chtest.New(t)
	dsn := chtest.DSN(t)
	srv := startServe(t, "--data-dir", dataDir, "--nats-listen", natsAddr, "--metrics-addr", serveProbes, "--dashboard-addr", freeAddr(t),
		"--clickhouse-dsn", dsn)
	dumpLogOnFailure(t, srv.errOut)
	waitNATSReady(t, serveProbes)

	probes, dash := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out, errOut syncBuffer
	go func() {
		done <- run(ctx, []string{"dashboard", "--data-dir", dataDir, "--nats-listen", natsAddr, "--clickhouse-dsn", dsn,
			"--metrics-addr", probes, "--dashboard-addr", dash}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			require.Equal(t, exitOK, code, "dashboard's log:\n%s", errOut.String())
		case <-time.After(30 * time.Second):
			t.Fatal("dashboard did not stop within 30 s of cancellation")
		}
	})
	get := func(url string) (int, string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	poll.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		code, body, err := get("http://" + probes + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, `"clickhouse":"ok"`) || !strings.Contains(body, `"nats":"ok"`) {
			return fmt.Errorf("readyz %d: %s", code, body)
		}
		return nil
	})
	code, body, err := get("http://" + dash + "/login")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	code, body, err = get("http://" + probes + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "sessionmon_build_info")
	require.Contains(t, body, `sessionmon_dashboard_requests_total{code="200",route="/login"} 1`, "the dashboard's own metrics")
	code, _, err = get("http://" + probes + "/login")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, code, "no dashboard on metrics-addr")
	_, body, err = get("http://" + dash + "/readyz")
	require.NoError(t, err)
	require.NotContains(t, body, `"checks"`, "no probes on dashboard-addr")
}
