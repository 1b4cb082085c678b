package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/sdk"
)

// dashboardOptions are the flags of the subcommands that run the dashboard.
var dashboardOptions = []string{"dashboard-addr", "insecure-dev-cookies", "dashboard-pseudonym-key", "dashboard-record-key", "dashboard-admin-password"}

// demoAdminUser is the user `serve --demo` creates when no user is
// configured, and demoAdminPasswordFile the file (in --data-dir) its
// password is written to.
const (
	demoAdminUser         = "admin"
	demoAdminPasswordFile = "dashboard-admin-password"
)

// sharedTimeouts are those of the dashboard's HTTP server (an export or the
// live alert stream may write for minutes), with or without the HTTP intake
// and /metrics, /healthz, /readyz.
var sharedTimeouts = httpTimeouts{readHeader: 5 * time.Second, read: 15 * time.Second, write: 5 * time.Minute, idle: 2 * time.Minute}

func dashboardCommand() *command {
	return &command{
		name:  "dashboard",
		short: "run the dashboard alone (web UI and /api/v1)",
		usage: "sessionmon dashboard [options]",
		summary: `Run the dashboard alone against a NATS server and ClickHouse: the web
application for the security team (overview, alerts, subjects, sessions, dead
letters, webhooks, retention) and its JSON API under /api/v1 (see
dashboard/openapi.yaml, also served at /api/v1/openapi.yaml). Users and
session settings come from the config file's dashboard: section (with
tls_cert_file and tls_key_file it serves HTTPS only). Needs --nats-url (or
the embedded server of a running 'sessionmon serve' on --nats-listen);
'sessionmon serve' runs the dashboard too. Sessions and API tokens live in
NATS, authenticated with the record key: run every dashboard and serve with
the same --data-dir (<data-dir>/dashboard-record.key) or the same
SESSIONMON_DASHBOARD_RECORD_KEY, or they sign each other's users out.
/metrics, /healthz and /readyz are on --metrics-addr.`,
		options: join(sharedOptions, natsOptions, streamOptions, dashboardOptions, []string{"metrics-addr", "http-addr"}, clickhouseOptions, secretOptions),
		run:     runDashboard,
	}
}

