package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/health"
)

// ingestOptions are the flags of the subcommands that run the ingest worker.
var ingestOptions = append(clickhouseOptions[:len(clickhouseOptions):len(clickhouseOptions)],
	"ingest-batch-size", "ingest-batch-age", "ingest-max-ack-pending", "ingest-ack-wait",
	"dlq-max-age",
)

func ingestCommand() *command {
	return &command{
		name:  "ingest",
		short: "run the ingest worker alone (events into ClickHouse)",
		usage: "sessionmon ingest [options]",
		summary: `Run the ingest worker alone: move events from the SESSIONMON_EVENTS stream into
ClickHouse (batched, acknowledged only after ClickHouse confirmed the write),
send events that fail schema v1 or carry raw personal data to SESSIONMON_DLQ,
and serve /metrics, /healthz and /readyz. Run any number of them against one
NATS: they share the work. Needs --nats-url (or the embedded server of a
running 'sessionmon serve' on --nats-listen).`,
		options: join(sharedOptions, natsOptions, []string{"nats-listen", "http-addr"}, ingestOptions, geoOptions, secretOptions),
		run:     runIngest,
	}
}

func runIngest(ctx context.Context, e *env) error {
	cfg := *e.cfg
	cfg.NATS.URL = cfg.NATS.ClientURL()
	st, err := startNATS(ctx, &cfg, "sessionmon-ingest", false, e.logger)
	if err != nil {
		return err
	}
	defer st.close()
	checks := health.NewRegistry()
	addNATSChecks(checks, st)
	reg := newRegistry()
	resolver, err := openGeo(e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer resolver.Close()
	svc, err := newIngest(e.cfg, st.js, e.logger, reg, resolver)
	if err != nil {
		return err
	}
	checks.Add("ingest", svc.Ready)

	g, gctx := errgroup.WithContext(ctx)
	if err := serveHTTP(gctx, g, e.cfg.HTTPAddr, checks, reg, e.logger); err != nil {
		return err
	}
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return applyRetentionTTL(gctx, e.cfg, e.logger) })
	return g.Wait()
}

// newIngest builds the ingest worker from the configuration; resolver
// (nil: none) enriches the events it stores.
func newIngest(cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer, resolver *geo.Resolver) (*ingest.Service, error) {
	ic := ingest.DefaultConfig()
	ic.BatchSize = cfg.Ingest.BatchSize
	ic.BatchAge = cfg.Ingest.BatchAge
	ic.MaxAckPending = cfg.Ingest.MaxAckPending
	ic.AckWait = cfg.Ingest.AckWait
	ic.DLQMaxAge = cfg.DLQ.MaxAge
	storeOpts, err := storeOptions(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := ingest.New(js, cfg.ClickHouseURL(), ic, ingest.WithLogger(logger), ingest.WithGeo(resolver),
		ingest.WithMetrics(ingest.NewMetrics(reg)), ingest.WithStoreOptions(storeOpts...))
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return svc, nil
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveHTTP serves /healthz, /readyz and /metrics on addr inside g until
// ctx ends.
func serveHTTP(ctx context.Context, g *errgroup.Group, addr string, checks *health.Registry, reg *prometheus.Registry, logger *slog.Logger) error {
	mux := http.NewServeMux()
	checks.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	logger.Info("http listening", slog.String("http_addr", ln.Addr().String()))
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return nil
}
