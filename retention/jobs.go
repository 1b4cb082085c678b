package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/schemas"
)

// JobName is the deletion log's job name prefix for retention runs.
const JobName = "retention"

// mutationPoll is how often Run checks whether its mutations are done.
const mutationPoll = 200 * time.Millisecond

// waitNote is what a step says while a mutation runs.
const waitNote = "waiting for the ClickHouse mutation"

// RunOption configures Run.
type RunOption func(*runOptions)

type runOptions struct {
	progress  progress.Reporter
	heartbeat time.Duration
}

// WithProgress makes Run report to r as it goes: each data set and each
// step started and finished, with its rows and the time it took, and a
// heartbeat every progress.HeartbeatInterval while it waits for a
// mutation. A dry run reports each step's rows as Advanced events.
func WithProgress(r progress.Reporter) RunOption {
	return func(o *runOptions) { o.progress = r }
}

// Step is one thing a run did, or would do in a dry run.
type Step struct {
	DataSet string
	// Action is chstore.ActionDropPartition or chstore.ActionDeleteRows.
	Action string
	// Policy names the rule, e.g. "periods.events 90d".
	Policy string
	// Target is the partition id or the deletion predicate.
	Target string
	// RowsBefore counts the rows the step removes, before it ran;
	// RowsAfter what is left of them afterwards (0 on success; equal to
	// RowsBefore in a dry run). Both count rows as stored, before
	// deduplication.
	RowsBefore uint64
	RowsAfter  uint64
	// Kept counts the rows that were due for deletion and were kept
	// because their subject is under legal hold.
	Kept uint64
	Err  error
}

// Report is what a run did.
type Report struct {
	// Job identifies the run in the deletion log ("" in a dry run). Its
	// rows there have ids Job-000 (the summary, chstore.ActionRun) and
	// Job-001, Job-002, ... (the steps, in order).
	Job    string
	DryRun bool
	Now    time.Time
	Steps  []Step
	// Skipped lists the data sets the run left alone, and why (a table
	// that does not exist yet).
	Skipped []Skip
}

// Skip is a data set a run left alone.
type Skip struct {
	DataSet string
	Reason  string
}

// RowsKept sums the rows kept under legal hold.
func (r Report) RowsKept() uint64 {
	var n uint64
	for _, s := range r.Steps {
		n += s.Kept
	}
	return n
}

// RowsDeleted sums the rows the steps removed.
func (r Report) RowsDeleted() uint64 {
	var n uint64
	for _, s := range r.Steps {
		n += s.RowsBefore - min(s.RowsAfter, s.RowsBefore)
	}
	return n
}

