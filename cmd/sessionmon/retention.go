package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

const retentionUsage = "usage: sessionmon retention run [--dry-run] | sessionmon retention report"

func retentionCommand() *command {
	return &command{
		name:  "retention",
		short: "enforce retention periods (run, report)",
		usage: "sessionmon retention run [--dry-run] | report [options]",
		summary: `Enforce storage limitation. 'run' deletes what is past its retention period
(the retention: section of the config file): whole expired day or month
partitions, then expired rows of event types with shorter periods, and
records every step in the deletion_log table; with --dry-run it prints what
it would delete and changes nothing. 'report' prints the record of
processing: each data set, its fields, its period, the oldest data present
and the last successful run. A run takes the retention lock in NATS (the
embedded server of a running 'sessionmon serve', or --nats-url), so it never
overlaps with the scheduled job or another run.`,
		options: join([]string{"log-format", "log-level", "dry-run", "dlq-max-age", "nats-listen"}, natsOptions, clickhouseOptions, secretOptions),
		run:     runRetention,
	}
}

func runRetention(ctx context.Context, e *env) error {
	if len(e.args) != 1 || (e.args[0] != "run" && e.args[0] != "report") {
		return errors.New(retentionUsage)
	}
	cfg, err := retention.ParseConfig(e.cfg.RetentionYAML)
	if err != nil {
		return err
	}
	if p := cfg.Periods[retention.DataSetDeadLetters]; e.cfg.DLQ.MaxAge > time.Duration(p) {
		return fmt.Errorf("%w: retention.periods.dead_letters is %s but %s keeps dead letters %s",
			retention.ErrInvalidConfig, p, config.EnvName("dlq-max-age"), retention.Period(e.cfg.DLQ.MaxAge))
	}
	store, _, err := openRetentionStore(ctx, e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if e.args[0] == "report" {
		return printRetentionReport(ctx, e.stdout, store, cfg, e.cfg.DLQ.MaxAge)
	}
	if !e.cfg.RetentionRun.DryRun {
		release, err := retentionLock(ctx, e)
		if err != nil {
			return err
		}
		defer release()
	}
	start := time.Now()
	rep, err := retention.Run(ctx, store, cfg, time.Now(), e.cfg.RetentionRun.DryRun)
	if perr := printRetentionRun(e.stdout, rep); perr != nil {
		return errors.Join(err, perr)
	}
	if err != nil {
		return err
	}
	e.logger.InfoContext(ctx, "retention run done", "job", rep.Job, "dry_run", rep.DryRun,
		"steps", len(rep.Steps), "rows_deleted", rep.RowsDeleted(), "rows_kept_under_legal_hold", rep.RowsKept(),
		"duration", time.Since(start))
	return nil
}

func printRetentionRun(out io.Writer, rep retention.Report) error {
	for _, sk := range rep.Skipped {
		fmt.Fprintf(out, "%s: skipped, %s\n", sk.DataSet, sk.Reason)
	}
	switch {
	case len(rep.Steps) == 0:
		fmt.Fprintln(out, "nothing is past its retention period")
		return nil
	case rep.DryRun:
		fmt.Fprintln(out, "dry run: nothing was deleted; a run would:")
	default:
		fmt.Fprintf(out, "job %s\n", rep.Job)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DATA SET\tACTION\tTARGET\tROWS BEFORE\tROWS AFTER\tKEPT (LEGAL HOLD)\tPOLICY\tERROR")
	for _, s := range rep.Steps {
		msg := ""
		if s.Err != nil {
			msg = s.Err.Error()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.DataSet, s.Action, s.Target, s.RowsBefore, s.RowsAfter, s.Kept, s.Policy, msg)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if n := rep.RowsKept(); n > 0 {
		fmt.Fprintf(out, "%d rows kept under legal hold (sessionmon hold list)\n", n)
	}
	return nil
}

func printRetentionReport(ctx context.Context, out io.Writer, store *chstore.Store, cfg retention.Config, dlqMaxAge time.Duration) error {
	fmt.Fprintf(out, "Record of processing: retention (ClickHouse database %s)\n", store.Database())
	fmt.Fprintf(out, "schedule: %q in %s; no period may exceed %s\n\n", cfg.Schedule, cfg.TimeZone, cfg.MaxPeriod)
	for _, ds := range retention.DataSets {
		fmt.Fprintf(out, "%s\n  period: %s\n", ds, cfg.Periods[ds])
		if ds == retention.DataSetEvents {
			types := make([]schemas.Type, 0, len(cfg.EventTypes))
			for t := range cfg.EventTypes {
				types = append(types, t)
			}
			slices.Sort(types)
			for _, t := range types {
				fmt.Fprintf(out, "  period of %s: %s\n", t, cfg.EventTypes[t])
			}
			for _, app := range slices.Sorted(maps.Keys(cfg.Apps)) {
				fmt.Fprintf(out, "  period of app %s: %s\n", app, cfg.Apps[app])
			}
		}
		table, ok := retention.Tables[ds]
		if !ok {
			fmt.Fprintf(out, "  stored in: JetStream stream SESSIONMON_DLQ, kept %s (%s), values that look like personal data redacted\n\n",
				retention.Period(dlqMaxAge), config.EnvName("dlq-max-age"))
			continue
		}
		fmt.Fprintf(out, "  stored in: ClickHouse table %s.%s\n", store.Database(), table)
		exists, err := store.TableExists(ctx, table)
		if err != nil {
			return err
		}
		if !exists {
			fmt.Fprint(out, "  table not created yet: nothing stored\n\n")
			continue
		}
		oldest, ok, err := store.OldestRow(ctx, table)
		if err != nil {
			return err
		}
		if ok {
			fmt.Fprintf(out, "  oldest data present: %s\n", oldest.Format(time.RFC3339))
		} else {
			fmt.Fprintln(out, "  oldest data present: none (empty)")
		}
		cols, err := store.TableColumns(ctx, table)
		if err != nil {
			return err
		}
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		fmt.Fprintf(out, "  fields: %s\n\n", strings.Join(names, ", "))
	}
	holds, err := store.ActiveLegalHolds(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "legal holds active: %d (their rows are kept past their periods; sessionmon hold list)\n", len(holds))
	last, ok, err := store.LastRun(ctx, chstore.OutcomeOK)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(out, "last successful run: never")
		return nil
	}
	fmt.Fprintf(out, "last successful run: %s at %s, %s, %d rows deleted\n",
		last.Job, last.Started.Format(time.RFC3339), last.Target, last.RowsBefore)
	return nil
}

// retentionLock takes the lock the scheduled job takes, so that a run by
// hand never overlaps with it or with another run.
func retentionLock(ctx context.Context, e *env) (func(), error) {
	nc, err := natsconn.Connect(e.cfg.NATS.ClientURL(), e.cfg.NATS, "sessionmon-retention", e.logger)
	if err != nil {
		return nil, fmt.Errorf("retention lock: %w", err)
	}
	release, err := holdLock(ctx, nc, retention.RetentionLock, retention.LockTTL)
	if errors.Is(err, natsconn.ErrLocked) {
		return nil, errors.New("another process is running retention now; nothing done")
	}
	return release, err
}
