package chstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sessionmon/sessionmon/schemas"
)

// Tables that retention manages. Every one has a time DateTime('UTC')
// column and is partitioned by toYYYYMMDD(time) or toYYYYMM(time).
const (
	TableEvents            = "events"
	TableAlerts            = "alerts"
	TableAlertStatus       = "alert_status"
	TableWebhookDeliveries = "webhook_deliveries"
)

// RetentionTables lists the tables retention manages, in processing order.
// TableAuditLog (audit.go) is the dashboard's; retention skips it while it
// does not exist (see TableExists).
var RetentionTables = []string{TableEvents, TableAlerts, TableAlertStatus, TableWebhookDeliveries, TableAuditLog}

// Deletion log actions (deletion_log.action).
const (
	ActionDropPartition = "drop_partition"
	ActionDeleteRows    = "delete_rows"
	// ActionKeepHeld records rows that were due for deletion and kept
	// because their subject is under legal hold, when nothing else of
	// the step's rows was deleted.
	ActionKeepHeld = "keep_held"
	ActionRun      = "run"
)

// Deletion log outcomes (deletion_log.outcome).
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
)

// maxDeletionErrorLen caps the stored error text.
const maxDeletionErrorLen = 500

// partitionID matches the ids of day (YYYYMMDD) and month (YYYYMM)
// partitions, the only ones DropPartition accepts: they are spliced into SQL.
var partitionID = regexp.MustCompile(`^[0-9]{6}([0-9]{2})?$`)

// Partition is one active partition of a table.
type Partition struct {
	// ID is the partition value, 20261125 (a day) or 202611 (a month).
	ID string
	// Start and End bound the times it holds: [Start, End), UTC.
	Start, End time.Time
	// Rows is the number of rows in its active parts (before
	// deduplication).
	Rows uint64
}

// Expired reports whether every time the partition can hold is before
// cutoff.
func (p Partition) Expired(cutoff time.Time) bool { return !p.End.After(cutoff) }

// ParsePartitionID returns the time span of a day or month partition id.
func ParsePartitionID(id string) (start, end time.Time, err error) {
	switch len(id) {
	case 8:
		start, err = time.Parse("20060102", id)
		end = start.AddDate(0, 0, 1)
	case 6:
		start, err = time.Parse("200601", id)
		end = start.AddDate(0, 1, 0)
	default:
		err = errors.New("want YYYYMMDD or YYYYMM")
	}
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: partition %q: %w", ErrInvalidArgument, id, err)
	}
	return start, end, nil
}

func checkRetentionTable(table string) error {
	if !slices.Contains(RetentionTables, table) {
		return fmt.Errorf("%w: table %q: want one of %v", ErrInvalidArgument, table, RetentionTables)
	}
	return nil
}

// Partitions returns the active partitions of table, oldest first, with
// their time spans and row counts. table is one of RetentionTables.
func (s *Store) Partitions(ctx context.Context, table string) ([]Partition, error) {
	if err := checkRetentionTable(table); err != nil {
		return nil, fmt.Errorf("partitions: %w", err)
	}
	// On a cluster, the parts of every shard (each partition's rows summed).
	rows, err := s.conn.Query(ctx, "SELECT partition, sum(rows) FROM "+s.systemTable(table, "parts")+
		" WHERE database = ? AND table = ? AND active GROUP BY partition ORDER BY partition", s.db, s.storageTable(table))
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	defer rows.Close()
	out := []Partition{}
	for rows.Next() {
		var p Partition
		if err := rows.Scan(&p.ID, &p.Rows); err != nil {
			return nil, fmt.Errorf("partitions of %s: scan: %w", table, err)
		}
		if p.Start, p.End, err = ParsePartitionID(p.ID); err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", table, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	return out, nil
}

// DropPartition drops a partition of table (one of RetentionTables) with
// all its rows. Dropping a partition that does not exist is not an error.
func (s *Store) DropPartition(ctx context.Context, table, id string) error {
	if err := checkRetentionTable(table); err != nil {
		return fmt.Errorf("drop partition: %w", err)
	}
	if !partitionID.MatchString(id) {
		return fmt.Errorf("drop partition: %w: id %q: want YYYYMMDD or YYYYMM", ErrInvalidArgument, id)
	}
	// The partition key is a number (toYYYYMMDD, toYYYYMM); id is digits only.
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.mutationTarget(table)+" DROP PARTITION "+id); err != nil {
		return fmt.Errorf("drop partition %s of %s: %w", id, table, err)
	}
	return nil
}