// Run applies cfg to the ClickHouse tables of store as of now:
//
//  1. for each table (events, alerts, alert_status, webhook_deliveries,
//     audit_log), it drops every partition whose whole span (a UTC day, or
//     a month for alert_status, webhook_deliveries and audit_log) is older
//     than the data set's period, so a row lives at most one partition span
//     past its period;
//  2. for the tables partitioned by month, it also deletes the expired rows
//     of the oldest live partition with a mutation, so they too are gone
//     within a day of expiring;
//  3. for each events type with a shorter period (event_types:), it deletes
//     that type's expired rows in the live partitions with a mutation.
//
// Rows of subjects under legal hold (their events and alerts, and the
// status changes and webhook deliveries of those alerts) are kept: an
// expired partition that holds some is emptied with a mutation that leaves
// them out instead of being dropped, every mutation leaves them out, and
// each step counts them in Kept (the deletion log says "N rows kept under
// legal hold"). A table that does not exist yet (audit_log, before the
// dashboard's migration) is skipped and listed in Report.Skipped.
//
// It waits for its mutations, each at most cfg.MutationTimeout (a step
// that times out fails), and appends each step, and one summary row
// (chstore.ActionRun), to deletion_log. A step that fails is logged and the
// run goes on with the next; the error returned joins every failure. When
// the legal holds cannot be read, it deletes nothing and fails.
//
// With dryRun it only counts: it returns the steps it would take, with
// their row counts, and changes nothing, not even the deletion log (which
// records deletions, and a dry run deletes nothing). Dead letters are not
// handled here: their stream's max age enforces their period.
func Run(ctx context.Context, store *chstore.Store, cfg Config, now time.Time, dryRun bool, opts ...RunOption) (Report, error) {
	o := runOptions{heartbeat: progress.HeartbeatInterval}
	for _, opt := range opts {
		opt(&o)
	}
	pr := progress.OrNop(o.progress)
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	now = now.UTC()
	rep := Report{DryRun: dryRun, Now: now}
	h, err := heldKeys(ctx, store)
	if err != nil {
		return rep, fmt.Errorf("retention run: %w", err)
	}
	if !dryRun {
		rep.Job = JobName + "-" + now.Format("20060102T150405Z") + "-" + randomHex(4)
	}
	started := time.Now()
	var errs []error
	step := func(st Step, apply func() (after uint64, err error)) {
		t0 := time.Now()
		name := st.DataSet + ": " + st.Action + " " + st.Target
		if dryRun {
			st.RowsAfter = st.RowsBefore
			pr.Report(progress.Event{Kind: progress.Advanced, Step: name, Done: int64(st.RowsBefore), Unit: "rows to delete"})
		} else {
			_, _ = progress.Track(pr, name, "rows", int64(st.RowsBefore), waitNote, o.heartbeat, func() (int64, error) {
				st.RowsAfter, st.Err = apply()
				return int64(st.RowsBefore - min(st.RowsAfter, st.RowsBefore)), st.Err
			})
		}
		rep.Steps = append(rep.Steps, st)
		if st.Err != nil {
			errs = append(errs, st.Err)
		}
		if !dryRun {
			id := fmt.Sprintf("%s-%03d", rep.Job, len(rep.Steps))
			if err := store.InsertDeletionLog(ctx, []chstore.DeletionLogRow{logRow(id, rep.Job, st, t0, time.Now())}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	d := deleter{store: store, timeout: time.Duration(cfg.MutationTimeout), step: step, errs: &errs}

	for _, ds := range DataSets {
		table, ok := Tables[ds]
		if !ok {
			continue
		}
		exists, err := store.TableExists(ctx, table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !exists {
			rep.Skipped = append(rep.Skipped, Skip{DataSet: ds, Reason: "table not created yet"})
			pr.Report(progress.Event{Kind: progress.Skipped, Step: ds, Note: "table not created yet"})
			continue
		}
		dsStart, dsSteps := time.Now(), len(rep.Steps)
		pr.Report(progress.Event{Kind: progress.Started, Step: ds})
		period := cfg.Periods[ds]
		policy := "periods." + ds + " " + period.String()
		cutoff := now.Add(-time.Duration(period))
		parts, err := store.Partitions(ctx, table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var (
			monthly bool
			// Rows before liveFrom are in partitions this run drops or
			// empties (or would, in a dry run).
			liveFrom time.Time
		)
		for _, p := range parts {
			monthly = monthly || p.End.Sub(p.Start) > Day
			if !p.Expired(cutoff) {
				continue
			}
			liveFrom = p.End
			f := h.filter(chstore.RowFilter{Table: table, From: p.Start, Before: p.End})
			if d.holdsNone(ctx, f) {
				step(Step{DataSet: ds, Action: chstore.ActionDropPartition, Policy: policy, Target: p.ID, RowsBefore: p.Rows},
					func() (uint64, error) { return dropPartition(ctx, store, table, p.ID, d.timeout) })
				continue
			}
			d.deleteRows(ctx, ds, policy, f)
		}
		if monthly {
			d.deleteRows(ctx, ds, policy, h.filter(chstore.RowFilter{Table: table, From: liveFrom, Before: cutoff}))
		}
		pr.Report(dataSetDone(ds, rep.Steps[dsSteps:], dryRun, time.Since(dsStart)))
	}

	types := make([]schemas.Type, 0, len(cfg.EventTypes))
	for t := range cfg.EventTypes {
		types = append(types, t)
	}
	slices.Sort(types)
	// Rows before liveFrom are in partitions step 1 dropped (or would drop).
	liveFrom := now.Add(-time.Duration(cfg.Periods[DataSetEvents])).Truncate(Day)
	for _, t := range types {
		period := cfg.EventTypes[t]
		cutoff := now.Add(-time.Duration(period))
		if !cutoff.After(liveFrom) {
			continue
		}
		f := h.filter(chstore.RowFilter{Table: chstore.TableEvents, Type: t, From: liveFrom, Before: cutoff})
		d.deleteRows(ctx, DataSetEvents, "event_types."+string(t)+" "+period.String(), f)
	}
	for _, app := range slices.Sorted(maps.Keys(cfg.Apps)) {
		period := cfg.Apps[app]
		cutoff := now.Add(-time.Duration(period))
		if !cutoff.After(liveFrom) {
			continue
		}
		f := h.filter(chstore.RowFilter{Table: chstore.TableEvents, App: app, From: liveFrom, Before: cutoff})
		d.deleteRows(ctx, DataSetEvents, "apps."+app+" "+period.String(), f)
	}

	if !dryRun {
		sum := chstore.DeletionLogRow{
			ID: rep.Job + "-000", Job: rep.Job, Policy: "retention", DataSet: "*", Action: chstore.ActionRun,
			Target: fmt.Sprintf("%d steps", len(rep.Steps)) + keptNote(rep.RowsKept()), RowsBefore: rep.RowsDeleted(),
			Started: started, Finished: time.Now(), Outcome: chstore.OutcomeOK,
		}
		if err := errors.Join(errs...); err != nil {
			sum.Outcome, sum.Error = chstore.OutcomeFailed, err.Error()
		}
		if err := store.InsertDeletionLog(ctx, []chstore.DeletionLogRow{sum}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("retention run: %w", err)
	}
	return rep, nil
}

// dataSetDone is the Finished event of a data set whose steps were steps.
func dataSetDone(ds string, steps []Step, dryRun bool, elapsed time.Duration) progress.Event {
	ev := progress.Event{Kind: progress.Finished, Step: ds, Unit: "rows deleted", Elapsed: elapsed,
		Note: fmt.Sprintf("%d steps", len(steps))}
	for _, st := range steps {
		if dryRun {
			ev.Done += int64(st.RowsBefore)
		} else {
			ev.Done += int64(st.RowsBefore - min(st.RowsAfter, st.RowsBefore))
		}
	}
	if dryRun {
		ev.Unit = "rows to delete"
	}
	return ev
}

// held are the keys of the rows under legal hold.
type held struct {
	subjects []string
	alertIDs []string
}

func heldKeys(ctx context.Context, store *chstore.Store) (held, error) {
	holds, err := store.ActiveLegalHolds(ctx)
	if err != nil {
		return held{}, err
	}
	var h held
	for _, x := range holds {
		h.subjects = append(h.subjects, x.Subject)
	}
	if h.alertIDs, err = store.AlertIDsOfSubjects(ctx, h.subjects); err != nil {
		return held{}, err
	}
	return h, nil
}

// filter leaves the held rows out of f.
func (h held) filter(f chstore.RowFilter) chstore.RowFilter {
	switch f.Table {
	case chstore.TableEvents, chstore.TableAlerts:
		f.ExceptSubjects = h.subjects
	case chstore.TableAlertStatus, chstore.TableWebhookDeliveries:
		f.ExceptAlertIDs = h.alertIDs
	}
	return f
}

func excludes(f chstore.RowFilter) bool { return len(f.ExceptSubjects)+len(f.ExceptAlertIDs) > 0 }

// deleter runs the mutation steps of a run.
type deleter struct {
	store   *chstore.Store
	timeout time.Duration
	step    func(Step, func() (uint64, error))
	errs    *[]error
}

// holdsNone reports whether f, which leaves out held rows, selects every
// row it would select without holds; on error it says false, so that the
// caller takes the careful path.
func (d deleter) holdsNone(ctx context.Context, f chstore.RowFilter) bool {
	if !excludes(f) {
		return true
	}
	_, kept, err := d.count(ctx, f)
	return err == nil && kept == 0
}

// count returns the rows f selects and those it leaves out because they
// are held.
func (d deleter) count(ctx context.Context, f chstore.RowFilter) (n, kept uint64, err error) {
	if n, err = d.store.CountMatching(ctx, f); err != nil || !excludes(f) {
		return n, 0, err
	}
	all, err := d.store.CountMatching(ctx, f.Held())
	if err != nil {
		return 0, 0, err
	}
	return n, all - min(n, all), nil
}

// deleteRows counts the rows f selects and, when there are any, adds a step
// that deletes them with a mutation and waits for it. Rows left out
// because they are held are counted in the step's Kept; when nothing else
// is due, the step only records them (ActionKeepHeld).
func (d deleter) deleteRows(ctx context.Context, ds, policy string, f chstore.RowFilter) {
	n, kept, err := d.count(ctx, f)
	if err != nil {
		*d.errs = append(*d.errs, err)
		return
	}
	switch {
	case n == 0 && kept == 0:
		return
	case n == 0:
		d.step(Step{DataSet: ds, Action: chstore.ActionKeepHeld, Policy: policy, Target: f.String(), Kept: kept},
			func() (uint64, error) { return 0, nil })
		return
	}
	d.step(Step{DataSet: ds, Action: chstore.ActionDeleteRows, Policy: policy, Target: f.String(), RowsBefore: n, Kept: kept},
		func() (uint64, error) {
			if err := d.store.DeleteRows(ctx, f); err != nil {
				return n, err
			}
			if err := d.store.WaitMutations(ctx, f.Table, mutationPoll, d.timeout); err != nil {
				return n, err
			}
			return d.store.CountMatching(ctx, f)
		})
}

// dropPartition drops partition id of table and returns the rows left of
// it: on a cluster, on the server that holds the most, once every replica
// has dropped it or timeout has passed.
func dropPartition(ctx context.Context, store *chstore.Store, table, id string, timeout time.Duration) (uint64, error) {
	if err := store.DropPartition(ctx, table, id); err != nil {
		return 0, err
	}
	parts, err := store.Partitions(ctx, table)
	if err != nil {
		return 0, err
	}
	var left uint64
	for _, p := range parts {
		if p.ID == id {
			left = p.Rows
		}
	}
	if store.Cluster() == "" || left > 0 {
		return left, nil
	}
	// The shards dropped it; the other replicas follow from the
	// replication log.
	deadline := time.Now().Add(timeout)
	for {
		onReplicas, err := store.PartitionRowsOnReplicas(ctx, table, id)
		left = 0
		for _, n := range onReplicas {
			left = max(left, n)
		}
		if err == nil && left == 0 {
			return 0, nil
		}
		if !time.Now().Before(deadline) {
			if err == nil {
				err = fmt.Errorf("drop partition %s of %s: rows left on %d of the cluster's servers after %s", id, table, len(onReplicas), timeout)
			}
			return left, err
		}
		if !backoff.Sleep(ctx, mutationPoll) {
			return left, ctx.Err()
		}
	}
}

func logRow(id, job string, st Step, started, finished time.Time) chstore.DeletionLogRow {
	r := chstore.DeletionLogRow{
		ID: id, Job: job, Policy: st.Policy, DataSet: st.DataSet, Action: st.Action,
		Target: st.Target + keptNote(st.Kept), RowsBefore: st.RowsBefore, RowsAfter: st.RowsAfter,
		Started: started, Finished: finished, Outcome: chstore.OutcomeOK,
	}
	if st.Err != nil {
		r.Outcome, r.Error = chstore.OutcomeFailed, st.Err.Error()
	}
	return r
}

// keptNote is what the deletion log adds to a target when held rows were
// kept.
func keptNote(kept uint64) string {
	if kept == 0 {
		return ""
	}
	return fmt.Sprintf("; %d rows kept under legal hold", kept)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}
