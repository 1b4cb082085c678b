package chstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
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
// status changes (see 006_erasure.sql and 010_erasure_proof.sql).
type ErasureRequest struct {
	ID string
	// Seq numbers the request's status changes: 1 is pending; the highest
	// is the current one.
	Seq uint32
	// Subject is the pseudonym, kept only while the request is not done
	// (to resume or retry it); "" once done. Never show it: show
	// SubjectHash.
	Subject string
	// SubjectHash is schemas.SubjectHash of the pseudonym, kept for good
	// as the proof of which subject was erased.
	SubjectHash string
	RequestedBy string
	// Status is ErasurePending, ErasureRunning, ErasureDone or
	// ErasureFailed; Error says why it failed.
	Status string
	Error  string
	// Rows are the rows deleted per table by the run that finished it.
	Rows SubjectRows
	// Streams are the messages deleted per NATS JetStream stream by the
	// run that finished it.
	Streams StreamMessages
	// Requested and Updated have millisecond precision.
	Requested time.Time
	Updated   time.Time
}

// StreamMessages counts messages per NATS JetStream stream.
type StreamMessages map[string]uint64

// Total sums the counts.
func (m StreamMessages) Total() uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// Finished reports whether the request is done or failed.
func (r ErasureRequest) Finished() bool { return r.Status == ErasureDone || r.Status == ErasureFailed }

