// Package bench measures sessionmon: the ingest pipeline end to end
// (Ingest), the dashboard over a seeded database (Dashboard) and
// publish-to-alert latency under load (MeasureLatency, whose load
// generator publishes demo traffic through the SDK). The bench
// subcommand and the tests run them; they report, they do not judge.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// IngestDatabase is the ClickHouse database the ingest benchmark fills and
// drops.
const IngestDatabase = "sessionmon_bench"

// IngestConfig shapes an Ingest run.
type IngestConfig struct {
	// Events is how many events are published.
	Events int
	// Sequential publishes everything first and then starts ingest, to
	// report each stage alone.
	Sequential bool
	// SingleEvent publishes one event per message (the SDK's batching
	// off); by default the SDK packs events into batched messages.
	SingleEvent bool
	// CPUProfile, when set, is the file a CPU profile of the run is
	// written to; AllocProfile, the file its allocation profile is
	// written to at the end.
	CPUProfile, AllocProfile string
}

// Runner is a worker that runs until ctx ends (ingest.Service).
type Runner interface {
	Run(ctx context.Context) error
}

// Ingest measures the ingest pipeline end to end: it publishes
// cfg.Events realistic events (demo traffic) through the SDK on js's
// connection while worker (an ingest worker consuming js's events stream
// into store) runs, and reports to out events/s from the first publish
// until every event is queryable in store, and that each is stored
// exactly once. It drops and migrates store's database first; the events
// stream must be empty. logger is the SDK's.
func Ingest(ctx context.Context, out io.Writer, store *chstore.Store, js jetstream.JetStream, worker Runner, cfg IngestConfig, logger *slog.Logger) error {
	if err := resetDatabase(ctx, store); err != nil {
		return err
	}
	if info, err := eventStreamInfo(ctx, js); err != nil {
		return err
	} else if info.State.Msgs > 0 {
		return fmt.Errorf("the benchmark needs an empty %s stream (it has %d events): use a fresh NATS server", schemas.EventStream, info.State.Msgs)
	}

	n := cfg.Events
	fmt.Fprintf(out, "generating %d events of demo traffic...\n", n)
	events := demoEvents(n)
	var size int
	for i := range events[:min(n, 10000)] {
		b, err := events[i].MarshalJSONFor(demo.App)
		if err != nil {
			return err
		}
		size += len(b)
	}
	fmt.Fprintf(out, "average event size: %d bytes\n", size/min(n, 10000))
	held := holdEvents(events)
	events = nil
	runtime.GC() // the generator's garbage, before the clock starts

	opts := []sdk.Option{sdk.WithApp(demo.App), sdk.WithAsyncBuffer(65536), sdk.WithBlockOnFull(time.Minute), sdk.WithLogger(logger)}
	if cfg.SingleEvent {
		opts = append(opts, sdk.WithoutBatching(), sdk.WithAsyncWindow(4096))
	} else {
		// The ingest worker answers publishers' layout requests; before
		// it starts (--sequential), this does.
		stopLayout, err := natsconn.ServeLayout(ctx, js.Conn(), js, logger)
		if err != nil {
			return err
		}
		defer stopLayout()
	}
	client, err := sdk.NewClient(js.Conn(), opts...)
	if err != nil {
		return err
	}
	if !cfg.SingleEvent {
		if err := waitBatching(ctx, client); err != nil {
			return err
		}
	}

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
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
		var r rebuilt
		for i := range held.len() {
			if err := client.PublishAsync(ctx, held.event(i, &r)); err != nil {
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
	if cfg.Sequential {
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
	g.Go(func() error { return worker.Run(gctx) })
	g.Go(func() error {
		defer stop()
		return waitStored(gctx, out, store, uint64(n), start, &stored)
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if stored == 0 {
		return ctx.Err()
	}
	if cfg.AllocProfile != "" {
		if err := writeAllocProfile(cfg.AllocProfile); err != nil {
			return err
		}
	}
	distinct, err := store.CountEvents(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d events in %s: %.0f events/s (SDK async -> JetStream)\n", n, published.Round(time.Millisecond), float64(n)/published.Seconds())
	if info, err := eventStreamInfo(ctx, js); err == nil {
		fmt.Fprintf(out, "stream: %d messages for %d events: %.1f events per message\n", info.State.Msgs, n, float64(n)/float64(max(info.State.Msgs, 1)))
	}
	if cfg.Sequential {
		ingested := stored - ingestStart
		fmt.Fprintf(out, "ingest alone: %d events from the stream into ClickHouse in %s: %.0f events/s\n", n, ingested.Round(time.Millisecond), float64(n)/ingested.Seconds())
	}
	fmt.Fprintf(out, "end to end: %d events queryable in ClickHouse %s after the first publish: %.0f events/s\n", n, stored.Round(time.Millisecond), float64(n)/stored.Seconds())
	fmt.Fprintf(out, "exactly once: %d distinct events seen by queries (FINAL) of %d published\n", distinct, n)
	if distinct != uint64(n) {
		return fmt.Errorf("%d events stored, %d published", distinct, n)
	}
	return nil
}

// writeAllocProfile writes the allocations made so far to file.
func writeAllocProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("allocation profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("allocation profile: %w", err)
	}
	return f.Close()
}

// waitBatching waits until client batches: it has the layout answer.
func waitBatching(ctx context.Context, client *sdk.Client) error {
	deadline := time.Now().Add(5 * time.Second)
	for !client.Batching() {
		if time.Now().After(deadline) {
			return errors.New("the SDK got no layout answer in 5s, so it would not batch")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// resetDatabase drops store's database and migrates it afresh.
func resetDatabase(ctx context.Context, store *chstore.Store) error {
	if err := store.DropDatabase(ctx); err != nil {
		return err
	}
	_, err := store.Migrate(ctx)
	return err
}

func eventStreamInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	return s.Info(ctx)
}

// demoEvents returns n events of demo traffic with fixed ids.
func demoEvents(n int) []sdk.Event {
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
func waitStored(ctx context.Context, out io.Writer, store *chstore.Store, n uint64, start time.Time, stored *time.Duration) error {
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
			fmt.Fprintf(out, "  %d/%d rows stored (%.0f events/s so far)\n", rows, n, float64(rows)/time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
