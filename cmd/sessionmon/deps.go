package main

// Helpers shared by several subcommands: they build services and their
// dependencies from the configuration; the services own their loops.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// newDetect builds the live detection service from the configuration.
func newDetect(cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer, resolver *geo.Resolver) (*detect.Service, error) {
	dc, err := loadDetectConfig(cfg, logger)
	if err != nil {
		return nil, err
	}
	sc := detect.DefaultServiceConfig()
	sc.Partitions = detect.Partitions{Count: cfg.Stream.Partitions, Owned: cfg.Detect.Partitions, SourceDetectors: cfg.Detect.SourceDetectors}
	// serve and a detect process alone both take stream-replicas; a
	// worker keeps the replicas of a stream that exists.
	sc.Alerts.Replicas = cfg.Stream.Replicas
	sc.Snapshots.Replicas, sc.Snapshots.Interval = cfg.Stream.Replicas, cfg.Detect.SnapshotInterval
	sc.LeaseTTL = cfg.Detect.LeaseTTL
	svc, err := detect.NewService(js, sc, dc,
		detect.WithLogger(logger), detect.WithMetrics(detect.NewMetrics(reg)),
		detect.WithEngineOptions(detect.WithGeo(resolver)))
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	return svc, nil
}

// ensureAlertStream declares SESSIONMON_ALERTS, which detect writes and the
// notifier and the alerts writer read, before either starts: its owner (serve) creates or
// updates it, other commands only create it when it is missing.
func ensureAlertStream(ctx context.Context, js jetstream.JetStream, owner bool) error {
	if !owner {
		if _, err := js.Stream(ctx, schemas.AlertStream); err == nil {
			return nil
		}
	}
	_, err := natsconn.EnsureAlertStream(ctx, js, natsconn.DefaultAlertStreamConfig)
	return err
}

// notifier is the webhook notifier with what it holds open; Notifier is nil
// when no webhook is configured.
type notifier struct {
	*notify.Notifier
	store *chstore.Store
}

func (n *notifier) enabled() bool { return n.Notifier != nil }

func (n *notifier) close() {
	if n.store != nil {
		n.store.Close()
	}
}

// newNotifier builds the webhook notifier from the notify: section of the
// config file; it is disabled when no webhook is configured. Delivery
// attempts are logged to ClickHouse when it is reachable at start.
func newNotifier(ctx context.Context, cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer) (*notifier, error) {
	nc, err := parseNotify(cfg)
	if err != nil {
		return nil, err
	}
	n := &notifier{}
	if len(nc.Webhooks) == 0 {
		return n, nil
	}
	opts := []notify.Option{notify.WithLogger(logger), notify.WithMetrics(notify.NewMetrics(reg))}
	if store, err := chstore.Connect(ctx, cfg.ClickHouseURL(), logger, chstore.ConnectConfig{}); err != nil {
		logger.Warn("webhook delivery log disabled: clickhouse not reachable at start", slog.Any("error", err))
	} else {
		n.store = store
		opts = append(opts, notify.WithDeliveryLog(store))
	}
	an, err := notify.New(js, nc, opts...)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("notify: %w", err)
	}
	n.Notifier = an
	logger.Info("webhooks configured", slog.Int("webhooks", len(nc.Webhooks)))
	return n, nil
}

// checkStreamLimits refuses a configuration whose streams keep data longer
// than its retention periods: the copies in NATS are personal data too.
func checkStreamLimits(cfg *config.Config, rc retention.Config) error {
	var errs []error
	if p := time.Duration(rc.Periods[retention.DataSetEvents]); cfg.Stream.MaxAge == 0 || cfg.Stream.MaxAge > p {
		errs = append(errs, fmt.Errorf("%s (%s) keeps events in NATS longer than retention.periods.events (%s)",
			"stream-max-age", config.EnvName("stream-max-age"), retention.Period(p)))
	}
	if p := time.Duration(rc.Periods[retention.DataSetDeadLetters]); cfg.DLQ.MaxAge > p {
		errs = append(errs, fmt.Errorf("%s (%s) keeps dead letters longer than retention.periods.dead_letters (%s)",
			"dlq-max-age", config.EnvName("dlq-max-age"), retention.Period(p)))
	}
	if p := time.Duration(rc.Periods[retention.DataSetAlerts]); natsconn.DefaultAlertStreamConfig.MaxAge > p {
		errs = append(errs, fmt.Errorf("the alerts stream keeps alerts %s, longer than retention.periods.alerts (%s)",
			retention.Period(natsconn.DefaultAlertStreamConfig.MaxAge), retention.Period(p)))
	}
	return errors.Join(errs...)
}

