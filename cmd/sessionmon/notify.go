package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
)

func notifyCommand() *command {
	return &command{
		name:  "notify",
		short: "deliver alerts to webhooks; redeliver undeliverable alerts",
		usage: "sessionmon notify [redeliver --alert ID [--webhook NAME]] [options]",
		summary: `Run the webhook notifier alone: deliver alerts from SESSIONMON_ALERTS to the
webhooks of the config file's notify: section, signed per Standard Webhooks,
with retries whose state lives in JetStream (a restart resumes). An alert a
webhook gave up on is recorded as undeliverable.

'notify redeliver --alert ID' queues such an alert again, for --webhook or
for every webhook that gave up on it; the running notifier delivers it with
the same webhook-id.`,
		options: join(sharedOptions, natsOptions, streamOptions, []string{"metrics-addr", "http-addr", "alert", "webhook"}, clickhouseOptions, secretOptions),
		words:   true,
		run:     runNotify,
	}
}

func runNotify(ctx context.Context, e *env) error {
	redeliver := len(e.args) > 0
	if redeliver {
		if err := wantWord(e.args, "redeliver"); err != nil {
			return err
		}
	}
	if redeliver && e.cfg.Notify.AlertID == "" {
		return usagef("redeliver: --alert is required")
	}
	cfg := *e.cfg
	cfg.NATS.URL = cfg.NATS.ClientURL()
	st, err := startNATS(ctx, &cfg, "sessionmon-notify", false, e.logger)
	if err != nil {
		return err
	}
	defer st.close()
	if err := ensureAlertStream(ctx, st.js, false); err != nil {
		return err
	}
	checks, reg := st.probes()
	n, err := newNotifier(ctx, e.cfg, st.js, e.logger, reg)
	if err != nil {
		return err
	}
	defer n.close()
	if !n.enabled() {
		return errors.New("no webhooks configured: add them to the notify: section of the config file (--config)")
	}
	if redeliver {
		queued, err := n.Redeliver(ctx, e.cfg.Notify.AlertID, e.cfg.Notify.Webhook)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "alert %s queued for redelivery to: %s\n", e.cfg.Notify.AlertID, strings.Join(queued, ", "))
		return nil
	}
	checks.Add("notify", n.Ready)
	g, gctx := errgroup.WithContext(ctx)
	if err := serveHTTP(gctx, g, metricsAddr(e.cfg, e.logger), checks, reg, e.logger); err != nil {
		return err
	}
	g.Go(func() error { return n.Run(gctx) })
	return g.Wait()
}
