package chstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Erasure request statuses (erasure_requests.status).
const (
	ErasurePending = "pending"
	ErasureRunning = "running"
	ErasureDone    = "done"
	ErasureFailed  = "failed"
)

// LegalHold is the current hold of a subject (see 006_erasure.sql).
type LegalHold struct {
	Subject string
	// Active holds block every deletion of the subject's rows.
	Active bool
	Reason string
	Actor  string
	// Time is when the hold was last set or lifted (millisecond precision).
	Time time.Time
}

// SetLegalHold records that subject is under legal hold from at on, for
// reason, set by actor.
func (s *Store) SetLegalHold(ctx context.Context, subject, reason, actor string, at time.Time) error {
	return s.appendLegalHold(ctx, LegalHold{Subject: subject, Active: true, Reason: reason, Actor: actor, Time: at})
}

// LiftLegalHold records that the hold of subject was lifted at at by actor.
// Lifting a subject that is not held records the change all the same.
func (s *Store) LiftLegalHold(ctx context.Context, subject, actor string, at time.Time) error {
	return s.appendLegalHold(ctx, LegalHold{Subject: subject, Actor: actor, Time: at})
}

func (s *Store) appendLegalHold(ctx context.Context, h LegalHold) error {
	if err := CheckSubject(h.Subject); err != nil {
		return fmt.Errorf("legal hold: %w", err)
	}
	if h.Time.IsZero() {
		return fmt.Errorf("legal hold: %w: time must be set", ErrInvalidArgument)
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".legal_holds (subject, active, reason, actor, time, time_ms)")
	if err != nil {
		return fmt.Errorf("legal hold: prepare: %w", err)
	}
	var active uint8
	if h.Active {
		active = 1
	}
	if err := batch.Append(h.Subject, active, h.Reason, h.Actor, h.Time.UTC().Truncate(time.Second), h.Time.UnixMilli()); err != nil {
		return errors.Join(fmt.Errorf("legal hold: append: %w", err), batch.Abort())
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("legal hold: send: %w", err)
	}
	return nil
}

const legalHoldSelect = "SELECT subject, argMax(active, time_ms), argMax(reason, time_ms), argMax(actor, time_ms), max(time_ms) FROM "

// LegalHold returns the current hold of subject; ok is false when its hold
// was never set. A lifted hold is returned with Active false.
func (s *Store) LegalHold(ctx context.Context, subject string) (h LegalHold, ok bool, err error) {
	if err := CheckSubject(subject); err != nil {
		return LegalHold{}, false, fmt.Errorf("legal hold: %w", err)
	}
	holds, err := s.legalHolds(ctx, " WHERE subject = ? GROUP BY subject", subject)
	if err != nil || len(holds) == 0 {
		return LegalHold{}, false, err
	}
	return holds[0], true, nil
}

// ActiveLegalHolds returns every subject under legal hold now, ordered by
// subject.
func (s *Store) ActiveLegalHolds(ctx context.Context) ([]LegalHold, error) {
	return s.legalHolds(ctx, " GROUP BY subject HAVING argMax(active, time_ms) = 1 ORDER BY subject")
}

func (s *Store) legalHolds(ctx context.Context, tail string, args ...any) ([]LegalHold, error) {
	rows, err := s.conn.Query(ctx, legalHoldSelect+s.db+".legal_holds"+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("legal holds: %w", err)
	}
	defer rows.Close()
	out := []LegalHold{}
	for rows.Next() {
		var (
			h      LegalHold
			active uint8
			ms     int64
		)
		if err := rows.Scan(&h.Subject, &active, &h.Reason, &h.Actor, &ms); err != nil {
			return nil, fmt.Errorf("legal holds: scan: %w", err)
		}
		h.Active, h.Time = active == 1, time.UnixMilli(ms).UTC()
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("legal holds: %w", err)
	}
	return out, nil
}

// anyLegalHold reports whether any subject is under legal hold. It is
// false while the legal_holds table does not exist yet (before migration
// 006).
func (s *Store) anyLegalHold(ctx context.Context) (bool, error) {
	ok, err := s.TableExists(ctx, "legal_holds")
	if err != nil || !ok {
		return false, err
	}
	holds, err := s.ActiveLegalHolds(ctx)
	return len(holds) > 0, err
}

// ErasureRequest is the current state of an erasure request, or one of its
// status changes (see 006_erasure.sql).
type ErasureRequest struct {
	ID string
	// Seq numbers the request's status changes: 1 is pending; the highest
	// is the current one.
	Seq         uint32
	Subject     string
	RequestedBy string
	// Status is ErasurePending, ErasureRunning, ErasureDone or
	// ErasureFailed; Error says why it failed.
	Status string
	Error  string
	// Rows are the rows deleted per table by the run that finished it.
	Rows SubjectRows
	// Requested and Updated have millisecond precision.
	Requested time.Time
	Updated   time.Time
}

// Finished reports whether the request is done or failed.
func (r ErasureRequest) Finished() bool { return r.Status == ErasureDone || r.Status == ErasureFailed }

