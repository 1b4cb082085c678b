package main

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// ingestOptions are the flags of the subcommands that run the ingest worker.
var ingestOptions = append(clickhouseOptions[:len(clickhouseOptions):len(clickhouseOptions)],
	"ingest-batch-size", "ingest-batch-age", "ingest-max-ack-pending", "ingest-ack-wait",
	"dlq-max-age",
)

func ingestCommand() *command {
	return &command{
		name:  "ingest",
		short: "run the ingest worker alone (events and alerts into ClickHouse)",
		usage: "sessionmon ingest [options]",
		summary: `Run the ingest worker alone: move events from the SESSIONMON_EVENTS stream into
ClickHouse (batched, acknowledged only after ClickHouse confirmed the write),
send events that fail schema v1 or carry raw personal data to SESSIONMON_DLQ,
copy the alerts and their status changes from SESSIONMON_ALERTS into ClickHouse,
and serve /metrics, /healthz and /readyz on --metrics-addr. Run any number of them against one
NATS: they share the work. Needs --nats-url (or the embedded server of a
running 'sessionmon serve' on --nats-listen).`,
		options: join(sharedOptions, natsOptions, streamOptions, []string{"metrics-addr", "http-addr", "dlq-max-age"}, ingestOptions, geoOptions, secretOptions),
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
	checks, reg := st.probes()
	resolver, err := openGeo(e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer resolver.Close()
	svc, err := newIngest(e.cfg, st.js, e.logger, reg, resolver)
	if err != nil {
		return err
	}
	alerts, err := newAlertWriter(e.cfg, st.js, e.logger, reg)
	if err != nil {
		return err
	}
	checks.Add("ingest", readyBoth(svc, alerts))
	if err := ensureAlertStream(ctx, st.js, false); err != nil {
		return err
	}
	ttl, err := newTTLUpkeep(e.cfg, e.logger)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	if err := serveHTTP(gctx, g, metricsAddr(e.cfg, e.logger), checks, reg, e.logger); err != nil {
		return err
	}
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	g.Go(func() error { return ttl.Run(gctx) })
	return g.Wait()
}
