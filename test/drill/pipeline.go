package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Webhook is one webhook of the notifier's configuration.
type Webhook struct {
	// Name is the webhook's name in the config and metrics.
	Name string
	// Receiver takes its deliveries.
	Receiver *Receiver
	// Timeout bounds one attempt.
	Timeout time.Duration
	// GiveUpAfter is when an alert is recorded undeliverable.
	GiveUpAfter time.Duration
}

// Pipeline is sessionmon as three processes of the real binary, ingest,
// detect and notify, against an external NATS server (which outlives
// them) and a ClickHouse database.
type Pipeline struct {
	Ingest, Detect, Notify *Proc
}

// PipelineConfig says how to run the pipeline.
type PipelineConfig struct {
	// Bin is the sessionmon binary.
	Bin string
	// Dir holds the config file, data dirs and logs.
	Dir string
	// NATSURL and DSN are the servers.
	NATSURL, DSN string
	// Webhooks are the notifier's receivers; none runs no notifier.
	Webhooks []Webhook
}

// NewPipeline writes the config file and prepares the processes; Start
// starts them.
func NewPipeline(c PipelineConfig) (*Pipeline, error) {
	cfgPath := filepath.Join(c.Dir, "sessionmon.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(c.Webhooks)), 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	common := []string{"--config", cfgPath, "--nats-url", c.NATSURL, "--log-format", "json"}
	env := []string{"GOMAXPROCS=2"}
	p := &Pipeline{}
	var err error
	mk := func(name string, args ...string) *Proc {
		if err != nil {
			return nil
		}
		data := filepath.Join(c.Dir, "data-"+name)
		if err = os.MkdirAll(data, 0o700); err != nil {
			return nil
		}
		var pr *Proc
		pr, err = NewProc(c.Bin, c.Dir, name, env, append(append(common, "--data-dir", data), args...)...)
		return pr
	}
	// A short ack wait: after a kill -9 the unacknowledged batch comes
	// back in seconds, not the default half minute.
	p.Ingest = mk("ingest", "--clickhouse-dsn", c.DSN, "--ingest-batch-age", "200ms", "--ingest-ack-wait", "5s")
	p.Detect = mk("detect")
	if len(c.Webhooks) > 0 {
		p.Notify = mk("notify", "--clickhouse-dsn", c.DSN)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare pipeline: %w", err)
	}
	return p, nil
}

// configYAML is the config file: the notify: section with the webhooks,
// allowed to use plain HTTP on loopback, and retries fast enough for a
// drill.
func configYAML(hooks []Webhook) string {
	if len(hooks) == 0 {
		return "{}\n"
	}
	var b strings.Builder
	b.WriteString("notify:\n  retry_min: 200ms\n  retry_max: 2s\n  ack_wait: 10s\n  webhooks:\n")
	for _, w := range hooks {
		timeout, giveUp := w.Timeout, w.GiveUpAfter
		if timeout == 0 {
			timeout = 2 * time.Second
		}
		if giveUp == 0 {
			giveUp = time.Hour
		}
		fmt.Fprintf(&b, "    - name: %s\n      url: %s\n      secret: %s\n      allow_http: true\n      allow_private: true\n"+
			"      timeout: %s\n      give_up_after: %s\n      concurrency: 4\n",
			w.Name, w.Receiver.URL(), w.Receiver.Secret(), timeout, giveUp)
	}
	return b.String()
}

// Procs returns the processes that run.
func (p *Pipeline) Procs() []*Proc {
	out := []*Proc{p.Ingest, p.Detect}
	if p.Notify != nil {
		out = append(out, p.Notify)
	}
	return out
}

// Start starts every process.
func (p *Pipeline) Start() error {
	for _, pr := range p.Procs() {
		if err := pr.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Ready returns nil when every process answers /readyz with 200.
func (p *Pipeline) Ready(ctx context.Context) error {
	var errs []error
	for _, pr := range p.Procs() {
		errs = append(errs, pr.Ready(ctx))
	}
	return errors.Join(errs...)
}

// Kill kills every process with SIGKILL.
func (p *Pipeline) Kill() error {
	var errs []error
	for _, pr := range p.Procs() {
		errs = append(errs, pr.Kill())
	}
	return errors.Join(errs...)
}

// Stop stops every process gracefully, in pipeline order.
func (p *Pipeline) Stop() error {
	var errs []error
	for _, pr := range p.Procs() {
		errs = append(errs, pr.Stop())
	}
	return errors.Join(errs...)
}

// CheckLogs returns an error naming each process whose log contains one
// of the secrets (pseudonyms in clear, webhook secrets): logs must never
// hold them.
func (p *Pipeline) CheckLogs(secrets ...string) error {
	var errs []error
	for _, pr := range p.Procs() {
		log, err := pr.Log()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i, s := range secrets {
			if s != "" && strings.Contains(log, s) {
				// Name the secret by its position only, never its value.
				errs = append(errs, fmt.Errorf("%s log contains secret %d of %d", pr.Name, i+1, len(secrets)))
			}
		}
	}
	return errors.Join(errs...)
}
