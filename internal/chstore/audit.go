package chstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TableAuditLog is the dashboard's audit log (007_audit_log.sql).
const TableAuditLog = "audit_log"

// Audit outcomes (audit_log.outcome).
const (
	AuditSuccess = "success"
	AuditFailure = "failure"
	AuditDenied  = "denied"
)

// maxAuditFieldLen caps every stored text field of an audit row.
const maxAuditFieldLen = 1000

// MaxAuditLimit is the largest page AuditLog returns.
const MaxAuditLimit = 1000

// AuditRow is one entry of the audit log: who (Actor, with Role) did what
// (Action) to what (Target), with which Outcome, when and from where.
// Target and Detail name a data subject only as "subject sha256:<hex>".
type AuditRow struct {
	ID             string
	Time           time.Time // millisecond precision
	Actor          string
	Role           string
	Action         string
	Target         string
	Outcome        string
	Detail         string
	RequestID      string
	SourceIPPrefix string
}

// AuditPage is a page of the audit log, newest first.
type AuditPage struct {
	Rows []AuditRow
	// Next is the cursor of the next (older) page; empty on the last page.
	Next string
}

const auditColumnList = "id, time, time_ms, actor, role, action, target, outcome, detail, request_id, source_ip_prefix"

// InsertAudit appends rows to the audit log and returns once ClickHouse has
// confirmed them. Text fields are cut to 1000 bytes. An empty slice writes
// nothing.
func (s *Store) InsertAudit(ctx context.Context, rows ...AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	for i, r := range rows {
		var errs []error
		if r.ID == "" {
			errs = append(errs, fmt.Errorf("%w: audit row %d: id must not be empty", ErrInvalidArgument, i))
		}
		if r.Action == "" {
			errs = append(errs, fmt.Errorf("%w: audit row %d: action must not be empty", ErrInvalidArgument, i))
		}
		if r.Time.IsZero() {
			errs = append(errs, fmt.Errorf("%w: audit row %d: time must be set", ErrInvalidArgument, i))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("insert audit: %w", err)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+"."+TableAuditLog+" ("+auditColumnList+")")
	if err != nil {
		return fmt.Errorf("insert audit (%d rows): prepare: %w", len(rows), err)
	}
	for _, r := range rows {
		if err := batch.Append(r.ID, r.Time.UTC().Truncate(time.Second), r.Time.UnixMilli(),
			cut(r.Actor), cut(r.Role), cut(r.Action), cut(r.Target), cut(r.Outcome), cut(r.Detail),
			cut(r.RequestID), cut(r.SourceIPPrefix)); err != nil {
			return errors.Join(fmt.Errorf("insert audit (%d rows): append: %w", len(rows), err), batch.Abort())
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert audit (%d rows): send: %w", len(rows), err)
	}
	return nil
}

func cut(s string) string {
	if len(s) <= maxAuditFieldLen {
		return s
	}
	s = s[:maxAuditFieldLen]
	// Do not leave half a UTF-8 sequence at the end.
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

// AuditLog returns up to limit (1..MaxAuditLimit) rows of the audit log,
// newest first, older than the cursor before (an AuditPage.Next; empty:
// from the newest).
func (s *Store) AuditLog(ctx context.Context, limit int, before string) (AuditPage, error) {
	if limit < 1 || limit > MaxAuditLimit {
		return AuditPage{}, fmt.Errorf("audit log: limit %d: %w: must be 1-%d", limit, ErrInvalidArgument, MaxAuditLimit)
	}
	q := "SELECT " + auditColumnList + " FROM " + s.db + "." + TableAuditLog
	var args []any
	if before != "" {
		ms, id, err := parseAuditCursor(before)
		if err != nil {
			return AuditPage{}, fmt.Errorf("audit log: before: %w", err)
		}
		// The condition on time lets ClickHouse skip newer partitions.
		q += " WHERE time <= toDateTime(?) AND (time_ms < ? OR (time_ms = ? AND id < ?))"
		args = append(args, ms/1000+1, ms, ms, id)
	}
	q += " ORDER BY time_ms DESC, id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var page AuditPage
	for rows.Next() {
		var (
			r  AuditRow
			t  time.Time
			ms int64
		)
		if err := rows.Scan(&r.ID, &t, &ms, &r.Actor, &r.Role, &r.Action, &r.Target, &r.Outcome, &r.Detail,
			&r.RequestID, &r.SourceIPPrefix); err != nil {
			return AuditPage{}, fmt.Errorf("audit log: scan: %w", err)
		}
		r.Time = time.UnixMilli(ms).UTC()
		page.Rows = append(page.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	if len(page.Rows) > limit {
		page.Rows = page.Rows[:limit]
		last := page.Rows[limit-1]
		page.Next = strconv.FormatInt(last.Time.UnixMilli(), 10) + "_" + last.ID
	}
	return page, nil
}

func parseAuditCursor(c string) (int64, string, error) {
	msText, id, ok := strings.Cut(c, "_")
	ms, err := strconv.ParseInt(msText, 10, 64)
	if !ok || err != nil || id == "" || ms < 0 {
		return 0, "", fmt.Errorf("%w: cursor %q: want <time_ms>_<id> as returned in next", ErrInvalidArgument, c)
	}
	return ms, id, nil
}
