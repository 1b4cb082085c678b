package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// JobName is the deletion log's job name prefix for retention runs.
const JobName = "retention"

// mutationPoll is how often Run checks whether its mutations are done.
const mutationPoll = 200 * time.Millisecond

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
	Err        error
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
//  1. for each table (events, alerts, alert_status, webhook_deliveries), it
//     drops every partition whose whole span (a UTC day, or a month for
//     alert_status and webhook_deliveries) is older than the data set's
//     period, so a row lives at most one partition span past its period;
//  2. for alert_status and webhook_deliveries, whose partitions are months,
//     it also deletes the expired rows of the oldest live partition with a
//     mutation, so they too are gone within a day of expiring;
//  3. for each events type with a shorter period (event_types:), it deletes
//     that type's expired rows in the live partitions with a mutation.
//
// It waits for its mutations and appends each step, and one summary row
// (chstore.ActionRun), to deletion_log. A step that fails is logged and the
// run goes on with the next; the error returned joins every failure.
//
// With dryRun it only counts: it returns the steps it would take, with
// their row counts, and changes nothing, not even the deletion log (which
// records deletions, and a dry run deletes nothing). Dead letters are not
// handled here: their stream's max age enforces their period.
func Run(ctx context.Context, store *chstore.Store, cfg Config, now time.Time, dryRun bool) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("%w:\n%w", ErrInvalidConfig, err)
	}
	now = now.UTC()
	rep := Report{DryRun: dryRun, Now: now}
	if !dryRun {
		rep.Job = JobName + "-" + now.Format("20060102T150405Z") + "-" + randomHex(4)
	}
	started := time.Now()
	var errs []error
	step := func(st Step, apply func() (after uint64, err error)) {
		t0 := time.Now()
		if dryRun {
			st.RowsAfter = st.RowsBefore
		} else {
			st.RowsAfter, st.Err = apply()
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

	tables := map[string]string{
		DataSetEvents: chstore.TableEvents, DataSetAlerts: chstore.TableAlerts,
		DataSetAlertStatus: chstore.TableAlertStatus, DataSetWebhookDeliveries: chstore.TableWebhookDeliveries,
	}
	for _, ds := range DataSets {
		table, ok := tables[ds]
		if !ok {
			continue
		}
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
			// Rows before liveFrom are in partitions this run drops (or
			// would drop, in a dry run).
			liveFrom time.Time
		)
		for _, p := range parts {
			monthly = monthly || p.End.Sub(p.Start) > Day
			if !p.Expired(cutoff) {
				continue
			}
			liveFrom = p.End
			step(Step{DataSet: ds, Action: chstore.ActionDropPartition, Policy: policy, Target: p.ID, RowsBefore: p.Rows},
				func() (uint64, error) { return dropPartition(ctx, store, table, p.ID) })
		}
		if monthly {
			f := chstore.RowFilter{Table: table, From: liveFrom, Before: cutoff}
			deleteRows(ctx, store, ds, policy, f, step, &errs)
		}
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
		f := chstore.RowFilter{Table: chstore.TableEvents, Type: t, From: liveFrom, Before: cutoff}
		deleteRows(ctx, store, DataSetEvents, "event_types."+string(t)+" "+period.String(), f, step, &errs)
	}

	if !dryRun {
		sum := chstore.DeletionLogRow{
			ID: rep.Job + "-000", Job: rep.Job, Policy: "retention", DataSet: "*", Action: chstore.ActionRun,
			Target: fmt.Sprintf("%d steps", len(rep.Steps)), RowsBefore: rep.RowsDeleted(),
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

// deleteRows counts the rows f selects and, when there are any, adds a step
// that deletes them with a mutation and waits for it.
func deleteRows(ctx context.Context, store *chstore.Store, ds, policy string, f chstore.RowFilter,
	step func(Step, func() (uint64, error)), errs *[]error) {
	n, err := store.CountMatching(ctx, f)
	if err != nil {
		*errs = append(*errs, err)
		return
	}
	if n == 0 {
		return
	}
	step(Step{DataSet: ds, Action: chstore.ActionDeleteRows, Policy: policy, Target: f.String(), RowsBefore: n},
		func() (uint64, error) {
			if err := store.DeleteRows(ctx, f); err != nil {
				return n, err
			}
			if err := store.WaitMutations(ctx, f.Table, mutationPoll); err != nil {
				return n, err
			}
			return store.CountMatching(ctx, f)
		})
}

func dropPartition(ctx context.Context, store *chstore.Store, table, id string) (uint64, error) {
	if err := store.DropPartition(ctx, table, id); err != nil {
		return 0, err
	}
	parts, err := store.Partitions(ctx, table)
	if err != nil {
		return 0, err
	}
	for _, p := range parts {
		if p.ID == id {
			return p.Rows, nil
		}
	}
	return 0, nil
}

func logRow(id, job string, st Step, started, finished time.Time) chstore.DeletionLogRow {
	r := chstore.DeletionLogRow{
		ID: id, Job: job, Policy: st.Policy, DataSet: st.DataSet, Action: st.Action,
		Target: st.Target, RowsBefore: st.RowsBefore, RowsAfter: st.RowsAfter,
		Started: started, Finished: finished, Outcome: chstore.OutcomeOK,
	}
	if st.Err != nil {
		r.Outcome, r.Error = chstore.OutcomeFailed, st.Err.Error()
	}
	return r
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}
