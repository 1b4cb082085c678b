package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"

	"github.com/sessionmon/sessionmon/internal/bench"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/logging"
)

// benchDashboardAlerts returns the number of alerts to seed: the
// SESSIONMON_BENCH_ALERTS environment variable, else one per 100 events.
func benchDashboardAlerts(events int) (int, error) {
	v := os.Getenv("SESSIONMON_BENCH_ALERTS")
	if v == "" {
		return max(events/100, 1), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SESSIONMON_BENCH_ALERTS: %q: must be a number of alerts, at least 0", v)
	}
	return n, nil
}

// runBenchDashboard seeds a fresh database and measures the dashboard's
// queries and pages (bench.Dashboard).
func runBenchDashboard(ctx context.Context, e *env) error {
	cfg := *e.cfg
	dsn, err := url.Parse(cfg.ClickHouseURL())
	if err != nil {
		return fmt.Errorf("clickhouse dsn: %w", err)
	}
	dsn.Path = "/" + bench.DashboardDatabase
	quiet, _ := logging.New(e.stderr, cfg.LogFormat, slog.LevelWarn)
	store, err := chstore.Connect(ctx, dsn.String(), quiet, chstore.ConnectConfig{})
	if err != nil {
		return err
	}
	defer store.Close()
	alerts, err := benchDashboardAlerts(cfg.Bench.Events)
	if err != nil {
		return err
	}
	// The dashboard keeps its sessions in JetStream: a throw-away
	// embedded server (or --nats-url's).
	if cfg.NATS.Embedded() {
		dir, err := os.MkdirTemp("", "sessionmon-bench-dashboard-")
		if err != nil {
			return fmt.Errorf("bench data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.DataDir, cfg.NATS.Listen = dir, "127.0.0.1:0"
	}
	st, err := startNATS(ctx, &cfg, "sessionmon-bench-dashboard", true, quiet)
	if err != nil {
		return err
	}
	defer st.close()
	return bench.Dashboard(ctx, e.stdout, store, st.js, bench.DashboardConfig{
		Events: cfg.Bench.Events, Alerts: alerts, Reuse: os.Getenv("SESSIONMON_BENCH_REUSE") != "", DLQMaxAge: cfg.DLQ.MaxAge,
	}, quiet)
}
