package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// SubjectRows counts, per table, the rows stored for one subject: its
// events and alerts, and the status changes and webhook deliveries of those
// alerts. Counts are of rows as stored, before deduplication.
type SubjectRows map[string]uint64

// Total sums the counts.
func (r SubjectRows) Total() uint64 {
	var n uint64
	for _, v := range r {
		n += v
	}
	return n
}

// SubjectData is everything stored for one subject, each row once.
type SubjectData struct {
	Events            []EventRow
	Alerts            []AlertRow
	AlertStatus       []AlertStatusRow
	WebhookDeliveries []WebhookDeliveryRow
}

// CheckSubject returns an error naming the subject field unless subject is
// a pseudonym as schema v1 allows it.
func CheckSubject(subject string) error {
	if !schemas.ValidPseudonym(subject) {
		return fmt.Errorf("%w: subject: must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -", ErrInvalidArgument)
	}
	return nil
}

// subjectAlertIDs returns the ids of the subject's alerts.
func (s *Store) subjectAlertIDs(ctx context.Context, subject string) ([]any, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT id FROM "+s.db+".alerts WHERE subject = ? ORDER BY id", subject)
	if err != nil {
		return nil, fmt.Errorf("alert ids of subject: %w", err)
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("alert ids of subject: scan: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert ids of subject: %w", err)
	}
	return ids, nil
}

// subjectWheres returns, per table, the condition selecting the subject's
// rows and its arguments. Tables keyed by alert id are left out when the
// subject has no alerts.
func subjectWheres(subject string, alertIDs []any) (tables []string, wheres map[string]string, args map[string][]any) {
	wheres = map[string]string{TableEvents: "subject = ?", TableAlerts: "subject = ?"}
	args = map[string][]any{TableEvents: {subject}, TableAlerts: {subject}}
	// Tables keyed by alert id go first: once the alerts are gone, their
	// ids cannot be found again.
	if len(alertIDs) > 0 {
		// One placeholder per id: clickhouse-go binds a slice as an array
		// literal, which IN does not accept.
		in := "alert_id IN (" + placeholders(len(alertIDs)) + ")"
		for _, t := range []string{TableAlertStatus, TableWebhookDeliveries} {
			tables = append(tables, t)
			wheres[t], args[t] = in, alertIDs
		}
	}
	return append(tables, TableAlerts, TableEvents), wheres, args
}

// CountSubjectRows counts the rows stored for subject, per table.
func (s *Store) CountSubjectRows(ctx context.Context, subject string) (SubjectRows, error) {
	if err := CheckSubject(subject); err != nil {
		return nil, fmt.Errorf("count subject rows: %w", err)
	}
	ids, err := s.subjectAlertIDs(ctx, subject)
	if err != nil {
		return nil, err
	}
	tables, wheres, args := subjectWheres(subject, ids)
	out := SubjectRows{}
	for _, t := range tables {
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+"."+t+" WHERE "+wheres[t], args[t]...).Scan(&n); err != nil {
			return nil, fmt.Errorf("count subject rows of %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// EraseSubject deletes every row stored for subject with mutations, the
// status changes and webhook deliveries of its alerts first, then its
// alerts and events, and waits for each (polling every poll, for at most
// timeout: see WaitMutations). It never touches legal_holds,
// erasure_requests or deletion_log. It returns the rows that were
// there before. Erasing again finds nothing and does nothing; a run
// interrupted after the alerts were deleted cannot find their status
// changes again, which is why those go first.
//
// each, if not nil, runs each table's deletion (step, which issues the
// mutation and waits for it) for the rows rows to delete, so that the
// caller can report progress; it must call step once and return its error.
func (s *Store) EraseSubject(ctx context.Context, subject string, poll, timeout time.Duration, each TableStep) (SubjectRows, error) {
	before, err := s.CountSubjectRows(ctx, subject)
	if err != nil {
		return nil, err
	}
	ids, err := s.subjectAlertIDs(ctx, subject)
	if err != nil {
		return nil, err
	}
	tables, wheres, args := subjectWheres(subject, ids)
	for _, t := range tables {
		if before[t] == 0 {
			continue
		}
		step := func() error {
			if err := s.conn.Exec(ctx, "ALTER TABLE "+s.mutationTarget(t)+" DELETE WHERE "+wheres[t], args[t]...); err != nil {
				return fmt.Errorf("erase subject from %s: %w", t, err)
			}
			if err := s.WaitMutations(ctx, t, poll, timeout); err != nil {
				return fmt.Errorf("erase subject: %w", err)
			}
			return nil
		}
		if each == nil {
			each = func(_ string, _ uint64, step func() error) error { return step() }
		}
		if err := each(t, before[t], step); err != nil {
			return before, err
		}
	}
	return before, nil
}

// TableStep runs step, the deletion of rows rows from table, for
// EraseSubject: it calls step once and returns its error.
type TableStep func(table string, rows uint64, step func() error) error

// SubjectData returns everything stored for subject, each row once:
// events and alerts oldest first, then the status changes and webhook
// deliveries of its alerts.
func (s *Store) SubjectData(ctx context.Context, subject string) (SubjectData, error) {
	if err := CheckSubject(subject); err != nil {
		return SubjectData{}, fmt.Errorf("subject data: %w", err)
	}
	var (
		d   SubjectData
		err error
	)
	// EventsBySubject needs a limit; nothing stores more rows than this.
	if d.Events, err = s.EventsBySubject(ctx, subject, 1<<62); err != nil {
		return SubjectData{}, fmt.Errorf("subject data: %w", err)
	}
	for i, j := 0, len(d.Events)-1; i < j; i, j = i+1, j-1 {
		d.Events[i], d.Events[j] = d.Events[j], d.Events[i]
	}
	if d.Alerts, err = s.alertsOfSubject(ctx, subject); err != nil {
		return SubjectData{}, err
	}
	d.AlertStatus, d.WebhookDeliveries = []AlertStatusRow{}, []WebhookDeliveryRow{}
	for _, a := range d.Alerts {
		st, err := s.AlertStatusHistory(ctx, a.ID)
		if err != nil {
			return SubjectData{}, fmt.Errorf("subject data: %w", err)
		}
		d.AlertStatus = append(d.AlertStatus, st...)
		del, err := s.WebhookDeliveriesOfAlert(ctx, a.ID)
		if err != nil {
			return SubjectData{}, fmt.Errorf("subject data: %w", err)
		}
		d.WebhookDeliveries = append(d.WebhookDeliveries, del...)
	}
	return d, nil
}

func (s *Store) alertsOfSubject(ctx context.Context, subject string) ([]AlertRow, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+alertColumnList+" FROM "+s.db+".alerts FINAL"+
		" WHERE subject = ? ORDER BY time_ms, id", subject)
	if err != nil {
		return nil, fmt.Errorf("alerts of subject: %w", err)
	}
	return scanAlerts(rows, "alerts of subject")
}
