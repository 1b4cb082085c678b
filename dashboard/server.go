package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/sdk"
)

// Deps are what the dashboard reads and acts on.
type Deps struct {
	Store *chstore.Store
	JS    jetstream.JetStream
	// Retention is the policy the retention page shows.
	Retention retention.Config
	// Notifier is the webhook notifier: the webhook page lists its
	// undeliverable alerts and redelivers them; nil: no webhooks.
	Notifier *notify.Notifier
	// Eraser files erasure requests (the retention page's admin form);
	// nil: erasure requests cannot be filed from the dashboard.
	Eraser *retention.Eraser
	// Monitor publishes the dashboard's own sign-ins, sessions and
	// sensitive actions (app "sessionmon-dashboard"); nil disables that.
	Monitor *sdk.Client
	// PseudonymKey is the key the dashboard pseudonymizes its own users
	// and sessions with (LoadPseudonymKey); nil: a random key per process.
	PseudonymKey []byte
	// RecordKey authenticates the session and API token records in
	// JetStream (LoadRecordKey); every dashboard process sharing the
	// buckets needs the same one. nil: a random key per process (sessions
	// and tokens die with it).
	RecordKey []byte
	Logger    *slog.Logger
	// Registerer gets the dashboard's metrics; nil: none.
	Registerer prometheus.Registerer
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Server is the dashboard's HTTP server.
type Server struct {
	cfg  Config
	echo *echo.Echo
	h    *handler
}

// Server timeouts. Write is long enough for an export and a live alert
// stream sends a heartbeat well within it.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
)

// New builds the dashboard; it parses every template and fails when one is
// missing, and it refuses an unsafe configuration.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	r, err := newRenderer(templateFS)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	h := &handler{
		cfg: cfg, store: deps.Store, js: deps.JS, retention: deps.Retention, notifier: deps.Notifier,
		eraser: deps.Eraser, metrics: NewMetrics(deps.Registerer),
		render: r, logger: deps.Logger.With("component", "dashboard"), now: deps.Now,
	}
	h.auth, err = newAuthenticator(ctx, cfg, deps)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// echo's own idea of the client is the TCP peer. The dashboard reads
	// client addresses (login rate limits, audit log) through its request
	// inspector, which believes X-Forwarded-For only from
	// Config.TrustedProxies.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = h.handleError
	s := &Server{cfg: cfg, echo: e, h: h}
	s.routes()
	for _, r := range e.Routes() {
		h.metrics.routes[r.Path] = true
	}
	return s, nil
}

// Handler returns the dashboard as an http.Handler (tests).
func (s *Server) Handler() http.Handler { return s.echo }

// Run serves on cfg.Addr until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.h.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.h.auth.close()
	return err
}

// routes registers every route of the dashboard, in one place.
//
// Middleware, outermost first: request id, security headers, the body
// limit of the route class (bodylimit.go), recover, the session or API
// token (sets the principal), CSRF on state-changing requests with a
// session. Each route then says the role it needs, and
// sensitive actions also need a recent re-authentication.
func (s *Server) routes() {
	e, h := s.echo, s.h
	e.Use(h.countRequests, h.requestID, h.securityHeaders, h.limitBody, h.recoverPanic, h.authenticate, h.csrf)

	viewer, analyst, admin := h.requireRole(RoleViewer), h.requireRole(RoleAnalyst), h.requireRole(RoleAdmin)
	reauth := h.requireReauth

	// Assets, embedded; no third-party origin anywhere.
	e.GET("/static/*", h.serveStatic)

	// Sign-in, sign-out, re-authentication.
	e.GET("/login", h.showLogin)
	e.POST("/login", h.login)
	e.POST("/logout", h.logout)
	e.GET("/reauth", h.showReauth, viewer)
	e.POST("/reauth", h.reauth, viewer)

	// Pages.
	e.GET("/", h.showOverview, viewer)
	e.GET("/alerts", h.showAlertList, viewer)
	e.GET("/alerts/live", h.streamAlerts, viewer)
	e.GET("/alerts/:id", h.showAlert, viewer)
	e.POST("/alerts/:id/status", h.changeAlertStatus, analyst)
	e.GET("/suppressions", h.showSuppressions, viewer)
	e.POST("/suppressions", h.createSuppression, analyst)
	e.POST("/suppressions/:id/delete", h.deleteSuppression, analyst)
	e.GET("/networks", h.showNetworks, viewer)
	e.GET("/subjects", h.showSubjectSearch, viewer)
	e.GET("/subjects/:subject", h.showSubject, viewer)
	e.GET("/subjects/:subject/export", h.exportSubject, analyst)
	e.GET("/sessions/:session", h.showSession, viewer)
	e.GET("/dead-letters", h.showDeadLetters, viewer)
	e.GET("/webhooks", h.showWebhookDeliveries, viewer)
	e.POST("/webhooks/redeliver", h.redeliverWebhook, admin)
	e.GET("/retention", h.showRetention, viewer)
	e.POST("/retention/erasures", h.fileErasure, admin, reauth)
	e.POST("/retention/holds", h.setLegalHold, admin, reauth)
	e.POST("/retention/holds/lift", h.liftLegalHold, admin, reauth)
	e.GET("/audit", h.showAuditLog, admin)
	e.GET("/tokens", h.showTokens, admin)
	e.POST("/tokens", h.createToken, admin, reauth)
	e.POST("/tokens/:id/revoke", h.revokeToken, admin, reauth)

	// JSON API for SIEMs (openapi.yaml): API tokens (Authorization: Bearer)
	// or a session.
	api := e.Group("/api/v1")
	api.GET("/overview", h.apiOverview, viewer)
	api.GET("/alerts", h.apiAlertList, viewer)
	api.GET("/alerts/:id", h.apiAlert, viewer)
	api.POST("/alerts/:id/status", h.apiChangeAlertStatus, analyst)
	api.GET("/suppressions", h.apiSuppressions, viewer)
	api.POST("/suppressions", h.apiCreateSuppression, analyst)
	api.DELETE("/suppressions/:id", h.apiDeleteSuppression, analyst)
	api.GET("/networks/shared", h.apiSharedNetworks, viewer)
	api.GET("/subjects/:subject", h.apiSubject, viewer)
	api.GET("/subjects/:subject/familiar", h.apiSubjectFamiliar, viewer)
	api.GET("/subjects/:subject/export", h.apiExportSubject, analyst)
	api.GET("/sessions/:session", h.apiSession, viewer)
	api.GET("/dead-letters", h.apiDeadLetters, viewer)
	api.GET("/webhook-deliveries", h.apiWebhookDeliveries, viewer)
	api.POST("/webhook-deliveries/redeliver", h.apiRedeliverWebhook, admin)
	api.GET("/retention", h.apiRetention, viewer)
	api.GET("/erasure-requests", h.apiErasureRequests, viewer)
	api.POST("/erasure-requests", h.apiFileErasure, admin, reauth)
	api.GET("/legal-holds", h.apiLegalHolds, viewer)
	api.POST("/legal-holds", h.apiSetLegalHold, admin, reauth)
	api.DELETE("/legal-holds/:subject", h.apiLiftLegalHold, admin, reauth)
	api.GET("/audit", h.apiAuditLog, admin)
	api.GET("/openapi.yaml", h.serveOpenAPI)
}