// AppendErasureStatus appends one status change of a request. The caller
// numbers the changes (Seq) of each request from 1. A change names the
// subject by its pseudonym (Subject), from which SubjectHash is filled,
// except a done one, which may name it by SubjectHash alone.
func (s *Store) AppendErasureStatus(ctx context.Context, r ErasureRequest) error {
	switch {
	case r.ID == "" || r.Seq == 0 || r.Requested.IsZero() || r.Updated.IsZero():
		return fmt.Errorf("append erasure status: %w: id, seq, requested and updated must be set", ErrInvalidArgument)
	case r.Status != ErasurePending && r.Status != ErasureRunning && r.Status != ErasureDone && r.Status != ErasureFailed:
		return fmt.Errorf("append erasure status: %w: status %q", ErrInvalidArgument, r.Status)
	}
	switch {
	case r.Subject != "" || r.Status != ErasureDone:
		if err := CheckSubject(r.Subject); err != nil {
			return fmt.Errorf("append erasure status: %w", err)
		}
		r.SubjectHash = schemas.SubjectHash(r.Subject)
	case !validSubjectHash(r.SubjectHash):
		return fmt.Errorf("append erasure status: %w: subject_hash: must be sha256: and 64 hex digits", ErrInvalidArgument)
	}
	tables, counts := []string{}, []uint64{}
	for _, t := range RetentionTables {
		if n, ok := r.Rows[t]; ok {
			tables, counts = append(tables, t), append(counts, n)
		}
	}
	streams, purged := []string{}, []uint64{}
	for _, name := range slices.Sorted(maps.Keys(r.Streams)) {
		streams, purged = append(streams, name), append(purged, r.Streams[name])
	}
	msg := r.Error
	if len(msg) > maxDeletionErrorLen {
		msg = msg[:maxDeletionErrorLen]
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".erasure_requests"+
		" (id, seq, subject, subject_hash, requested_by, status, error, rows_tables, rows_deleted, streams, streams_purged,"+
		" requested, requested_ms, updated, updated_ms)")
	if err != nil {
		return fmt.Errorf("append erasure status: prepare: %w", err)
	}
	if err := batch.Append(r.ID, r.Seq, r.Subject, r.SubjectHash, r.RequestedBy, r.Status, msg, tables, counts, streams, purged,
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
// status change. Rows written before 010_erasure_proof.sql have no
// subject_hash; the latest non-empty one is the request's.
const erasureSelect = "SELECT id, max(seq), argMax(subject, seq), argMaxIf(subject_hash, seq, subject_hash != ''), argMax(requested_by, seq)," +
	" argMax(status, seq), argMax(error, seq), argMax(rows_tables, seq), argMax(rows_deleted, seq)," +
	" argMax(streams, seq), argMax(streams_purged, seq), min(requested_ms), argMax(updated_ms, seq) FROM "

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
			tables, streams        []string
			counts, purged         []uint64
			requestedMS, updatedMS int64
		)
		if err := rows.Scan(&r.ID, &r.Seq, &r.Subject, &r.SubjectHash, &r.RequestedBy, &r.Status, &r.Error, &tables, &counts,
			&streams, &purged, &requestedMS, &updatedMS); err != nil {
			return nil, fmt.Errorf("erasure requests: scan: %w", err)
		}
		r.Requested, r.Updated = time.UnixMilli(requestedMS).UTC(), time.UnixMilli(updatedMS).UTC()
		if r.SubjectHash == "" && r.Subject != "" {
			r.SubjectHash = schemas.SubjectHash(r.Subject)
		}
		if len(tables) > 0 {
			r.Rows = SubjectRows{}
			for i, t := range tables {
				if i < len(counts) {
					r.Rows[t] = counts[i]
				}
			}
		}
		if len(streams) > 0 {
			r.Streams = StreamMessages{}
			for i, name := range streams {
				if i < len(purged) {
					r.Streams[name] = purged[i]
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

// ClearErasureSubject removes the pseudonym subject from the erasure
// requests once the subject is erased, keeping its hash (subject_hash):
// from every status change of each request of the subject that is
// finished, done or failed (a failed request is superseded by the one that
// erased the subject). Requests of the subject still pending or running
// keep it, to be carried out. It clears them with one mutation and waits
// for it (polling every poll, for at most timeout: see WaitMutations), and
// returns how many requests it cleared. Running it again is harmless.
func (s *Store) ClearErasureSubject(ctx context.Context, subject string, poll, timeout time.Duration) (int, error) {
	if err := CheckSubject(subject); err != nil {
		return 0, fmt.Errorf("clear erasure subject: %w", err)
	}
	ids, err := s.strings(ctx, "SELECT id FROM "+s.db+"."+tableErasureRequests+" GROUP BY id"+
		" HAVING argMax(status, seq) IN (?, ?) AND countIf(subject = ?) > 0 ORDER BY id", ErasureDone, ErasureFailed, subject)
	if err != nil {
		return 0, fmt.Errorf("clear erasure subject: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	args := append([]any{schemas.SubjectHash(subject)}, anys(ids)...)
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.mutationTarget(tableErasureRequests)+
		" UPDATE subject = '', subject_hash = ? WHERE id IN ("+placeholders(len(ids))+")", args...); err != nil {
		return 0, fmt.Errorf("clear erasure subject of %d requests: %w", len(ids), err)
	}
	if err := s.waitMutations(ctx, tableErasureRequests, poll, timeout); err != nil {
		return 0, fmt.Errorf("clear erasure subject of %d requests: %w", len(ids), err)
	}
	return len(ids), nil
}

// ErasedSubjectsStillNamed returns the pseudonyms that a done erasure
// request still names in one of its status changes (a request done before
// 010_erasure_proof.sql, or whose clearing failed), sorted; see
// ClearErasureSubject.
func (s *Store) ErasedSubjectsStillNamed(ctx context.Context) ([]string, error) {
	t := s.db + "." + tableErasureRequests
	out, err := s.strings(ctx, "SELECT DISTINCT subject FROM "+t+" WHERE subject != '' AND id IN"+
		" (SELECT id FROM "+t+" GROUP BY id HAVING argMax(status, seq) = ?) ORDER BY subject", ErasureDone)
	if err != nil {
		return nil, fmt.Errorf("erased subjects still named: %w", err)
	}
	return out, nil
}

// strings runs q, which selects one String column, and returns its values.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// tableErasureRequests is the erasure requests table.
const tableErasureRequests = "erasure_requests"

// validSubjectHash reports whether h has the form of schemas.SubjectHash.
func validSubjectHash(h string) bool {
	hexPart, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	for i := 0; i < len(hexPart); i++ {
		if c := hexPart[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
