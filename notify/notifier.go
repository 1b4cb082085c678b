// Package notify delivers sessionmon's alerts to webhooks.
//
// The Notifier reads SESSIONMON_ALERTS with one durable JetStream consumer
// per webhook (schemas.NotifyConsumerPrefix + name), so each webhook has its own
// position, ack and redelivery state, and a slow or dead webhook never
// delays another. Each alert is one POST, signed per the Standard Webhooks
// specification, with the alert id as webhook-id on every attempt.
//
// Delivery state lives in JetStream, not in memory: an alert is acked only
// once its webhook answered 2xx, failed permanently or was given up on. A
// temporary failure (network error, timeout, 408, 429, 5xx) leaves it
// unacked and schedules the next attempt with NakWithDelay (exponential
// backoff with jitter, at least the receiver's Retry-After), so a restart
// resumes where the last run stopped. The attempt number is the message's
// delivery count. Once give_up_after has passed since the alert was
// published, or on a permanent failure, an Undeliverable record is stored
// in the SESSIONMON_UNDELIVERABLE bucket (and the attempt in the delivery
// log), and the alert is terminated for that webhook. Redeliver queues it
// again on SESSIONMON_REDELIVER, which a second consumer per webhook
// reads.
//
// A new webhook's consumer starts with the alerts of the last
// newWebhookBackfill before it was created, so alerts raised while the
// notifier was not running yet (a first deployment, a webhook added to the
// config) are delivered, without replaying all history.
//
// No secret and no request or response body is ever logged or stored.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/health"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/schemas"
)

// maxAckPending bounds the alerts in flight (being tried or waiting for
// their next attempt) per webhook; beyond it, the rest wait in the stream.
const maxAckPending = 1000

// Notifier is the webhook delivery service.
type Notifier struct {
	js      jetstream.JetStream
	cfg     Config
	targets []*target
	dlog    DeliveryLog
	logger  *slog.Logger
	metrics *Metrics
	now     func() time.Time

	logRows chan chstore.WebhookDeliveryRow
	// running counts webhooks whose consumers are up.
	running atomic.Int32
	// ready says why the notifier is not ready, if it is not.
	ready health.State
}

// Option configures a Notifier.
type Option func(*Notifier)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(n *Notifier) { n.logger = l } }

// WithMetrics sets the metrics.
func WithMetrics(m *Metrics) Option { return func(n *Notifier) { n.metrics = m } }

// WithDeliveryLog records every attempt in l (a *chstore.Store).
func WithDeliveryLog(l DeliveryLog) Option { return func(n *Notifier) { n.dlog = l } }

