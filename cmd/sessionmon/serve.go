package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/alert"
	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// shutdownTimeout bounds each step of a graceful shutdown.
const shutdownTimeout = 10 * time.Second

func serveCommand() *command {
	return &command{
		name:  "serve",
		short: "run the whole pipeline (NATS, ingest, detect, notify, HTTP)",
		usage: "sessionmon serve [options]",
		summary: `Run the pipeline: NATS JetStream (embedded unless --nats-url is given) with the
SESSIONMON_EVENTS stream, the ingest worker (events into ClickHouse; it waits
for ClickHouse if it is not up yet, while NATS keeps the backlog), the
detectors (alerts to SESSIONMON_ALERTS and ClickHouse), the webhook notifier
(when the config file's notify: section has webhooks), the scheduled
retention job (the retention: section; one process at a time runs it), and
the HTTP server with /metrics, /healthz and /readyz.
With --demo it also publishes synthetic traffic, as 'sessionmon demo' does.
With --pprof-addr (a loopback address) it serves Go's profiles
(/debug/pprof/, e.g. go tool pprof http://127.0.0.1:6060/debug/pprof/heap)
on a separate listener, never on the metrics one.

The embedded NATS server accepts only clients with credentials. On its
first start serve writes, in <data-dir>/nats/ (mode 0700; keys in keys/):
  admin.creds       everything (the nats CLI: nats --creds FILE, and
                    sessionmon's commands, which find it by themselves)
  sessionmon.creds  what sessionmon's own processes need
  app.creds         for applications: publish sessionmon.events.> and get
                    the acknowledgements on the inbox prefix _APPS_INBOX
                    (sdk.WithInboxPrefix), nothing else
Later starts reuse the keys, so these files stay valid. Mint per-app
credentials with 'sessionmon creds app NAME'. --nats-listen is loopback
unless --nats-listen-tls-cert and --nats-listen-tls-key are set.`,
		options: join(sharedOptions, natsOptions, []string{
			"nats-listen", "nats-listen-tls-cert", "nats-listen-tls-key", "stream-max-age", "stream-duplicates", "stream-max-bytes", "stream-replicas", "event-partitions",
			"detect-snapshot-interval", "http-addr", "pprof-addr", "demo", "demo-users", "demo-rate", "demo-duration", "demo-seed",
		}, ingestOptions, geoOptions, dashboardOptions, secretOptions),
		run: runServe,
	}
}

// secretOptions are read from the environment or the config file only.
var secretOptions = []string{"nats-token", "nats-password", "clickhouse-password"}