// clusterOption passes --clickhouse-cluster to a store that migrates or
// mutates (retention, erasure): with a cluster, the schema is replicated
// and sharded, and mutations go to the shards' local tables.
func clusterOption(cfg *config.Config) chstore.Option {
	return chstore.WithCluster(cfg.ClickHouseCluster)
}

// holdLock takes the NATS KV lock name over nc (natsconn.TryLock). The
// returned release also closes nc; on an error nc is closed at once.
func holdLock(ctx context.Context, nc *nats.Conn, name string, ttl time.Duration) (func(), error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s lock: %w", name, err)
	}
	release, err := natsconn.TryLock(ctx, js, name, ttl)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return func() {
		release()
		nc.Close()
	}, nil
}

// storeOptions are the options of every ClickHouse store a long-running
// command opens: the cluster, and the TTL backstop of the retention: section,
// so that whichever process migrates first renders the same schema.
func storeOptions(cfg *config.Config) ([]chstore.Option, error) {
	rc, err := parseRetention(cfg)
	if err != nil {
		return nil, err
	}
	return append(rc.TTLOptions(), clusterOption(cfg)), nil
}

// openRetentionStore parses the retention: section and opens and migrates
// the store with its TTL backstop (retention.Config.OpenStore) on the
// configured cluster: the store of the commands that erase, hold, export
// or run retention.
func openRetentionStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*chstore.Store, retention.Config, error) {
	rc, err := parseRetention(cfg)
	if err != nil {
		return nil, retention.Config{}, err
	}
	store, err := rc.OpenStore(ctx, cfg.ClickHouseURL(), logger, clusterOption(cfg))
	return store, rc, err
}

// requester is who asks: name (--requested-by), else the OS user who
// runs the command.
func requester(name string) string {
	if name != "" {
		return name
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

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
		natsconn.Drain(st.nc, shutdownTimeout)
	}
	if st.srv != nil {
		st.srv.Shutdown()
		st.srv.WaitForShutdown()
	}
}

// probes returns the readiness checks of a long-running command, starting
// with those of st's NATS connection and the events stream, and its
// Prometheus registry (newRegistry).
func (st *natsStack) probes() (*health.Registry, *prometheus.Registry) {
	checks := health.NewRegistry()
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
	return checks, newRegistry()
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

// newAlertWriter builds the writer of SESSIONMON_ALERTS to ClickHouse
// (alerts and status changes), which runs wherever ingest runs.
func newAlertWriter(cfg *config.Config, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer) (*ingest.Service, error) {
	storeOpts, err := storeOptions(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := ingest.NewAlerts(js, cfg.ClickHouseURL(), ingest.DefaultAlertConfig(), ingest.WithLogger(logger),
		ingest.WithMetrics(ingest.NewAlertMetrics(reg)), ingest.WithStoreOptions(storeOpts...))
	if err != nil {
		return nil, fmt.Errorf("ingest alerts: %w", err)
	}
	return svc, nil
}

// readyBoth is the readiness of the events and the alerts writer.
func readyBoth(events, alerts *ingest.Service) health.Check {
	return func(ctx context.Context) error { return errors.Join(events.Ready(ctx), alerts.Ready(ctx)) }
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors and sessionmon_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	v, c, goVersion := buildInfo()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sessionmon_build_info",
		Help:        "Always 1; its labels are the version, the commit and the Go version the running binary was built from.",
		ConstLabels: prometheus.Labels{"version": v, "commit": c, "goversion": goVersion},
	})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	return reg
}