func runDashboard(ctx context.Context, e *env) error {
	cfg := *e.cfg
	cfg.NATS.URL = cfg.NATS.ClientURL()
	logger := e.logger
	dc, err := dashboardConfig(&cfg, dashboardAddr(&cfg), logger)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if dc.TLSCertFile != "" {
		// A missing or bad certificate stops the dashboard here, before
		// it connects to anything.
		if tlsConfig, err = dashboardTLS(dc); err != nil {
			return err
		}
	}
	st, err := startNATS(ctx, &cfg, "sessionmon-dashboard", false, logger)
	if err != nil {
		return err
	}
	defer st.close()
	if err := ensureAlertStream(ctx, st.js, false); err != nil {
		return err
	}
	store, err := openDashboardStore(ctx, &cfg, true, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	// Not run here (serve or notify runs it): the webhook page lists
	// undeliverable alerts and redelivers through it.
	notifier, err := newNotifier(ctx, &cfg, st.js, logger, nil)
	if err != nil {
		return err
	}
	defer notifier.close()
	checks, reg := st.probes()
	checks.Add("clickhouse", store.Ping)
	srv, closeDash, err := newDashboard(ctx, &cfg, dc, st, store, notifier.Notifier, logger, reg)
	if err != nil {
		return err
	}
	defer closeDash()
	g, gctx := errgroup.WithContext(ctx)
	if _, err := serveDashboardAndProbes(gctx, g, &cfg, srv.Handler(), tlsConfig, checks, reg, logger); err != nil {
		return err
	}
	logger.Info("dashboard listening", slog.String("dashboard_addr", dc.Addr))
	return g.Wait()
}

// dashboardConfig builds the dashboard's configuration: the config file's
// dashboard: section, then the flags, then the demo defaults (an admin user
// and, on a loopback address, plain-http cookies) when serve runs with
// --demo. addr is where the dashboard is reached.
func dashboardConfig(cfg *config.Config, addr string, logger *slog.Logger) (dashboard.Config, error) {
	dc, err := parseDashboard(cfg)
	if err != nil {
		return dashboard.Config{}, err
	}
	dc.Addr = addr
	if cfg.Dashboard.InsecureDevCookies {
		dc.InsecureDevCookies = true
	}
	if cfg.Dashboard.AdminPassword != "" {
		if len(dc.Users) > 0 {
			logger.Info("dashboard-admin-password ignored: the config file lists dashboard users")
		} else {
			u, err := bootstrapAdmin(cfg.Dashboard.AdminPassword)
			if err != nil {
				return dashboard.Config{}, err
			}
			dc.Users = append(dc.Users, u)
			logger.Info("dashboard: no users configured, sign in as admin with the dashboard-admin-password", slog.String("user", u.Name))
		}
	}
	if !cfg.Serve.Demo {
		return dc, nil
	}
	if len(dc.Users) == 0 {
		u, path, err := demoAdmin(cfg.DataDir)
		if err != nil {
			return dashboard.Config{}, err
		}
		dc.Users = append(dc.Users, u)
		logger.Info("dashboard demo: no users configured, sign in as admin with the password in the file",
			slog.String("user", demoAdminUser), slog.String("password_file", path))
	}
	if !dc.InsecureDevCookies && dc.TLSCertFile == "" && isLoopback(addr) {
		dc.InsecureDevCookies = true
		logger.Warn("dashboard demo: insecure dev cookies (plain http, no __Host- prefix, no Secure) on a loopback address; never use them in production",
			slog.String("dashboard_addr", addr))
	}
	return dc, nil
}

// bootstrapAdminUser is the name of the admin dashboard-admin-password
// makes.
const bootstrapAdminUser = "admin"

// bootstrapAdmin returns the first admin user, with password.
func bootstrapAdmin(password string) (dashboard.User, error) {
	if utf8.RuneCountInString(password) < dashboard.MinPasswordLength {
		return dashboard.User{}, fmt.Errorf("dashboard-admin-password (%s): must be at least %d characters", config.EnvName("dashboard-admin-password"), dashboard.MinPasswordLength)
	}
	hash, err := dashboard.HashPassword(password)
	if err != nil {
		return dashboard.User{}, fmt.Errorf("dashboard-admin-password: %w", err)
	}
	return dashboard.User{Name: bootstrapAdminUser, Role: dashboard.RoleAdmin, PasswordHash: hash}, nil
}

// demoAdmin returns the demo admin user. Its password is read from
// dataDir/dashboard-admin-password, or made up and written there (0600)
// the first time, so a restarted demo keeps the same password. It returns
// the file's path.
func demoAdmin(dataDir string) (dashboard.User, string, error) {
	path := filepath.Join(dataDir, demoAdminPasswordFile)
	pw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm()&0o077 != 0 {
			return dashboard.User{}, "", fmt.Errorf("demo admin password file %s: readable by others (mode %v): make it 0600", path, fi.Mode().Perm())
		}
	case errors.Is(err, fs.ErrNotExist):
		pw, err = writeDemoPassword(dataDir, path)
		if err != nil {
			return dashboard.User{}, "", err
		}
	default:
		return dashboard.User{}, "", fmt.Errorf("read demo admin password file %s: %w", path, err)
	}
	password := strings.TrimSpace(string(pw))
	if password == "" {
		return dashboard.User{}, "", fmt.Errorf("demo admin password file %s: empty", path)
	}
	hash, err := dashboard.HashPassword(password)
	if err != nil {
		return dashboard.User{}, "", fmt.Errorf("demo admin password: %w", err)
	}
	return dashboard.User{Name: demoAdminUser, Role: dashboard.RoleAdmin, PasswordHash: hash}, path, nil
}

// writeDemoPassword makes up a password (144 random bits) and writes it to
// path, which must not exist, readable by its owner only.
func writeDemoPassword(dataDir, path string) ([]byte, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("demo admin password: %w", err)
	}
	pw := []byte(base64.RawURLEncoding.EncodeToString(b))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir %s: %w", dataDir, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create demo admin password file: %w", err)
	}
	_, err = f.Write(append(pw, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write demo admin password file %s: %w", path, err)
	}
	return pw, nil
}