// AppendErasureStatus appends one status change of a request. The caller
// numbers the changes (Seq) of each request from 1.
func (s *Store) AppendErasureStatus(ctx context.Context, r ErasureRequest) error {
	switch {
	case r.ID == "" || r.Seq == 0 || r.Requested.IsZero() || r.Updated.IsZero():
		return fmt.Errorf("append erasure status: %w: id, seq, requested and updated must be set", ErrInvalidArgument)
	case r.Status != ErasurePending && r.Status != ErasureRunning && r.Status != ErasureDone && r.Status != ErasureFailed:
		return fmt.Errorf("append erasure status: %w: status %q", ErrInvalidArgument, r.Status)
	}
	if err := CheckSubject(r.Subject); err != nil {
		return fmt.Errorf("append erasure status: %w", err)
	}
	tables, counts := []string{}, []uint64{}
	for _, t := range RetentionTables {
		if n, ok := r.Rows[t]; ok {
			tables, counts = append(tables, t), append(counts, n)
		}
	}
	msg := r.Error
	if len(msg) > maxDeletionErrorLen {
		msg = msg[:maxDeletionErrorLen]
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".erasure_requests"+
		" (id, seq, subject, requested_by, status, error, rows_tables, rows_deleted, requested, requested_ms, updated, updated_ms)")
	if err != nil {
		return fmt.Errorf("append erasure status: prepare: %w", err)
	}
	if err := batch.Append(r.ID, r.Seq, r.Subject, r.RequestedBy, r.Status, msg, tables, counts,
		r.Requested.UTC().Truncate(time.Second), r.Requested.UnixMilli(),
		r.Updated.UTC().Truncate(time.Second), r.Updated.UnixMilli()); err != nil {
		return errors.Join(fmt.Errorf("append erasure status: append: %w", err), batch.Abort())
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("append erasure status: send: %w", err)
	}
	return nil
}

// erasureSelect reads the current state of each request: its latest
// status change.
const erasureSelect = "SELECT id, max(seq), argMax(subject, seq), argMax(requested_by, seq), argMax(status, seq)," +
	" argMax(error, seq), argMax(rows_tables, seq), argMax(rows_deleted, seq), min(requested_ms), argMax(updated_ms, seq) FROM "

// ErasureRequest returns the current state of request id; ok is false when
// there is no such request.
func (s *Store) ErasureRequest(ctx context.Context, id string) (r ErasureRequest, ok bool, err error) {
	reqs, err := s.erasureRequests(ctx, " WHERE id = ? GROUP BY id", id)
	if err != nil || len(reqs) == 0 {
		return ErasureRequest{}, false, err
	}
	return reqs[0], true, nil
}

// ErasureRequests returns the current state of up to limit requests, newest
// first.
func (s *Store) ErasureRequests(ctx context.Context, limit int) ([]ErasureRequest, error) {
	if limit < 1 {
		return nil, fmt.Errorf("erasure requests: limit %d: %w: must be at least 1", limit, ErrInvalidArgument)
	}
	return s.erasureRequests(ctx, " GROUP BY id ORDER BY min(requested_ms) DESC, id DESC LIMIT ?", limit)
}

// UnfinishedErasureRequests returns the requests still pending or running
// (a process that was running one died), oldest first.
func (s *Store) UnfinishedErasureRequests(ctx context.Context) ([]ErasureRequest, error) {
	return s.erasureRequests(ctx, " GROUP BY id HAVING argMax(status, seq) IN (?, ?) ORDER BY min(requested_ms), id",
		ErasurePending, ErasureRunning)
}

func (s *Store) erasureRequests(ctx context.Context, tail string, args ...any) ([]ErasureRequest, error) {
	rows, err := s.conn.Query(ctx, erasureSelect+s.db+".erasure_requests"+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("erasure requests: %w", err)
	}
	defer rows.Close()
	out := []ErasureRequest{}
	for rows.Next() {
		var (
			r                      ErasureRequest
			tables                 []string
			counts                 []uint64
			requestedMS, updatedMS int64
		)
		if err := rows.Scan(&r.ID, &r.Seq, &r.Subject, &r.RequestedBy, &r.Status, &r.Error, &tables, &counts,
			&requestedMS, &updatedMS); err != nil {
			return nil, fmt.Errorf("erasure requests: scan: %w", err)
		}
		r.Requested, r.Updated = time.UnixMilli(requestedMS).UTC(), time.UnixMilli(updatedMS).UTC()
		if len(tables) > 0 {
			r.Rows = SubjectRows{}
			for i, t := range tables {
				if i < len(counts) {
					r.Rows[t] = counts[i]
				}
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("erasure requests: %w", err)
	}
	return out, nil
}

// AlertIDsOfSubjects returns the ids of the alerts of subjects, sorted.
func (s *Store) AlertIDsOfSubjects(ctx context.Context, subjects []string) ([]string, error) {
	if len(subjects) == 0 {
		return []string{}, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT id FROM "+s.db+".alerts WHERE subject IN ("+placeholders(len(subjects))+") ORDER BY id",
		anys(subjects)...)
	if err != nil {
		return nil, fmt.Errorf("alert ids of subjects: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("alert ids of subjects: scan: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert ids of subjects: %w", err)
	}
	return out, nil
}

// TableExists reports whether table exists in the store's database.
func (s *Store) TableExists(ctx context.Context, table string) (bool, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.db, table).Scan(&n); err != nil {
		return false, fmt.Errorf("table %s exists: %w", table, err)
	}
	return n > 0, nil
}

// placeholders returns "?, ?, ..." for n values: clickhouse-go binds a
// slice as an array literal, which IN does not accept.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