// RowFilter selects rows of a table by time and, for events, type, leaving
// out the rows of subjects under legal hold. It is the only predicate
// retention deletes by: its values are bound as parameters and its event
// type must be one of schema v1.
type RowFilter struct {
	// Table is one of RetentionTables.
	Table string
	// Type, if set, keeps only events of this type (Table must be events).
	Type schemas.Type
	// App, if set, keeps only events of this app (Table must be events).
	App string
	// From, if set, keeps rows at or after it (second precision).
	From time.Time
	// Before keeps rows strictly before it (second precision); required.
	Before time.Time
	// ExceptSubjects leaves out the rows of these subjects (events and
	// alerts only).
	ExceptSubjects []string
	// ExceptAlertIDs leaves out the rows of these alerts (alert_status and
	// webhook_deliveries only).
	ExceptAlertIDs []string
}

// String renders the filter for the deletion log. Excluded subjects and
// alerts are counted, never named: the log must not hold pseudonyms.
func (f RowFilter) String() string {
	s := ""
	if f.Type != "" {
		s = "type = '" + string(f.Type) + "' AND "
	}
	if f.App != "" {
		s += "app = '" + f.App + "' AND "
	}
	if !f.From.IsZero() {
		s += "time >= '" + f.From.UTC().Format(time.DateTime) + "' AND "
	}
	s += "time < '" + f.Before.UTC().Format(time.DateTime) + "'"
	if n := len(f.ExceptSubjects); n > 0 {
		s += fmt.Sprintf(" AND subject NOT IN (%d held subjects)", n)
	}
	if n := len(f.ExceptAlertIDs); n > 0 {
		s += fmt.Sprintf(" AND alert_id NOT IN (%d alerts of held subjects)", n)
	}
	return s
}

// Held returns f without its exclusions: with CountMatching, the rows f
// would select if no subject were held.
func (f RowFilter) Held() RowFilter {
	f.ExceptSubjects, f.ExceptAlertIDs = nil, nil
	return f
}

func (f RowFilter) where() (string, []any, error) {
	if err := checkRetentionTable(f.Table); err != nil {
		return "", nil, err
	}
	if f.Before.IsZero() {
		return "", nil, fmt.Errorf("%w: row filter needs Before", ErrInvalidArgument)
	}
	var (
		q    string
		args []any
	)
	if f.Type != "" {
		if f.Table != TableEvents || !f.Type.Valid() {
			return "", nil, fmt.Errorf("%w: row filter type %q on %s: want a schema v1 event type on events", ErrInvalidArgument, f.Type, f.Table)
		}
		q, args = "type = ? AND ", append(args, string(f.Type))
	}
	if f.App != "" {
		if f.Table != TableEvents || !schemas.ValidApp(f.App) {
			return "", nil, fmt.Errorf("%w: row filter app %q on %s: want an app name on events", ErrInvalidArgument, f.App, f.Table)
		}
		q, args = q+"app = ? AND ", append(args, f.App)
	}
	if len(f.ExceptSubjects) > 0 {
		if f.Table != TableEvents && f.Table != TableAlerts {
			return "", nil, fmt.Errorf("%w: row filter on %s cannot leave out subjects", ErrInvalidArgument, f.Table)
		}
		q, args = q+"subject NOT IN ("+placeholders(len(f.ExceptSubjects))+") AND ", append(args, anys(f.ExceptSubjects)...)
	}
	if len(f.ExceptAlertIDs) > 0 {
		if f.Table != TableAlertStatus && f.Table != TableWebhookDeliveries {
			return "", nil, fmt.Errorf("%w: row filter on %s cannot leave out alerts", ErrInvalidArgument, f.Table)
		}
		q, args = q+"alert_id NOT IN ("+placeholders(len(f.ExceptAlertIDs))+") AND ", append(args, anys(f.ExceptAlertIDs)...)
	}
	if !f.From.IsZero() {
		q, args = q+"time >= toDateTime(?) AND ", append(args, f.From.Unix())
	}
	return q + "time < toDateTime(?)", append(args, f.Before.Unix()), nil
}

// CountMatching returns the number of rows f selects, physically stored (before
// deduplication, so that it matches what partitions and mutations remove).
func (s *Store) CountMatching(ctx context.Context, f RowFilter) (uint64, error) {
	where, args, err := f.where()
	if err != nil {
		return 0, fmt.Errorf("count matching rows: %w", err)
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+"."+f.Table+" WHERE "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", f.Table, err)
	}
	return n, nil
}

// DeleteRows starts a mutation that deletes the rows f selects and returns
// without waiting for it: see WaitMutations.
func (s *Store) DeleteRows(ctx context.Context, f RowFilter) error {
	where, args, err := f.where()
	if err != nil {
		return fmt.Errorf("delete rows: %w", err)
	}
	// clickhouse-go binds positional parameters on the client, so this works
	// on ClickHouse 18.16, which has no server-side parameters.
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.mutationTarget(f.Table)+" DELETE WHERE "+where, args...); err != nil {
		return fmt.Errorf("delete rows of %s: %w", f.Table, err)
	}
	return nil
}

