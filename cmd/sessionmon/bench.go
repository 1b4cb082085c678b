package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// benchDatabase is the ClickHouse database the benchmark fills and drops.
const benchDatabase = "sessionmon_bench"

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
report each stage alone. scripts/bench-ingest.sh runs it next to the
machine's limits. bench dashboard seeds the database sessionmon_bench_dashboard
with N events (and N/100 alerts, or SESSIONMON_BENCH_ALERTS) and reports the
p50/p95/max latency of the dashboard's pages (scripts/bench-dashboard.sh).`,
		options: join([]string{"log-format", "log-level", "events", "sequential", "ingest-batch-size", "ingest-batch-age", "ingest-max-ack-pending"}, natsOptions, clickhouseOptions, secretOptions),
		run:     runBench,
	}
}

func runBench(ctx context.Context, e *env) error {
	if len(e.args) == 1 && e.args[0] == "dashboard" {
		return runBenchDashboard(ctx, e)
	}
	if len(e.args) != 1 || e.args[0] != "ingest" {
		return errors.New("usage: sessionmon bench ingest|dashboard [--events N]")
	}
	cfg := *e.cfg
	dsn, err := url.Parse(cfg.ClickHouseURL())
	if err != nil {
		return fmt.Errorf("clickhouse dsn: %w", err)
	}
	dsn.Path = "/" + benchDatabase
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

	store, err := chstore.Open(ctx, cfg.ClickHouseURL(), quiet)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.DropDatabase(ctx); err != nil {
		return err
	}
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}

	st, err := startNATS(ctx, &cfg, "sessionmon-bench", true, quiet)
	if err != nil {
		return err
	}
	defer st.close()
	if info, err := mustInfo(ctx, st); err != nil {
		return err
	} else if info.State.Msgs > 0 {
		return fmt.Errorf("the benchmark needs an empty %s stream (it has %d events): use a fresh NATS server", schemas.EventStream, info.State.Msgs)
	}

	n := cfg.Bench.Events
	fmt.Fprintf(e.stdout, "generating %d events of demo traffic...\n", n)
	events := benchEvents(n)
	var size int
	for i := range events[:min(n, 10000)] {
		b, err := schemas.Encode(events[i].Schema(demo.App))
		if err != nil {
			return err
		}
		size += len(b)
	}
	fmt.Fprintf(e.stdout, "average event size: %d bytes\n", size/min(n, 10000))

	svc, err := newIngest(&cfg, st.js, quiet, nil, nil)
	if err != nil {
		return err
	}
	client, err := sdk.NewClient(st.nc, sdk.WithApp(demo.App), sdk.WithAsyncBuffer(65536), sdk.WithAsyncWindow(4096),
		sdk.WithBlockOnFull(time.Minute), sdk.WithLogger(quiet))
	if err != nil {
		return err
	}

	// SESSIONMON_BENCH_CPUPROFILE=FILE writes a CPU profile of the run.
	if path := os.Getenv("SESSIONMON_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(rctx)
	publish := func(ctx context.Context) error {
		for i := range events {
			if err := client.PublishAsync(ctx, &events[i]); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		if err := client.Close(ctx); err != nil {
			return fmt.Errorf("close publisher: %w", err)
		}
		return nil
	}

	// Stage by stage first: publishing alone, then ingest alone from the
	// full stream; then the pipeline as apps see it, both at once.
	start := time.Now()
	var published, ingestStart, stored time.Duration
	if e.cfg.Bench.Sequential {
		if err := publish(ctx); err != nil {
			return err
		}
		published = time.Since(start)
		ingestStart = published
	} else {
		g.Go(func() error {
			if err := publish(gctx); err != nil {
				return err
			}
			published = time.Since(start)
			return nil
		})
	}
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error {
		defer stop()
		return waitStored(gctx, store, uint64(n), start, e, &stored)
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if stored == 0 {
		return ctx.Err()
	}
	distinct, err := store.CountEvents(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "published %d events in %s: %.0f events/s (SDK async -> JetStream)\n", n, published.Round(time.Millisecond), float64(n)/published.Seconds())
	if e.cfg.Bench.Sequential {
		ingested := stored - ingestStart
		fmt.Fprintf(e.stdout, "ingest alone: %d events from the stream into ClickHouse in %s: %.0f events/s\n", n, ingested.Round(time.Millisecond), float64(n)/ingested.Seconds())
	}
	fmt.Fprintf(e.stdout, "end to end: %d events queryable in ClickHouse %s after the first publish: %.0f events/s\n", n, stored.Round(time.Millisecond), float64(n)/stored.Seconds())
	fmt.Fprintf(e.stdout, "exactly once: %d distinct events seen by queries (FINAL) of %d published\n", distinct, n)
	if distinct != uint64(n) {
		return fmt.Errorf("%d events stored, %d published", distinct, n)
	}
	return nil
}

func mustInfo(ctx context.Context, st *natsStack) (*jetstream.StreamInfo, error) {
	s, err := st.js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	return s.Info(ctx)
}

// benchEvents returns n events of demo traffic with fixed ids.
func benchEvents(n int) []sdk.Event {
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	if err != nil {
		panic(err) // the demo key is valid by construction
	}
	var out []sdk.Event
	for seed := int64(1); len(out) < n; seed++ {
		out = append(out, demo.Generate(p, demo.Options{Users: n / 25, Seed: seed, End: time.Now()})...)
	}
	out = out[:n]
	for i := range out {
		out[i].ID = fmt.Sprintf("bench-%d", i)
	}
	return out
}

// waitStored polls ClickHouse until n rows are stored, printing progress.
func waitStored(ctx context.Context, store *chstore.Store, n uint64, start time.Time, e *env, stored *time.Duration) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		rows, err := store.CountRows(ctx)
		if err != nil {
			return err
		}
		if rows >= n {
			// Redelivered copies count in rows: done only when the
			// deduplicated count is complete too.
			distinct, err := store.CountEvents(ctx)
			if err != nil {
				return err
			}
			if distinct >= n {
				*stored = time.Since(start)
				return nil
			}
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stdout, "  %d/%d rows stored (%.0f events/s so far)\n", rows, n, float64(rows)/time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