// natsStack is a connection to NATS, and the embedded server when sessionmon
// runs its own.
type natsStack struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startNATS starts the embedded server when no URL is configured, connects,
// and declares the events stream: its owner (serve) creates or updates it,
// other commands only create it when it is missing.
func startNATS(ctx context.Context, cfg *config.Config, name string, owner bool, logger *slog.Logger) (*natsStack, error) {
	st := &natsStack{}
	url, ncfg := cfg.NATS.URL, cfg.NATS
	var extra []nats.Option
	if cfg.NATS.Embedded() {
		srv, err := natsconn.StartEmbedded(cfg.NATS, cfg.DataDir, logger)
		if err != nil {
			return nil, err
		}
		st.srv = srv
		// sessionmon's own components connect in process, as the service
		// user (never the admin), with no TLS or network in between: the
		// URL is not dialed, and nats:// keeps the client from TLS.
		url = "nats://" + cfg.NATS.Listen
		ncfg = config.NATS{CredsFile: natsauth.CredsFile(natsauth.Dir(cfg.DataDir), natsauth.ServiceUser)}
		extra = append(extra, nats.InProcessServer(srv))
		logger.Info("embedded nats started", slog.String("listen", cfg.NATS.Listen), slog.String("data_dir", cfg.DataDir),
			slog.String("credentials_dir", natsauth.Dir(cfg.DataDir)))
	}
	nc, err := natsconn.Connect(url, ncfg, name, logger, extra...)
	if err != nil {
		st.close()
		return nil, err
	}
	st.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	st.js = js
	// Only serve owns the stream's limits; a worker started alone creates
	// the stream when it is missing but never changes an existing one.
	if !owner {
		if _, err := js.Stream(ctx, schemas.EventStream); err == nil {
			return st, nil
		}
	}
	if _, err := natsconn.EnsureEventStream(ctx, js, natsconn.StreamConfig{
		MaxAge:     cfg.Stream.MaxAge,
		Duplicates: cfg.Stream.Duplicates,
		MaxBytes:   cfg.Stream.MaxBytes,
		Replicas:   cfg.Stream.Replicas,
		Partitions: cfg.Stream.Partitions,
	}); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// close drains the connection, then stops the embedded server.
func (st *natsStack) close() {
	if st.nc != nil {
		if err := st.nc.Drain(); err != nil {
			st.nc.Close()
		}
		deadline := time.Now().Add(shutdownTimeout)
		for !st.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if st.srv != nil {
		st.srv.Shutdown()
		st.srv.WaitForShutdown()
	}
}

// addNATSChecks adds the readiness checks of the NATS connection and the
// events stream.
func addNATSChecks(checks *health.Registry, st *natsStack) {
	checks.Add("nats", func(context.Context) error {
		if s := st.nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", s)
		}
		return nil
	})
	checks.Add("events_stream", func(ctx context.Context) error {
		_, err := st.js.Stream(ctx, schemas.EventStream)
		return err
	})
}

func runServe(ctx context.Context, e *env) error {
	cfg, logger := e.cfg, e.logger
	st, err := startNATS(ctx, cfg, "sessionmon-serve", true, logger)
	if err != nil {
		return err
	}
	defer st.close()

	checks := health.NewRegistry()
	addNATSChecks(checks, st)
	reg := newRegistry()
	// One resolver, and one cache, for ingest and the detectors: both
	// enrich every event the same way.
	resolver, err := openGeo(cfg, logger)
	if err != nil {
		return err
	}
	defer resolver.Close()
	svc, err := newIngest(cfg, st.js, logger, reg, resolver)
	if err != nil {
		return err
	}
	checks.Add("ingest", svc.Ready)
	if err := ensureReplicated(ctx, cfg, st.js); err != nil {
		return err
	}
	det, err := newDetect(cfg, st.js, logger, reg, resolver)
	if err != nil {
		return err
	}
	checks.Add("detect", det.Ready)
	if err := serveForget(st.nc, det, logger); err != nil {
		return err
	}
	notify, err := newNotifier(ctx, cfg, st.js, logger, reg)
	if err != nil {
		return err
	}
	defer notify.close()
	if notify.enabled() {
		checks.Add("notify", notify.Ready)
	}

	retentionCron, err := newRetentionCron(cfg, st.js, logger, reg)
	if err != nil {
		return err
	}
	retentionCron.Start()
	// The scheduler stops first, and waits for a running job.
	defer func() { <-retentionCron.Stop().Done() }()

	g, gctx := errgroup.WithContext(ctx)
	// The dashboard starts once ingest has ClickHouse up and migrated.
	if err := serveHTTPAndDashboard(gctx, g, cfg, st, svc.Ready, notify.Notifier, checks, reg, logger); err != nil {
		return err
	}
	if cfg.Serve.PprofAddr != "" {
		if _, err := serveHandler(gctx, g, cfg.Serve.PprofAddr, pprofHandler(), logger.With("component", "pprof")); err != nil {
			return err
		}
	}
	logger.Info("sessionmon serving", slog.Bool("demo", cfg.Serve.Demo), slog.String("nats", st.nc.ConnectedUrlRedacted()))
	// Ingest stops first (pipeline order): it flushes and acks what it
	// holds while NATS is still up; the deferred st.close runs after.
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return det.Run(gctx) })
	// Erasure requests left pending or running (a restart) are resumed.
	g.Go(func() error { return runErasures(gctx, cfg, st.nc, st.js, logger) })
	if notify.enabled() {
		g.Go(func() error { return notify.Run(gctx) })
	}
	if cfg.Serve.Demo {
		g.Go(func() error {
			return runDemoTraffic(gctx, st.nc, cfg.Demo, resolver, e.stdout, logger)
		})
	}
	err = g.Wait()
	logger.Info("sessionmon stopped")
	return err
}

// pprofHandler serves net/http/pprof's profiles under /debug/pprof/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// ensureReplicated declares, besides the events stream, every stream and
// bucket of sessionmon with stream-replicas copies, before a component
// declares one with what it knows (they never lower the count, see
// natsconn.ReplicasFor): the alerts stream (created or updated to its
// limits, as serve owns it), the detectors' state snapshots, the dead
// letters, the notifier's redelivery stream and undeliverable alerts, the
// job locks, and the dashboard's sessions and API tokens.
func ensureReplicated(ctx context.Context, cfg *config.Config, js jetstream.JetStream) error {
	r := cfg.Stream.Replicas
	ac := detect.DefaultServiceConfig().Alerts
	ac.Replicas = r
	if _, err := detect.EnsureAlertStream(ctx, js, ac); err != nil {
		return err
	}
	if _, err := detect.EnsureStateBucket(ctx, js, r); err != nil {
		return err
	}
	if _, err := ingest.EnsureDLQStream(ctx, js, cfg.DLQ.MaxAge, r); err != nil {
		return err
	}
	if _, _, err := alert.EnsureState(ctx, js, r); err != nil {
		return err
	}
	if _, err := natsconn.EnsureLockBucket(ctx, js, erasureLockTTL, r); err != nil {
		return err
	}
	return dashboard.EnsureBuckets(ctx, js, r)
}