// MutationTimeoutError is returned by WaitMutations when mutations of a
// table are not done in time. ClickHouse goes on with them (18.16 retries a
// failing mutation forever); system.mutations shows them by id.
type MutationTimeoutError struct {
	Table   string
	Timeout time.Duration
	// Mutations are the ids of the mutations not done, in system.mutations.
	Mutations []string
}

func (e *MutationTimeoutError) Error() string {
	return fmt.Sprintf("mutations of table %s not done after %s: %s (see system.mutations; KILL MUTATION cancels one)",
		e.Table, e.Timeout, strings.Join(e.Mutations, ", "))
}

// WaitMutations waits until every mutation of table is done (its own and
// any other process's), checking every poll. It gives up with a
// *MutationTimeoutError after timeout (which must be positive), or when ctx
// ends. Errors name mutations by id, never by command: a command may hold
// a subject.
func (s *Store) WaitMutations(ctx context.Context, table string, poll, timeout time.Duration) error {
	if err := checkRetentionTable(table); err != nil {
		return fmt.Errorf("wait for mutations: %w", err)
	}
	return s.waitMutations(ctx, table, poll, timeout)
}

// waitMutations is WaitMutations for any table of the store.
func (s *Store) waitMutations(ctx context.Context, table string, poll, timeout time.Duration) error {
	if timeout <= 0 || poll <= 0 {
		return fmt.Errorf("wait for mutations: %w: poll and timeout must be positive", ErrInvalidArgument)
	}
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		pending, err := s.pendingMutations(ctx, table)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			return &MutationTimeoutError{Table: table, Timeout: timeout, Mutations: pending}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for mutations of %s (%d pending): %w", table, len(pending), ctx.Err())
		case <-t.C:
		}
	}
}

func (s *Store) pendingMutations(ctx context.Context, table string) ([]string, error) {
	if s.cluster == "" {
		return pendingOn(ctx, s.conn, s.db, table, "")
	}
	// On a cluster, the mutations of every replica of every shard: a
	// mutation is done when each has applied it. A server that cannot
	// be asked may not have yet: it counts as pending.
	addrs, err := s.clusterNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for mutations of %s: %w", table, err)
	}
	ids := []string{}
	for _, addr := range addrs {
		conn, err := s.replica(ctx, addr)
		if err == nil {
			var pending []string
			if pending, err = pendingOn(ctx, conn, s.db, s.storageTable(table), addr+" "); err == nil {
				ids = append(ids, pending...)
				continue
			}
			s.dropReplica(addr)
		}
		s.logger.Warn("mutations of a clickhouse server unknown", slog.String("server", addr), slog.Any("error", err))
		ids = append(ids, addr+" (unreachable)")
	}
	return ids, nil
}

// pendingOn returns the ids of the mutations of db.table that the server
// of conn has not done, each after prefix.
func pendingOn(ctx context.Context, conn driver.Conn, db, table, prefix string) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT mutation_id FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0 ORDER BY mutation_id", db, table)
	if err != nil {
		return nil, fmt.Errorf("wait for mutations of %s: %w", table, err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("wait for mutations of %s: scan: %w", table, err)
		}
		ids = append(ids, prefix+id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("wait for mutations of %s: %w", table, err)
	}
	return ids, nil
}

// OldestRow returns the time of the oldest row of table; ok is false when
// the table is empty.
func (s *Store) OldestRow(ctx context.Context, table string) (oldest time.Time, ok bool, err error) {
	if err := checkRetentionTable(table); err != nil {
		return time.Time{}, false, fmt.Errorf("oldest row: %w", err)
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count(), min(time) FROM "+s.db+"."+table).Scan(&n, &oldest); err != nil {
		return time.Time{}, false, fmt.Errorf("oldest row of %s: %w", table, err)
	}
	if n == 0 {
		return time.Time{}, false, nil
	}
	return oldest.UTC(), true, nil
}

// Column is a column of a table, from system.columns.
type Column struct {
	Name string
	Type string
}