// dashboardAddr is the dashboard's listen address.
func dashboardAddr(cfg *config.Config) string { return cfg.Dashboard.Addr }

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openDashboardStore connects to ClickHouse, waiting for it when it is not
// up yet. With migrate, it applies the migrations (the dashboard alone);
// serve leaves them to ingest.
func openDashboardStore(ctx context.Context, cfg *config.Config, migrate bool, logger *slog.Logger) (*chstore.Store, error) {
	return chstore.Connect(ctx, cfg.ClickHouseURL(), logger, chstore.ConnectConfig{
		Migrate: migrate,
		Wait:    &backoff.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second},
		Waiting: func(err error, retryIn time.Duration) {
			logger.Warn("dashboard: clickhouse not available, retrying", slog.Any("error", err), slog.Duration("retry_in", retryIn))
		},
	}, clusterOption(cfg))
}

// newDashboard builds the dashboard on st and store. The returned func
// closes what it opened (the client publishing the dashboard's own
// sessions), after the server stopped.
func newDashboard(ctx context.Context, cfg *config.Config, dc dashboard.Config, st *natsStack, store *chstore.Store,
	notifier *notify.Notifier, logger *slog.Logger, reg prometheus.Registerer) (*dashboard.Server, func(), error) {
	rc, err := parseRetention(cfg)
	if err != nil {
		return nil, nil, err
	}
	key, err := dashboard.LoadPseudonymKey(cfg.Dashboard.PseudonymKey, cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	// Shared by every process with this data-dir (or this
	// dashboard-record-key): a session or token made by one verifies in
	// the others.
	recordKey, err := dashboard.LoadRecordKey(cfg.Dashboard.RecordKey, cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	monitor, err := sdk.NewClient(st.nc, sdk.WithApp(dashboard.MonitorApp), sdk.WithLogger(logger))
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard monitor client: %w", err)
	}
	closeMonitor := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := monitor.Close(cctx); err != nil {
			logger.Warn("dashboard monitor client close", slog.Any("error", err))
		}
	}
	srv, err := dashboard.New(ctx, dc, dashboard.Deps{
		Store: store, JS: st.js, Retention: rc, Monitor: monitor, PseudonymKey: key, RecordKey: recordKey, Logger: logger, Registerer: reg,
		Notifier: notifier,
		// The dashboard only files requests; serve's erasure worker
		// carries them out and asks the detectors to forget.
		Eraser: retention.NewEraser(store, nil, logger),
	})
	if err != nil {
		closeMonitor()
		return nil, nil, err
	}
	return srv, closeMonitor, nil
}

// serveHTTPAndDashboard is serve's HTTP: the dashboard and the HTTP intake
// (POST /v1/events; nil intakeHandler: none) on --dashboard-addr, where
// people and apps reach serve, and /metrics, /healthz and /readyz on
// --metrics-addr (serveDashboardAndProbes). The dashboard starts once
// ClickHouse is up and migrated (ready returns nil); until then it answers
// 503 and the readiness check "dashboard" fails, while the intake takes
// events from the start. With the dashboard's tls_cert_file and
// tls_key_file, the dashboard's server serves HTTPS only, the intake
// included.
func serveHTTPAndDashboard(ctx context.Context, g *errgroup.Group, cfg *config.Config, st *natsStack, ready health.Check,
	notifier *notify.Notifier, intakeHandler http.Handler, checks *health.Registry, reg *prometheus.Registry, logger *slog.Logger) error {
	addr := dashboardAddr(cfg)
	if cfg.HTTPAddr != "" && intakeHandler != nil {
		logger.Warn("the HTTP intake (POST "+intake.Path+") and the dashboard are on dashboard-addr, not on http-addr",
			slog.String("dashboard_addr", addr))
	}
	dc, err := dashboardConfig(cfg, addr, logger)
	if err != nil {
		return err
	}
	// Loaded now, so a missing or bad certificate stops serve at start.
	var tlsConfig *tls.Config
	if dc.TLSCertFile != "" {
		if tlsConfig, err = dashboardTLS(dc); err != nil {
			return err
		}
	}
	lazy := &lazyHandler{}
	started := health.NotReady("dashboard waiting for clickhouse")
	checks.Add("dashboard", started.Check)
	public := http.NewServeMux()
	if intakeHandler != nil {
		public.Handle("POST "+intake.Path, intakeHandler)
	}
	public.Handle("/", lazy)
	stopped, err := serveDashboardAndProbes(ctx, g, cfg, public, tlsConfig, checks, reg, logger)
	if err != nil {
		return err
	}
	g.Go(func() error {
		if err := health.Wait(ctx, ready, 250*time.Millisecond); err != nil {
			return ignoreCanceled(ctx, err)
		}
		store, err := openDashboardStore(ctx, cfg, false, logger)
		if err != nil {
			return ignoreCanceled(ctx, err)
		}
		defer store.Close()
		srv, closeDash, err := newDashboard(ctx, cfg, dc, st, store, notifier, logger, reg)
		if err != nil {
			return err
		}
		defer closeDash()
		h := srv.Handler()
		lazy.h.Store(&h)
		started.SetReady()
		logger.Info("dashboard ready", slog.String("dashboard_addr", addr))
		// The store and the monitor close after the server has stopped,
		// not under requests in flight.
		<-stopped
		return nil
	})
	return nil
}

