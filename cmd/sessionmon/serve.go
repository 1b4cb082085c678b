package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// shutdownTimeout bounds each step of a graceful shutdown.
const shutdownTimeout = 10 * time.Second

func serveCommand() *command {
	return &command{
		name:  "serve",
		usage: "sessionmon serve [options]",
		summary: `Run the pipeline: NATS JetStream (embedded unless --nats-url is given) with the
SESSIONMON_EVENTS stream, and the HTTP server with /healthz and /readyz.
With --demo it also publishes synthetic traffic, as 'sessionmon demo' does.`,
		options: join(sharedOptions, natsOptions, []string{
			"nats-listen", "stream-max-age", "stream-duplicates", "stream-max-bytes", "stream-replicas",
			"clickhouse-dsn", "http-addr", "demo", "demo-users", "demo-rate", "demo-duration", "demo-seed",
		}, secretOptions),
		run: runServe,
	}
}

// secretOptions are read from the environment or the config file only.
var secretOptions = []string{"nats-token", "nats-password"}

// natsStack is a connection to NATS, and the embedded server when sessionmon
// runs its own.
type natsStack struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startNATS starts the embedded server when no URL is configured, connects,
// and declares the events stream.
func startNATS(ctx context.Context, cfg *config.Config, name string, logger *slog.Logger) (*natsStack, error) {
	st := &natsStack{}
	url := cfg.NATS.URL
	if cfg.NATS.Embedded() {
		srv, err := natsconn.StartEmbedded(cfg.NATS.Listen, cfg.DataDir, logger)
		if err != nil {
			return nil, err
		}
		st.srv = srv
		url = srv.ClientURL()
		logger.Info("embedded nats started", slog.String("listen", cfg.NATS.Listen), slog.String("data_dir", cfg.DataDir))
	}
	nc, err := natsconn.Connect(url, cfg.NATS, name, logger)
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
	if _, err := natsconn.EnsureEventStream(ctx, js, natsconn.StreamConfig{
		MaxAge:     cfg.Stream.MaxAge,
		Duplicates: cfg.Stream.Duplicates,
		MaxBytes:   cfg.Stream.MaxBytes,
		Replicas:   cfg.Stream.Replicas,
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

func runServe(ctx context.Context, e *env) error {
	cfg, logger := e.cfg, e.logger
	st, err := startNATS(ctx, cfg, "sessionmon-serve", logger)
	if err != nil {
		return err
	}
	defer st.close()

	checks := health.NewRegistry()
	checks.Add("nats", func(context.Context) error {
		if s := st.nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", s)
		}
		return nil
	})
	checks.Add("events_stream", func(ctx context.Context) error {
		_, err := st.js.Stream(ctx, "SESSIONMON_EVENTS")
		return err
	})

	mux := http.NewServeMux()
	checks.Register(mux)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen on %s: %w", cfg.HTTPAddr, err)
	}
	httpSrv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	logger.Info("sessionmon serving", slog.String("http_addr", ln.Addr().String()), slog.Bool("demo", cfg.Serve.Demo))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})
	if cfg.Serve.Demo {
		g.Go(func() error {
			return runDemoTraffic(gctx, st.nc, cfg.Demo, e.stdout, logger)
		})
	}
	err = g.Wait()
	logger.Info("sessionmon stopped")
	return err
}