// TableColumns returns the columns of table (one of RetentionTables,
// deletion_log, legal_holds or erasure_requests), in table order.
func (s *Store) TableColumns(ctx context.Context, table string) ([]Column, error) {
	if table != "deletion_log" && table != "legal_holds" && table != "erasure_requests" {
		if err := checkRetentionTable(table); err != nil {
			return nil, fmt.Errorf("table columns: %w", err)
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", s.db, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	out := []Column{}
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.Type); err != nil {
			return nil, fmt.Errorf("columns of %s: scan: %w", table, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	return out, nil
}

// DeletionLogRow is one row of deletion_log (see 005_retention.sql). A
// run's summary row (ActionRun) has DataSet "*", the number of steps in
// Target and the rows the run deleted in RowsBefore.
type DeletionLogRow struct {
	// ID is unique per row; Job is the run it belongs to.
	ID  string
	Job string
	// Policy names the rule applied, e.g. "events 90d" or
	// "event_types.login.failed 30d".
	Policy  string
	DataSet string
	// Action is ActionDropPartition, ActionDeleteRows or ActionRun.
	Action string
	// Target is the partition id or the deletion predicate.
	Target     string
	RowsBefore uint64
	RowsAfter  uint64
	// Started and Finished have millisecond precision.
	Started  time.Time
	Finished time.Time
	// Outcome is OutcomeOK or OutcomeFailed; Error says why it failed.
	Outcome string
	Error   string
}

const deletionLogColumnList = "id, job, policy, data_set, action, target, rows_before, rows_after, started, started_ms, finished, finished_ms, outcome, error"

// InsertDeletionLog appends rows to the deletion log and returns once
// ClickHouse has confirmed them. An empty slice writes nothing.
func (s *Store) InsertDeletionLog(ctx context.Context, rows []DeletionLogRow) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if r.ID == "" || r.Job == "" || r.Started.IsZero() || r.Finished.IsZero() {
			return fmt.Errorf("insert deletion log: %w: id, job, started and finished must be set", ErrInvalidArgument)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".deletion_log ("+deletionLogColumnList+")")
	if err != nil {
		return fmt.Errorf("insert deletion log (%d rows): prepare: %w", len(rows), err)
	}
	for _, r := range rows {
		msg := r.Error
		if len(msg) > maxDeletionErrorLen {
			msg = msg[:maxDeletionErrorLen]
		}
		if err := batch.Append(r.ID, r.Job, r.Policy, r.DataSet, r.Action, r.Target, r.RowsBefore, r.RowsAfter,
			r.Started.UTC().Truncate(time.Second), r.Started.UnixMilli(),
			r.Finished.UTC().Truncate(time.Second), r.Finished.UnixMilli(), r.Outcome, msg); err != nil {
			return errors.Join(fmt.Errorf("insert deletion log (%d rows): append: %w", len(rows), err), batch.Abort())
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert deletion log (%d rows): send: %w", len(rows), err)
	}
	return nil
}

// DeletionLog returns up to limit rows of the deletion log, newest first
// (by start, then id).
func (s *Store) DeletionLog(ctx context.Context, limit int) ([]DeletionLogRow, error) {
	if limit < 1 {
		return nil, fmt.Errorf("deletion log: limit %d: %w: must be at least 1", limit, ErrInvalidArgument)
	}
	return s.deletionLog(ctx, " ORDER BY started_ms DESC, id DESC LIMIT ?", limit)
}

// DeletionLogOfJob returns the rows of one run, in the order they started.
func (s *Store) DeletionLogOfJob(ctx context.Context, job string) ([]DeletionLogRow, error) {
	return s.deletionLog(ctx, " WHERE job = ? ORDER BY started_ms, id", job)
}

// LastRun returns the summary row (ActionRun) of the newest run with the
// given outcome; ok is false when there is none.
func (s *Store) LastRun(ctx context.Context, outcome string) (r DeletionLogRow, ok bool, err error) {
	rows, err := s.deletionLog(ctx, " WHERE action = ? AND outcome = ? ORDER BY started_ms DESC, id DESC LIMIT 1", ActionRun, outcome)
	if err != nil || len(rows) == 0 {
		return DeletionLogRow{}, false, err
	}
	return rows[0], true, nil
}

func (s *Store) deletionLog(ctx context.Context, tail string, args ...any) ([]DeletionLogRow, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+deletionLogColumnList+" FROM "+s.db+".deletion_log"+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("deletion log: %w", err)
	}
	defer rows.Close()
	out := []DeletionLogRow{}
	for rows.Next() {
		var (
			r                     DeletionLogRow
			startS, finishS       time.Time
			startedMS, finishedMS int64
		)
		if err := rows.Scan(&r.ID, &r.Job, &r.Policy, &r.DataSet, &r.Action, &r.Target, &r.RowsBefore, &r.RowsAfter,
			&startS, &startedMS, &finishS, &finishedMS, &r.Outcome, &r.Error); err != nil {
			return nil, fmt.Errorf("deletion log: scan: %w", err)
		}
		r.Started = time.UnixMilli(startedMS).UTC()
		r.Finished = time.UnixMilli(finishedMS).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deletion log: %w", err)
	}
	return out, nil
}