// serveDashboardAndProbes serves public (the dashboard, and serve's HTTP
// intake) on --dashboard-addr, over HTTPS with tlsConfig (nil: plain HTTP),
// and /metrics, /healthz and /readyz on --metrics-addr over plain HTTP, all
// inside g until ctx ends. Given the same address, both are served by one
// server, and with tlsConfig the probes are HTTPS too. stopped is closed
// when the dashboard's server has shut down.
func serveDashboardAndProbes(ctx context.Context, g *errgroup.Group, cfg *config.Config, public http.Handler, tlsConfig *tls.Config,
	checks *health.Registry, reg *prometheus.Registry, logger *slog.Logger) (stopped <-chan struct{}, err error) {
	probeAddr, addr := metricsAddr(cfg, logger), dashboardAddr(cfg)
	if probeAddr == addr {
		if tlsConfig != nil {
			logger.Info("dashboard TLS on metrics-addr, the dashboard's address: /metrics, /healthz and /readyz are served over HTTPS too; give metrics-addr an address of its own to keep them plain HTTP",
				slog.String("metrics_addr", probeAddr))
		}
		mux := probeMux(checks, reg)
		mux.Handle("/", public)
		return serveHandler(ctx, g, addr, mux, tlsConfig, sharedTimeouts, logger)
	}
	if err := samePort(probeAddr, addr); err != nil {
		if cfg.HTTPAddr != "" {
			err = fmt.Errorf("%w (http-addr, %s, sets metrics-addr now)", err, config.EnvName("http-addr"))
		}
		return nil, err
	}
	if _, err := serveHandler(ctx, g, probeAddr, probeMux(checks, reg), nil, probeTimeouts, logger); err != nil {
		return nil, err
	}
	return serveHandler(ctx, g, addr, public, tlsConfig, sharedTimeouts, logger)
}

// samePort refuses a metrics-addr and a dashboard-addr that are different
// but would listen on the same port of the same interface (0.0.0.0:8080
// and 127.0.0.1:8080): one of the two servers could not start.
func samePort(metricsAddr, dashboardAddr string) error {
	mh, mp, err1 := net.SplitHostPort(metricsAddr)
	dh, dp, err2 := net.SplitHostPort(dashboardAddr)
	if err1 != nil || err2 != nil || mp != dp || mp == "0" {
		return nil
	}
	norm := func(h string) string {
		switch h {
		case "", "0.0.0.0", "::":
			return ""
		case "localhost":
			return "127.0.0.1"
		}
		return h
	}
	if mh, dh = norm(mh), norm(dh); mh != "" && dh != "" && mh != dh {
		return nil
	}
	return fmt.Errorf("metrics-addr %s (%s) and dashboard-addr %s (%s) both listen on port %s: give them different ports, or the same address to serve both on one server",
		metricsAddr, config.EnvName("metrics-addr"), dashboardAddr, config.EnvName("dashboard-addr"), mp)
}

// ignoreCanceled drops err when ctx ended: a shutdown while waiting is no
// failure.
func ignoreCanceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// lazyHandler answers 503 until its handler is set.
type lazyHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "5")
	http.Error(w, "dashboard starting: waiting for clickhouse", http.StatusServiceUnavailable)
}

// dashboardTLS loads the dashboard's certificate and key.
func dashboardTLS(dc dashboard.Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(dc.TLSCertFile, dc.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("dashboard.tls_cert_file, dashboard.tls_key_file: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
