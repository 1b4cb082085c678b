package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/sessionmon/sessionmon/internal/bench"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/logging"
)

func benchCommand() *command {
	return &command{
		name:  "bench",
		short: "measure ingest end to end (bench ingest) or the dashboard (bench dashboard)",
		usage: "sessionmon bench ingest|dashboard [--events N] [options]",
		summary: `Measure the ingest pipeline end to end: publish N realistic events (demo
traffic) through the SDK while an ingest worker runs, and report events/s
from the first publish until every event is queryable in ClickHouse (and
that each is stored exactly once). It uses a fresh embedded NATS server in a
temporary directory (or --nats-url) and the ClickHouse database
sessionmon_bench on --clickhouse-dsn, which it drops first.
With --sequential it publishes everything first and then starts ingest, to
report each stage alone. The SDK packs events into batched messages (its
default); --single-event publishes one event per message instead, to
compare. scripts/bench-ingest.sh runs it next to the
machine's limits. bench dashboard seeds the database sessionmon_bench_dashboard
with N events (and N/100 alerts, or SESSIONMON_BENCH_ALERTS) and reports the
p50/p95/max latency of the dashboard's pages (scripts/bench-dashboard.sh).`,
		options: join([]string{"log-format", "log-level", "events", "sequential", "single-event", "ingest-batch-size", "ingest-batch-age", "ingest-max-ack-pending"}, natsOptions, clickhouseOptions, secretOptions),
		words:   true,
		run:     runBench,
	}
}

func runBench(ctx context.Context, e *env) error {
	if len(e.args) == 1 && e.args[0] == "dashboard" {
		return runBenchDashboard(ctx, e)
	}
	if len(e.args) != 1 || e.args[0] != "ingest" {
		return wantWord(e.args, "ingest", "dashboard")
	}
	cfg := *e.cfg
	dsn, err := url.Parse(cfg.ClickHouseURL())
	if err != nil {
		return fmt.Errorf("clickhouse dsn: %w", err)
	}
	dsn.Path = "/" + bench.IngestDatabase
	cfg.ClickHouseDSN, cfg.ClickHousePassword = dsn.String(), ""
	if cfg.NATS.Embedded() {
		dir, err := os.MkdirTemp("", "sessionmon-bench-")
		if err != nil {
			return fmt.Errorf("bench data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
		cfg.NATS.Listen = "127.0.0.1:0"
	}
	// The benchmark's own components log warnings only.
	quiet, _ := logging.New(e.stderr, cfg.LogFormat, slog.LevelWarn)

	store, err := chstore.Connect(ctx, cfg.ClickHouseURL(), quiet, chstore.ConnectConfig{})
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := startNATS(ctx, &cfg, "sessionmon-bench", true, quiet)
	if err != nil {
		return err
	}
	defer st.close()
	svc, err := newIngest(&cfg, st.js, quiet, nil, nil)
	if err != nil {
		return err
	}
	return bench.Ingest(ctx, e.stdout, store, st.js, svc, bench.IngestConfig{
		Events: cfg.Bench.Events, Sequential: cfg.Bench.Sequential, SingleEvent: cfg.Bench.SingleEvent,
		// SESSIONMON_BENCH_CPUPROFILE=FILE writes a CPU profile of the
		// run, SESSIONMON_BENCH_ALLOCPROFILE=FILE its allocations.
		CPUProfile:   os.Getenv("SESSIONMON_BENCH_CPUPROFILE"),
		AllocProfile: os.Getenv("SESSIONMON_BENCH_ALLOCPROFILE"),
	}, quiet)
}
