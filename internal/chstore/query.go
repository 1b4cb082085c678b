package chstore

import (
	"context"
	"fmt"
)

// The queries below read the events table with FINAL, which merges rows with
// equal sorting keys (the same event delivered more than once) at query time.
// ClickHouse 18.16 and current releases both support it on ReplacingMergeTree.

// CountEvents returns the number of distinct events stored.
func (s *Store) CountEvents(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".events FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// CountEventsByID returns the number of rows seen after deduplication (total)
// and the number of distinct event ids (distinct). They are equal when every
// event is stored exactly once; total > distinct means one id was stored with
// different sorting keys (subject or time), which deduplication cannot merge.
func (s *Store) CountEventsByID(ctx context.Context) (total, distinct uint64, err error) {
	err = s.conn.QueryRow(ctx, "SELECT count(), uniqExact(id) FROM "+s.db+".events FINAL").Scan(&total, &distinct)
	if err != nil {
		return 0, 0, fmt.Errorf("count events by id: %w", err)
	}
	return total, distinct, nil
}

// EventsBySubject returns up to limit events of subject, newest first (by
// time, then id).
func (s *Store) EventsBySubject(ctx context.Context, subject string, limit int) ([]EventRow, error) {
	if limit < 1 {
		return nil, fmt.Errorf("events by subject: limit %d: %w: must be at least 1", limit, ErrInvalidArgument)
	}
	rows, err := s.conn.Query(ctx, "SELECT "+eventColumnList+" FROM "+s.db+".events FINAL"+
		" WHERE subject = ? ORDER BY time_ms DESC, id DESC LIMIT ?", subject, limit)
	if err != nil {
		return nil, fmt.Errorf("events by subject: %w", err)
	}
	defer rows.Close()
	out := []EventRow{}
	dest := make([]any, len(eventColumns))
	for rows.Next() {
		var r EventRow
		for i, c := range eventColumns {
			dest[i] = c.dest(&r)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("events by subject: scan: %w", err)
		}
		r.nilEmptyArrays()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events by subject: %w", err)
	}
	return out, nil
}