// New validates cfg, reads the secret and template files it names, and
// returns a Notifier that delivers alerts from js. It starts nothing.
func New(js jetstream.JetStream, cfg Config, opts ...Option) (*Notifier, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Notifier{js: js, cfg: cfg, now: time.Now, logRows: make(chan chstore.WebhookDeliveryRow, logQueue)}
	for _, o := range opts {
		o(n)
	}
	n.logger = logging.OrDiscard(n.logger).With("component", "notify")
	if n.metrics == nil {
		n.metrics = NewMetrics(nil)
	}
	var errs []error
	for i, w := range cfg.Webhooks {
		t, err := prepare(w, cfg.DashboardURL, fmt.Sprintf("webhooks[%d]", i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.targets = append(n.targets, t)
		n.metrics.initWebhook(w.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n.ready.Set("starting")
	return n, nil
}

// prepare reads w's files and builds its target; p names w in errors.
func prepare(w Webhook, dashboardURL, p string) (*target, error) {
	var signer *Signer
	if w.Secret != "" || w.SecretFile != "" {
		var err error
		if signer, err = prepareSigner(w, p); err != nil {
			return nil, err
		}
	}
	tmpl := w.Template
	if w.TemplateFile != "" {
		b, err := os.ReadFile(w.TemplateFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.template_file: %w", ErrInvalidConfig, p, err)
		}
		tmpl = string(b)
	}
	f, err := newFormatter(&w, tmpl, dashboardURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return newTarget(w, signer, f), nil
}

// prepareSigner reads w's secrets and builds its signer.
func prepareSigner(w Webhook, p string) (*Signer, error) {
	secrets := []string{w.Secret}
	if w.SecretFile != "" {
		s, err := readFile(w.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.secret_file: %w", ErrInvalidConfig, p, err)
		}
		secrets[0] = s
	}
	secrets = append(secrets, w.PreviousSecrets...)
	for i, f := range w.PreviousSecretFiles {
		s, err := readFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.previous_secret_files[%d]: %w", ErrInvalidConfig, p, i, err)
		}
		secrets = append(secrets, s)
	}
	signer, err := NewSigner(secrets...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, p, err)
	}
	return signer, nil
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Ready returns nil when every webhook's consumers are up, or an error
// saying why not. A webhook whose receiver is down does not make the
// notifier unready (see the metrics). It is a health.Check.
func (n *Notifier) Ready(ctx context.Context) error { return n.ready.Check(ctx) }

// Run delivers alerts until ctx ends. Attempts in flight then finish
// (each within its webhook's timeout) and are acked or scheduled again;
// alerts fetched but not started are handed back to JetStream. It waits
// for JetStream (and the alerts stream, created by detect) as long as it
// must.
func (n *Notifier) Run(ctx context.Context) error {
	var kv jetstream.KeyValue
	if err := n.retry(ctx, "notify state", func(ctx context.Context) (err error) {
		kv, _, err = ensureState(ctx, n.js)
		return err
	}); err != nil {
		return n.stopped(ctx, err)
	}
	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLog()
	var lg errgroup.Group
	if n.dlog != nil {
		lg.Go(func() error { return n.writeLog(logCtx) })
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range n.targets {
		g.Go(func() error { return n.runWebhook(gctx, t, kv) })
	}
	if len(n.targets) == 0 {
		n.ready.SetReady()
		n.logger.Info("notify started without webhooks")
	}
	err := g.Wait()
	stopLog()
	_ = lg.Wait()
	for _, t := range n.targets {
		t.close()
	}
	return n.stopped(ctx, err)
}

// stopped maps Run's end: nil after ctx ended.
func (n *Notifier) stopped(ctx context.Context, err error) error {
	n.ready.Set("stopped")
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// retry runs op with backoff until it succeeds or ctx ends.
func (n *Notifier) retry(ctx context.Context, what string, op func(context.Context) error) error {
	return backoff.Retry(ctx, &backoff.Backoff{Min: n.cfg.RetryMin, Max: n.cfg.RetryMax}, op,
		func(_ int, err error, retryIn time.Duration) {
			n.ready.Set(fmt.Sprintf("%s: %v", what, err))
			n.logger.Warn("notify setup failed, retrying", slog.String("op", what), slog.Duration("retry_in", retryIn), slog.Any("error", err))
		}, nil)
}

// source is where a webhook's alerts come from.
type source int

const (
	fromAlerts    source = iota // SESSIONMON_ALERTS, filtered
	fromRedeliver               // SESSIONMON_REDELIVER, queued by hand
)

// newWebhookBackfill is how far back a new webhook's consumer starts.
const newWebhookBackfill = time.Hour

// runWebhook creates t's two consumers and runs its workers until ctx
// ends.
func (n *Notifier) runWebhook(ctx context.Context, t *target, kv jetstream.KeyValue) error {
	w := &t.cfg
	var main, redo jetstream.Consumer
	if err := n.retry(ctx, "consumer "+schemas.NotifyConsumerPrefix+w.Name, func(ctx context.Context) (err error) {
		start := time.Now().Add(-newWebhookBackfill)
		cc := jetstream.ConsumerConfig{
			Durable:        schemas.NotifyConsumerPrefix + w.Name,
			Description:    "sessionmon notify: alerts to webhook " + w.Name,
			FilterSubjects: severitySubjects(w.MinSeverity, w.Detectors),
			DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
			OptStartTime:   &start,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        n.cfg.AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  maxAckPending,
		}
		// Where an existing consumer starts can't change: keep it.
		if existing, err := n.js.Consumer(ctx, schemas.AlertStream, cc.Durable); err == nil {
			cc.DeliverPolicy = existing.CachedInfo().Config.DeliverPolicy
			cc.OptStartTime = existing.CachedInfo().Config.OptStartTime
			cc.OptStartSeq = existing.CachedInfo().Config.OptStartSeq
		}
		main, err = n.js.CreateOrUpdateConsumer(ctx, schemas.AlertStream, cc)
		if err != nil {
			return fmt.Errorf("consumer %s%s: %w", schemas.NotifyConsumerPrefix, w.Name, err)
		}
		redo, err = n.js.CreateOrUpdateConsumer(ctx, schemas.RedeliverStream, jetstream.ConsumerConfig{
			Durable:       schemas.NotifyConsumerPrefix + w.Name + "-redeliver",
			Description:   "sessionmon notify: alerts queued again for webhook " + w.Name,
			FilterSubject: schemas.RedeliverSubjectPrefix + w.Name,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       n.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: maxAckPending,
		})
		if err != nil {
			return fmt.Errorf("consumer %s%s-redeliver: %w", schemas.NotifyConsumerPrefix, w.Name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if int(n.running.Add(1)) == len(n.targets) {
		n.ready.SetReady()
		n.logger.Info("notify started", slog.Int("webhooks", len(n.targets)))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.consume(gctx, t, kv, main, fromAlerts, w.Concurrency) })
	g.Go(func() error { return n.consume(gctx, t, kv, redo, fromRedeliver, 1) })
	return g.Wait()
}

// consume runs workers on one consumer until ctx ends; then it hands the
// messages fetched but not started back to JetStream.
func (n *Notifier) consume(ctx context.Context, t *target, kv jetstream.KeyValue, cons jetstream.Consumer, src source, workers int) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(workers))
	if err != nil {
		return fmt.Errorf("webhook %s: consume: %w", t.cfg.Name, err)
	}
	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for {
				msg, err := it.Next(jetstream.NextContext(ctx))
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return fmt.Errorf("webhook %s: consume: %w", t.cfg.Name, err)
					}
					n.logger.Warn("pull alerts", slog.String("webhook", t.cfg.Name), slog.Any("error", err))
					if !backoff.Sleep(ctx, n.cfg.RetryMin) {
						return nil
					}
					continue
				}
				n.handle(ctx, t, kv, msg, src)
			}
		})
	}
	werr := g.Wait()
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		if err != nil {
			break
		}
		_ = msg.Nak()
	}
	if werr != nil {
		return werr
	}
	return ctx.Err()
}

// Redeliver queues alert alertID again for webhook, or, when webhook is
// "", for every webhook that has an Undeliverable record of it. It returns
// the webhooks it queued the alert for. The alert is read back from
// SESSIONMON_ALERTS, so it must still be there (see its max age). The
// running notifier delivers it with the same webhook-id, without the
// webhook's filters, and removes the record once delivered. It needs no
// running notifier: one started later delivers it.
func (n *Notifier) Redeliver(ctx context.Context, alertID, webhook string) ([]string, error) {
	kv, _, err := ensureState(ctx, n.js)
	if err != nil {
		return nil, err
	}
	if alertID == "" || strings.ContainsAny(alertID, ".*> \t") {
		return nil, fmt.Errorf("redeliver: %w: alert id %q", ErrInvalidConfig, alertID)
	}
	recs, err := listUndeliverable(ctx, kv, "*."+alertID)
	if err != nil {
		return nil, err
	}
	var names []string
	if webhook != "" {
		known := false
		for _, t := range n.targets {
			known = known || t.cfg.Name == webhook
		}
		if !known {
			return nil, fmt.Errorf("redeliver: webhook %q: %w", webhook, ErrNotFound)
		}
		names = []string{webhook}
	} else {
		for _, r := range recs {
			names = append(names, r.Webhook)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("redeliver: no undeliverable record of alert %s: %w", alertID, ErrNotFound)
		}
	}
	var hint uint64
	for _, r := range recs {
		hint = max(hint, r.Sequence)
	}
	raw, seq, err := findAlert(ctx, n.js, alertID, hint)
	if err != nil {
		return nil, fmt.Errorf("redeliver: %w", err)
	}
	for _, name := range names {
		if _, err := n.js.PublishMsg(ctx, redeliverMsg(name, raw, seq)); err != nil {
			return nil, fmt.Errorf("redeliver alert %s to %s: %w", alertID, name, err)
		}
		n.logger.Info("alert queued for redelivery", slog.String("webhook", name), slog.String("alert_id", alertID))
	}
	return names, nil
}

// Undeliverable lists the alerts webhooks gave up on and that were not
// delivered since, for the dashboard and the CLI.
func (n *Notifier) Undeliverable(ctx context.Context) ([]Undeliverable, error) {
	kv, _, err := ensureState(ctx, n.js)
	if err != nil {
		return nil, err
	}
	return listUndeliverable(ctx, kv, ">")
}
