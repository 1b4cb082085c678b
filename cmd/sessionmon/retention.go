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
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

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
overlaps with the scheduled job or another run. 'run' reports its progress
on standard error (each data set and step started and finished with its
rows and duration, and every 10 s while it waits for a ClickHouse
mutation: one line each, or one updating line on a terminal) and ends
with a summary line there; standard output holds the result alone.`,
		options: join([]string{"log-format", "log-level", "dry-run", "dlq-max-age", "format"}, natsOptions, clickhouseOptions, secretOptions),
		words:   true,
		run:     runRetention,
	}
}

func runRetention(ctx context.Context, e *env) error {
	if err := wantWord(e.args, "run", "report"); err != nil {
		return err
	}
	cfg, err := parseRetention(e.cfg)
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
		r, err := buildRetentionReport(ctx, store, cfg, e.cfg.DLQ.MaxAge)
		if err != nil {
			return err
		}
		if formatJSON(e) {
			return printJSON(e.stdout, r)
		}
		printRetentionReport(e.stdout, r)
		return nil
	}
	if !e.cfg.RetentionRun.DryRun {
		release, err := retentionLock(ctx, e)
		if err != nil {
			return err
		}
		defer release()
	}
	start := time.Now()
	// Progress and the summary go to stderr: stdout keeps the result alone
	// (-o json stays one JSON document).
	pr := progress.ForWriter(e.stderr, "retention run")
	rep, err := retention.Run(ctx, store, cfg, time.Now(), e.cfg.RetentionRun.DryRun, retention.WithProgress(pr))
	pr.Done(retentionRunSummary(rep, time.Since(start)))
	printRun := printRetentionRun
	if formatJSON(e) {
		printRun = printRetentionRunJSON
	}
	if perr := printRun(e.stdout, rep); perr != nil {
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

// retentionRunSummary is the last line retention run writes to stderr.
func retentionRunSummary(rep retention.Report, took time.Duration) string {
	failed := 0
	for _, s := range rep.Steps {
		if s.Err != nil {
			failed++
		}
	}
	if rep.DryRun {
		var due uint64
		for _, s := range rep.Steps {
			due += s.RowsBefore
		}
		return fmt.Sprintf("retention run (dry run): %d steps would delete %d rows, %d data sets skipped; nothing deleted, in %s",
			len(rep.Steps), due, len(rep.Skipped), progress.Round(took))
	}
	return fmt.Sprintf("retention run: %d steps, %d rows deleted, %d rows kept under legal hold, %d data sets skipped, %d steps failed, in %s",
		len(rep.Steps), rep.RowsDeleted(), rep.RowsKept(), len(rep.Skipped), failed, progress.Round(took))
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

// retentionRunJSON is retention run -o json: the job and the rows of the
// table.
type retentionRunJSON struct {
	Job     string              `json:"job"`
	DryRun  bool                `json:"dry_run"`
	Skipped []retentionSkipJSON `json:"skipped"`
	Steps   []retentionStepJSON `json:"steps"`
	// RowsKept counts the rows kept under legal hold.
	RowsKept uint64 `json:"rows_kept_legal_hold"`
}

type retentionSkipJSON struct {
	DataSet string `json:"data_set"`
	Reason  string `json:"reason"`
}

type retentionStepJSON struct {
	DataSet    string `json:"data_set"`
	Action     string `json:"action"`
	Target     string `json:"target"`
	RowsBefore uint64 `json:"rows_before"`
	RowsAfter  uint64 `json:"rows_after"`
	Kept       uint64 `json:"kept_legal_hold"`
	Policy     string `json:"policy"`
	Error      string `json:"error"`
}

func printRetentionRunJSON(out io.Writer, rep retention.Report) error {
	r := retentionRunJSON{Job: rep.Job, DryRun: rep.DryRun, Skipped: []retentionSkipJSON{}, Steps: []retentionStepJSON{}, RowsKept: rep.RowsKept()}
	for _, sk := range rep.Skipped {
		r.Skipped = append(r.Skipped, retentionSkipJSON{DataSet: sk.DataSet, Reason: sk.Reason})
	}
	for _, st := range rep.Steps {
		msg := ""
		if st.Err != nil {
			msg = st.Err.Error()
		}
		r.Steps = append(r.Steps, retentionStepJSON{DataSet: st.DataSet, Action: st.Action, Target: st.Target,
			RowsBefore: st.RowsBefore, RowsAfter: st.RowsAfter, Kept: st.Kept, Policy: st.Policy, Error: msg})
	}
	return printJSON(out, r)
}

// retentionReport is what retention report prints: the record of
// processing of each data set (-o json prints it as is).
type retentionReport struct {
	Database         string             `json:"database"`
	Schedule         string             `json:"schedule"`
	TimeZone         string             `json:"time_zone"`
	MaxPeriod        string             `json:"max_period"`
	DataSets         []retentionDataSet `json:"data_sets"`
	LegalHoldsActive int                `json:"legal_holds_active"`
	LastRun          *retentionLastRun  `json:"last_successful_run"`
}

// retentionDataSet is one data set of the report: in a ClickHouse table
// (Table) or in the dead-letter stream (Stream).
type retentionDataSet struct {
	Name   string `json:"name"`
	Period string `json:"period"`
	// EventTypePeriods and AppPeriods override Period for the events.
	EventTypePeriods map[string]string `json:"event_type_periods,omitempty"`
	AppPeriods       map[string]string `json:"app_periods,omitempty"`
	Table            string            `json:"table,omitempty"`
	TableExists      bool              `json:"table_exists"`
	// Oldest is the time of the oldest row (nil: none).
	Oldest *time.Time `json:"oldest_data"`
	Fields []string   `json:"fields"`
	Stream string     `json:"stream,omitempty"`
	// StreamMaxAge is how long the stream keeps a message.
	StreamMaxAge string `json:"stream_max_age,omitempty"`
}

type retentionLastRun struct {
	Job         string    `json:"job"`
	Started     time.Time `json:"started"`
	Target      string    `json:"target"`
	RowsDeleted uint64    `json:"rows_deleted"`
}

func buildRetentionReport(ctx context.Context, store *chstore.Store, cfg retention.Config, dlqMaxAge time.Duration) (retentionReport, error) {
	r := retentionReport{Database: store.Database(), Schedule: cfg.Schedule, TimeZone: cfg.TimeZone, MaxPeriod: cfg.MaxPeriod.String(),
		DataSets: []retentionDataSet{}}
	for _, ds := range retention.DataSets {
		d := retentionDataSet{Name: ds, Period: cfg.Periods[ds].String(), Fields: []string{}}
		if ds == retention.DataSetEvents {
			for t, p := range cfg.EventTypes {
				if d.EventTypePeriods == nil {
					d.EventTypePeriods = map[string]string{}
				}
				d.EventTypePeriods[string(t)] = p.String()
			}
			for app, p := range cfg.Apps {
				if d.AppPeriods == nil {
					d.AppPeriods = map[string]string{}
				}
				d.AppPeriods[app] = p.String()
			}
		}
		table, ok := retention.Tables[ds]
		if !ok {
			d.Stream, d.StreamMaxAge = schemas.DLQStream, retention.Period(dlqMaxAge).String()
			r.DataSets = append(r.DataSets, d)
			continue
		}
		d.Table = table
		exists, err := store.TableExists(ctx, table)
		if err != nil {
			return r, err
		}
		d.TableExists = exists
		if exists {
			oldest, ok, err := store.OldestRow(ctx, table)
			if err != nil {
				return r, err
			}
			if ok {
				o := oldest.UTC()
				d.Oldest = &o
			}
			cols, err := store.TableColumns(ctx, table)
			if err != nil {
				return r, err
			}
			for _, c := range cols {
				d.Fields = append(d.Fields, c.Name)
			}
		}
		r.DataSets = append(r.DataSets, d)
	}
	holds, err := store.ActiveLegalHolds(ctx)
	if err != nil {
		return r, err
	}
	r.LegalHoldsActive = len(holds)
	last, ok, err := store.LastRun(ctx, chstore.OutcomeOK)
	if err != nil {
		return r, err
	}
	if ok {
		r.LastRun = &retentionLastRun{Job: last.Job, Started: last.Started.UTC(), Target: last.Target, RowsDeleted: last.RowsBefore}
	}
	return r, nil
}

func printRetentionReport(out io.Writer, r retentionReport) {
	fmt.Fprintf(out, "Record of processing: retention (ClickHouse database %s)\n", r.Database)
	fmt.Fprintf(out, "schedule: %q in %s; no period may exceed %s\n\n", r.Schedule, r.TimeZone, r.MaxPeriod)
	for _, d := range r.DataSets {
		fmt.Fprintf(out, "%s\n  period: %s\n", d.Name, d.Period)
		for _, t := range slices.Sorted(maps.Keys(d.EventTypePeriods)) {
			fmt.Fprintf(out, "  period of %s: %s\n", t, d.EventTypePeriods[t])
		}
		for _, app := range slices.Sorted(maps.Keys(d.AppPeriods)) {
			fmt.Fprintf(out, "  period of app %s: %s\n", app, d.AppPeriods[app])
		}
		if d.Table == "" {
			fmt.Fprintf(out, "  stored in: JetStream stream %s, kept %s (%s), values that look like personal data redacted\n\n",
				d.Stream, d.StreamMaxAge, config.EnvName("dlq-max-age"))
			continue
		}
		fmt.Fprintf(out, "  stored in: ClickHouse table %s.%s\n", r.Database, d.Table)
		if !d.TableExists {
			fmt.Fprint(out, "  table not created yet: nothing stored\n\n")
			continue
		}
		if d.Oldest != nil {
			fmt.Fprintf(out, "  oldest data present: %s\n", d.Oldest.Format(time.RFC3339))
		} else {
			fmt.Fprintln(out, "  oldest data present: none (empty)")
		}
		fmt.Fprintf(out, "  fields: %s\n\n", strings.Join(d.Fields, ", "))
	}
	fmt.Fprintf(out, "legal holds active: %d (their rows are kept past their periods; sessionmon hold list)\n", r.LegalHoldsActive)
	if r.LastRun == nil {
		fmt.Fprintln(out, "last successful run: never")
		return
	}
	fmt.Fprintf(out, "last successful run: %s at %s, %s, %d rows deleted\n",
		r.LastRun.Job, r.LastRun.Started.Format(time.RFC3339), r.LastRun.Target, r.LastRun.RowsDeleted)
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
