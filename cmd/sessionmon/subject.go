package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/retention"
)

func eraseCommand() *command {
	return &command{
		name:  "erase",
		short: "erase everything stored about a data subject",
		usage: "sessionmon erase --subject PSEUDONYM [options]",
		summary: `Erase a data subject: delete their events and alerts, and the status changes
and webhook deliveries of those alerts, from ClickHouse, wait until the
deletions are done, and record them in deletion_log (which names the subject
only by the SHA-256 of the pseudonym). Safe to run again. Events still in
the NATS stream expire with --stream-max-age.`,
		options: join([]string{"log-format", "log-level", "clickhouse-dsn", "subject", "nats-listen"}, natsOptions, secretOptions),
		run:     runErase,
	}
}

func exportCommand() *command {
	return &command{
		name:  "export",
		short: "export everything stored about a data subject as NDJSON",
		usage: "sessionmon export --subject PSEUDONYM [--output FILE] [options]",
		summary: `Export everything stored in ClickHouse for a data subject as NDJSON: one
{"data_set": ..., "row": {...}} object a line, events, alerts, alert status
changes and webhook deliveries, each row once.`,
		options: join([]string{"log-format", "log-level", "clickhouse-dsn", "subject", "output"}, secretOptions),
		run:     runExport,
	}
}

func openSubjectStore(ctx context.Context, e *env) (*chstore.Store, error) {
	if e.cfg.SubjectRequest.Subject == "" {
		return nil, errors.New("--subject is required")
	}
	store, err := chstore.Open(ctx, e.cfg.ClickHouseURL(), e.logger)
	if err != nil {
		return nil, err
	}
	// deletion_log arrives with migration 005.
	if _, err := store.Migrate(ctx); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return store, nil
}

func runErase(ctx context.Context, e *env) error {
	store, err := openSubjectStore(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	before, err := retention.Erase(ctx, store, e.cfg.SubjectRequest.Subject)
	if err != nil {
		return err
	}
	if before.Total() == 0 {
		fmt.Fprintln(e.stdout, "nothing stored for this subject")
	}
	for _, t := range []string{chstore.TableEvents, chstore.TableAlerts, chstore.TableAlertStatus, chstore.TableWebhookDeliveries} {
		if before.Total() > 0 {
			fmt.Fprintf(e.stdout, "%s: %d rows erased\n", t, before[t])
		}
	}
	fmt.Fprintln(e.stdout, purgeDetectorState(ctx, e))
	return nil
}

// purgeDetectorState asks the running detectors (serve, or detect) to drop
// the subject's in-memory state, and says what happened. Without running
// detectors there is nothing to purge: their state lives only in memory.
func purgeDetectorState(ctx context.Context, e *env) string {
	nc, err := natsconn.Connect(e.cfg.NATS.ClientURL(), e.cfg.NATS, "sessionmon-erase", e.logger)
	if err != nil {
		return "detector state: not purged, NATS not reachable (state held by a running detector expires with its windows)"
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	reply, err := nc.RequestWithContext(ctx, forgetSubject, []byte(e.cfg.SubjectRequest.Subject))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return "detector state: no detector is running, nothing to purge"
	case err != nil:
		return "detector state: not purged: " + err.Error()
	default:
		return "detector state: " + string(reply.Data)
	}
}

func runExport(ctx context.Context, e *env) error {
	store, err := openSubjectStore(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	d, err := store.SubjectData(ctx, e.cfg.SubjectRequest.Subject)
	if err != nil {
		return err
	}
	out := e.stdout
	if e.cfg.Output != "" && e.cfg.Output != "-" {
		f, err := os.Create(e.cfg.Output)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		out = f
	}
	return writeSubjectData(out, d)
}

// exportLine is one line of `sessionmon export`.
type exportLine struct {
	DataSet string         `json:"data_set"`
	Row     map[string]any `json:"row"`
}

func writeSubjectData(out io.Writer, d chstore.SubjectData) error {
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	write := func(ds string, rows any) error {
		v := reflect.ValueOf(rows)
		for i := range v.Len() {
			if err := enc.Encode(exportLine{DataSet: ds, Row: snakeFields(v.Index(i))}); err != nil {
				return fmt.Errorf("export %s: %w", ds, err)
			}
		}
		return nil
	}
	if err := errors.Join(
		write(chstore.TableEvents, d.Events),
		write(chstore.TableAlerts, d.Alerts),
		write(chstore.TableAlertStatus, d.AlertStatus),
		write(chstore.TableWebhookDeliveries, d.WebhookDeliveries),
	); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	return nil
}

// snakeFields maps a row struct to its fields under snake_case keys
// (TimeMS: time_ms); durations become whole milliseconds (latency_ms).
func snakeFields(v reflect.Value) map[string]any {
	out := make(map[string]any, v.NumField())
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		key, val := snakeCase(f.Name), v.Field(i).Interface()
		if d, ok := val.(time.Duration); ok {
			key, val = key+"_ms", d.Milliseconds()
		}
		out[key] = val
	}
	return out
}

func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) &&
			(!unicode.IsUpper(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