// httpTimeouts are an HTTP server's timeouts.
type httpTimeouts struct{ readHeader, read, write, idle time.Duration }

// probeTimeouts are those of a server of /metrics, /healthz and /readyz
// alone.
var probeTimeouts = httpTimeouts{readHeader: 5 * time.Second, read: 10 * time.Second, write: 30 * time.Second, idle: 60 * time.Second}

// probeMux serves /healthz, /readyz and /metrics.
func probeMux(checks *health.Registry, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	checks.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// metricsAddr is the address of /metrics, /healthz and /readyz
// (metrics-addr). It warns when the deprecated http-addr is set.
func metricsAddr(cfg *config.Config, logger *slog.Logger) string {
	if cfg.HTTPAddr != "" {
		logger.Warn(fmt.Sprintf("http-addr (%s) is deprecated and will be removed: it sets metrics-addr, the address of /metrics, /healthz and /readyz; set metrics-addr (%s) instead",
			config.EnvName("http-addr"), config.EnvName("metrics-addr")), slog.String("metrics_addr", cfg.MetricsAddr))
	}
	return cfg.MetricsAddr
}

// serveHTTP serves /healthz, /readyz and /metrics on addr inside g until
// ctx ends.
func serveHTTP(ctx context.Context, g *errgroup.Group, addr string, checks *health.Registry, reg *prometheus.Registry, logger *slog.Logger) error {
	_, err := serveHandler(ctx, g, addr, probeMux(checks, reg), nil, probeTimeouts, logger)
	return err
}

// serveHandler serves h on addr inside g until ctx ends, over HTTPS with
// tlsConfig (nil: plain HTTP), with the timeouts t; stopped is closed when
// the server has shut down.
func serveHandler(ctx context.Context, g *errgroup.Group, addr string, h http.Handler, tlsConfig *tls.Config, t httpTimeouts,
	logger *slog.Logger) (stopped <-chan struct{}, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen on %s: %w", addr, err)
	}
	done := make(chan struct{})
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	logger.Info("http listening", slog.String("http_addr", ln.Addr().String()), slog.Bool("tls", tlsConfig != nil))
	g.Go(func() error {
		serve := srv.Serve
		if tlsConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server %s: %w", addr, err)
		}
		return nil
	})
	g.Go(func() error {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return done, nil
}

// newRetention builds the retention service of serve from the config
// file's retention: section: the scheduled job, the erasure worker (which
// asks the detectors over st to forget) and the TTL backstop. It refuses
// streams that keep data longer than the retention periods.
func newRetention(cfg *config.Config, st *natsStack, logger *slog.Logger, reg prometheus.Registerer) (*retention.Service, error) {
	rc, err := parseRetention(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkStreamLimits(cfg, rc); err != nil {
		return nil, err
	}
	return retention.NewService(rc, retention.ServiceDeps{
		DSN: cfg.ClickHouseURL(), StoreOptions: []chstore.Option{clusterOption(cfg)},
		JS: st.js, Forget: detect.ForgetVia(st.nc),
		PublishAlert: func(ctx context.Context, a schemas.Alert) error { return alertbus.PublishAlert(ctx, st.js, a) },
		Logger:       logger, Registerer: reg,
	})
}

// newTTLUpkeep builds the retention service of the processes that only
// keep the TTL backstop of the retention: section (ingest).
func newTTLUpkeep(cfg *config.Config, logger *slog.Logger) (*retention.Service, error) {
	rc, err := parseRetention(cfg)
	if err != nil {
		return nil, err
	}
	return retention.NewService(rc, retention.ServiceDeps{
		DSN: cfg.ClickHouseURL(), StoreOptions: []chstore.Option{clusterOption(cfg)}, Logger: logger,
	}, retention.WithTTLOnly())
}
