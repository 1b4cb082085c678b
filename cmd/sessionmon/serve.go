package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/retention"
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
retention job (the retention: section; one process at a time runs it), the
dashboard and the HTTP intake (POST /v1/events, for apps with an intake
token: 'sessionmon creds app NAME --http') on --dashboard-addr, and
/metrics, /healthz and /readyz on --metrics-addr (loopback by default;
the same address as --dashboard-addr serves all of them on one server).
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
		options: join(sharedOptions, natsOptions, streamOptions, []string{
			"dlq-max-age", "detect-snapshot-interval", "detect-lease-ttl", "metrics-addr", "http-addr", "pprof-addr", "intake-max-in-flight", "demo", "demo-users", "demo-rate", "demo-duration", "demo-seed",
		}, ingestOptions, geoOptions, dashboardOptions, secretOptions),
		run: runServe,
	}
}

// secretOptions are read from the environment or the config file only.
var secretOptions = []string{"nats-token", "nats-password", "clickhouse-password"}

func runServe(ctx context.Context, e *env) error {
	cfg, logger := e.cfg, e.logger
	st, err := startNATS(ctx, cfg, "sessionmon-serve", true, logger)
	if err != nil {
		return err
	}
	defer st.close()

	checks, reg := st.probes()
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
	alerts, err := newAlertWriter(cfg, st.js, logger, reg)
	if err != nil {
		return err
	}
	checks.Add("ingest", readyBoth(svc, alerts))
	if err := ensureReplicated(ctx, cfg, st.js); err != nil {
		return err
	}
	det, err := newDetect(cfg, st.js, logger, reg, resolver)
	if err != nil {
		return err
	}
	checks.Add("detect", det.Ready)
	if err := detect.ServeForget(st.nc, det, logger); err != nil {
		return err
	}
	notifier, err := newNotifier(ctx, cfg, st.js, logger, reg)
	if err != nil {
		return err
	}
	defer notifier.close()
	if notifier.enabled() {
		checks.Add("notify", notifier.Ready)
	}

	ret, err := newRetention(cfg, st, logger, reg)
	if err != nil {
		return err
	}

	intakeHandler, err := newIntake(ctx, cfg, st, logger, reg)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	// The dashboard starts once ingest has ClickHouse up and migrated.
	if err := serveHTTPAndDashboard(gctx, g, cfg, st, svc.Ready, notifier.Notifier, intakeHandler, checks, reg, logger); err != nil {
		return err
	}
	if cfg.Serve.PprofAddr != "" {
		if _, err := serveHandler(gctx, g, cfg.Serve.PprofAddr, pprofHandler(), nil, sharedTimeouts, logger.With("component", "pprof")); err != nil {
			return err
		}
	}
	logger.Info("sessionmon serving", slog.Bool("demo", cfg.Serve.Demo), slog.String("nats", st.nc.ConnectedUrlRedacted()))
	// Ingest stops first (pipeline order): it flushes and acks what it
	// holds while NATS is still up; the deferred st.close runs after.
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	g.Go(func() error { return det.Run(gctx) })
	// The scheduled retention job; erasure requests left pending or
	// running (a restart) are resumed.
	g.Go(func() error { return ret.Run(gctx) })
	if notifier.enabled() {
		g.Go(func() error { return notifier.Run(gctx) })
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
// bucket of sessionmon with stream-replicas copies (natsconn.EnsureTopology),
// before a component declares one with what it knows (they never lower the
// count, see natsconn.ReplicasFor).
func ensureReplicated(ctx context.Context, cfg *config.Config, js jetstream.JetStream) error {
	return natsconn.EnsureTopology(ctx, js, natsconn.TopologyConfig{
		Alerts:     natsconn.DefaultAlertStreamConfig,
		DLQMaxAge:  cfg.DLQ.MaxAge,
		LockTTL:    retention.LockTTL,
		SessionTTL: dashboard.DefaultAbsoluteTimeout,
		Replicas:   cfg.Stream.Replicas,
	})
}
