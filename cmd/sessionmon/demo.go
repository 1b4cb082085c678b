package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// demoBuffer is the SDK's async window for demo traffic.
const demoBuffer = 4096

func demoCommand() *command {
	return &command{
		name:  "demo",
		short: "publish (or write) realistic demo traffic with attacks",
		usage: "sessionmon demo [options]",
		summary: `Publish realistic synthetic traffic through the SDK to a running sessionmon:
many users logging in, rotating tokens, working and logging out, plus a few
attacks and policy violations of every kind the detectors look for (impossible
travel, token reuse, brute force, credential stuffing, session hijack, timeouts
not enforced, missing re-authentication, session fixation, insecure cookies,
long-lived and PII-carrying tokens, retired signing keys). Events are dated over
the last hours. Without --nats-url it connects to the embedded server of
  'sessionmon serve' (--nats-listen). With --output FILE it writes one pass of
the traffic as schema v1 NDJSON instead (for 'sessionmon publish' or
'sessionmon detect --input').`,
		options: join([]string{"log-format", "log-level", "nats-listen", "output"}, natsOptions,
			[]string{"demo-users", "demo-rate", "demo-duration", "demo-seed"}, secretOptions),
		run: func(ctx context.Context, e *env) error {
			if e.cfg.Output != "" {
				return writeDemoFile(e)
			}
			url := e.cfg.NATS.ClientURL()
			nc, err := natsconn.Connect(url, e.cfg.NATS, "sessionmon-demo", e.logger)
			if err != nil {
				return err
			}
			defer nc.Close()
			return runDemoTraffic(ctx, nc, e.cfg.Demo, e.stdout, e.logger)
		},
	}
}

// runDemoTraffic publishes demo traffic on nc and prints progress to out.
func runDemoTraffic(ctx context.Context, nc *nats.Conn, cfg config.Demo, out io.Writer, logger *slog.Logger) error {
	client, err := sdk.NewClient(nc, sdk.WithApp(demo.App), sdk.WithAsyncBuffer(demoBuffer),
		sdk.WithBlockOnFull(30*time.Second), sdk.WithLogger(logger))
	if err != nil {
		return fmt.Errorf("demo client: %w", err)
	}
	start := time.Now()
	last := start
	progress := func(sent, total int) {
		if time.Since(last) < 2*time.Second && sent < total {
			return
		}
		last = time.Now()
		fmt.Fprintf(out, "demo: %d/%d events published (%.0f events/s)\n", sent, total, float64(sent)/time.Since(start).Seconds())
	}
	sent, runErr := demo.Run(ctx, client, demo.Options{Users: cfg.Users, Seed: cfg.Seed}, cfg.Rate, cfg.Duration, progress)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := client.Close(closeCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("close demo client: %w", err)
	}
	st := client.Stats()
	fmt.Fprintf(out, "demo: done: %d events accepted, %d stored, %d failed in %s\n", sent, st.Published, st.Failed, time.Since(start).Round(time.Millisecond))
	return runErr
}

// writeDemoFile writes one pass of demo traffic as NDJSON to --output.
func writeDemoFile(e *env) error {
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	if err != nil {
		return err
	}
	out := e.stdout
	if e.cfg.Output != "-" {
		f, err := os.Create(e.cfg.Output)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		out = f
	}
	w := bufio.NewWriterSize(out, 1<<16)
	events := demo.Generate(p, demo.Options{Users: e.cfg.Demo.Users, Seed: e.cfg.Demo.Seed})
	for i := range events {
		se := events[i].Schema(demo.App)
		b, err := schemas.Encode(se)
		if err != nil {
			return fmt.Errorf("encode demo event: %w", err)
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write demo events: %w", err)
	}
	fmt.Fprintf(e.stderr, "demo: wrote %d events\n", len(events))
	return nil
}
