package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/internal/config"
)

func intakeCommand() *command {
	return &command{
		name:  "intake",
		short: "run the HTTP intake alone (POST /v1/events into JetStream)",
		usage: "sessionmon intake [options]",
		summary: `Run the HTTP intake alone: apps that do not speak NATS (the JavaScript and
Python SDKs, or any HTTP client) POST schema-v1 events to /v1/events on
--intake-addr with an intake token ('sessionmon creds app NAME --http').
Events are checked as ingest checks them and published to the events stream;
each request is answered only after JetStream stored its events. serve takes
events on its --dashboard-addr; run any number of intakes behind a load
balancer to scale out. /metrics, /healthz and /readyz are on --metrics-addr.

Intake tokens are checked with the dashboard record key: give every intake
the same data-dir or dashboard-record-key as the serve that made them. Put a
TLS-terminating proxy in front of an intake that is not on loopback: the
token travels in the Authorization header.`,
		options: join(sharedOptions, natsOptions, streamOptions, []string{"metrics-addr", "http-addr", "intake-addr", "intake-max-in-flight", "dashboard-record-key"}, secretOptions),
		run:     runIntake,
	}
}

func runIntake(ctx context.Context, e *env) error {
	cfg := *e.cfg
	cfg.NATS.URL = cfg.NATS.ClientURL()
	st, err := startNATS(ctx, &cfg, "sessionmon-intake", false, e.logger)
	if err != nil {
		return err
	}
	defer st.close()
	checks, reg := st.probes()
	h, err := newIntake(ctx, &cfg, st, e.logger, reg)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := serveHTTP(gctx, g, metricsAddr(&cfg, e.logger), checks, reg, e.logger); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+intake.Path, h)
	if _, err := serveHandler(gctx, g, cfg.Intake.Addr, mux, nil, sharedTimeouts, e.logger.With("component", "intake")); err != nil {
		return err
	}
	e.logger.Info("intake ready", slog.String("intake_addr", cfg.Intake.Addr), slog.String("path", intake.Path))
	return g.Wait()
}

// newIntake builds the HTTP intake on st's JetStream, checking tokens
// with the dashboard record key of cfg.
func newIntake(ctx context.Context, cfg *config.Config, st *natsStack, logger *slog.Logger, reg prometheus.Registerer) (*intake.Handler, error) {
	recordKey, err := dashboard.LoadRecordKey(cfg.Dashboard.RecordKey, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	tokens, err := intake.OpenTokens(ctx, st.js, recordKey)
	if err != nil {
		return nil, err
	}
	return intake.New(st.js, tokens, intake.Config{MaxInFlight: cfg.Intake.MaxInFlight}, logger, reg)
}
