package chstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/sessionmon/sessionmon/schemas"
)

// AlertRow is one row of the alerts table (see 003_alerts.sql). Times are
// UTC with millisecond precision. The row is schemas.Alert flattened; the alerts
// writer converts between the two.
type AlertRow struct {
	ID       string
	Detector string
	// Technique is the MITRE ATT&CK technique id ("" for policy findings
	// and for alerts stored before it was recorded), RuleVersion the
	// version of the detector's logic (0: unknown).
	Technique   string
	RuleVersion uint32
	Severity    string
	// SeverityRank orders severities: low 1 ... critical 4.
	SeverityRank   uint8
	Time           time.Time // event time of the finding
	DetectedAt     time.Time // wall time the engine raised it
	App            string
	Subject        string
	Session        string
	SourceIPPrefix string
	SourceASN      uint32
	Title          string
	Summary        string
	// Details is a JSON object ("{}" when the alert has none).
	Details  string
	Evidence []string
	// StoredAt is when InsertAlerts wrote the row; InsertAlerts sets it.
	StoredAt time.Time
	// SuppressedBy is the id of the suppression rule that matched the
	// alert as it was raised ("" for none), SuppressionAction its action
	// (silence or lower), OriginalSeverity the severity before a lower.
	SuppressedBy      string
	SuppressionAction string
	OriginalSeverity  string
}

// AlertStatusRow is one status change of an alert, a row of alert_status.
// Rows are only ever appended.
type AlertStatusRow struct {
	// ID is the change's own id: a change stored twice collapses.
	ID      string
	AlertID string
	// Status is one of the schemas.AlertStatus values.
	Status string
	// Actor is who changed it, Comment why.
	Actor   string
	Comment string
	Time    time.Time // millisecond precision
}

const alertColumnList = "id, detector, severity, severity_rank, time, time_ms, detected_at, detected_at_ms, " +
	"app, subject, session, source_ip_prefix, source_asn, title, summary, details, evidence, stored_at, technique, rule_version, " +
	"suppressed_by, suppression_action, original_severity"

const alertStatusColumnList = "id, alert_id, status, actor, comment, time, time_ms"

// InsertAlerts writes rows and returns once ClickHouse has confirmed them.
// Writing the same alert again is harmless: the alerts table collapses rows
// with the same id (reads use FINAL). An empty slice writes nothing.
func (s *Store) InsertAlerts(ctx context.Context, rows []AlertRow) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".alerts ("+alertColumnList+")")
	if err != nil {
		return fmt.Errorf("insert alerts (%d rows): prepare: %w", len(rows), err)
	}
	now := time.Now().UTC()
	for i := range rows {
		r := &rows[i]
		details := r.Details
		if details == "" {
			details = "{}"
		}
		evidence := r.Evidence
		if evidence == nil {
			evidence = []string{}
		}
		if err := batch.Append(r.ID, r.Detector, r.Severity, r.SeverityRank,
			r.Time.UTC().Truncate(time.Second), r.Time.UnixMilli(),
			r.DetectedAt.UTC().Truncate(time.Second), r.DetectedAt.UnixMilli(),
			r.App, r.Subject, r.Session, r.SourceIPPrefix, r.SourceASN,
			r.Title, r.Summary, details, evidence, now, r.Technique, r.RuleVersion,
			r.SuppressedBy, r.SuppressionAction, r.OriginalSeverity); err != nil {
			return errors.Join(fmt.Errorf("insert alerts (%d rows): append: %w", len(rows), err), batch.Abort())
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert alerts (%d rows): send: %w", len(rows), err)
	}
	return nil
}

// AppendAlertStatus appends status changes. Appending the same change (same
// id) again is harmless: alert_status collapses it.
func (s *Store) AppendAlertStatus(ctx context.Context, rows ...AlertStatusRow) error {
	if len(rows) == 0 {
		return nil
	}
	for _, r := range rows {
		if err := validAlertStatus(r); err != nil {
			return fmt.Errorf("append alert status: %w", err)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".alert_status ("+alertStatusColumnList+")")
	if err != nil {
		return fmt.Errorf("append alert status (%d rows): prepare: %w", len(rows), err)
	}
	for _, r := range rows {
		if err := batch.Append(r.ID, r.AlertID, r.Status, r.Actor, r.Comment,
			r.Time.UTC().Truncate(time.Second), r.Time.UnixMilli()); err != nil {
			return errors.Join(fmt.Errorf("append alert status (%d rows): %w", len(rows), err), batch.Abort())
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("append alert status (%d rows): send: %w", len(rows), err)
	}
	return nil
}

func validAlertStatus(r AlertStatusRow) error {
	var errs []error
	if r.ID == "" || r.AlertID == "" {
		errs = append(errs, fmt.Errorf("%w: id and alert id must not be empty", ErrInvalidArgument))
	}
	if !schemas.AlertStatus(r.Status).Valid() {
		errs = append(errs, fmt.Errorf("%w: status %q: want open, acknowledged, resolved or false_positive", ErrInvalidArgument, r.Status))
	}
	if r.Time.IsZero() {
		errs = append(errs, fmt.Errorf("%w: time must be set", ErrInvalidArgument))
	}
	return errors.Join(errs...)
}

// AlertsSince returns up to limit alerts whose event time is at or after
// since, newest first (by time, then id), each once.
func (s *Store) AlertsSince(ctx context.Context, since time.Time, limit int) ([]AlertRow, error) {
	if limit < 1 {
		return nil, fmt.Errorf("alerts since: limit %d: %w: must be at least 1", limit, ErrInvalidArgument)
	}
	// The condition on time lets ClickHouse skip whole day partitions.
	rows, err := s.conn.Query(ctx, "SELECT "+alertColumnList+" FROM "+s.db+".alerts FINAL"+
		" WHERE time >= toDateTime(?) AND time_ms >= ? ORDER BY time_ms DESC, id DESC LIMIT ?",
		since.Unix(), since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("alerts since: %w", err)
	}
	return scanAlerts(rows, "alerts since")
}

// scanAlerts reads rows of alertColumnList into AlertRows and closes rows.
func scanAlerts(rows driver.Rows, op string) ([]AlertRow, error) {
	defer rows.Close()
	out := []AlertRow{}
	for rows.Next() {
		var (
			r                  AlertRow
			timeS, detectedS   time.Time
			timeMS, detectedMS int64
		)
		if err := rows.Scan(&r.ID, &r.Detector, &r.Severity, &r.SeverityRank, &timeS, &timeMS, &detectedS, &detectedMS,
			&r.App, &r.Subject, &r.Session, &r.SourceIPPrefix, &r.SourceASN, &r.Title, &r.Summary, &r.Details,
			&r.Evidence, &r.StoredAt, &r.Technique, &r.RuleVersion,
			&r.SuppressedBy, &r.SuppressionAction, &r.OriginalSeverity); err != nil {
			return nil, fmt.Errorf("%s: scan: %w", op, err)
		}
		r.Time = time.UnixMilli(timeMS).UTC()
		r.DetectedAt = time.UnixMilli(detectedMS).UTC()
		r.StoredAt = r.StoredAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// AlertIDsSince returns the ids of every alert whose event time is at or
// after since: after a restart, detect suppresses alerts it finds again
// while replaying history.
func (s *Store) AlertIDsSince(ctx context.Context, since time.Time) (map[string]struct{}, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT id FROM "+s.db+".alerts"+
		" WHERE time >= toDateTime(?) AND time_ms >= ?", since.Unix(), since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("alert ids since: %w", err)
	}
	defer rows.Close()
	out := make(map[string]struct{})
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("alert ids since: scan: %w", err)
		}
		out[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert ids since: %w", err)
	}
	return out, nil
}

// AlertStatusHistory returns every status change of the alert, oldest first
// (by time, then id), each once. An alert without changes is open and has an
// empty history.
func (s *Store) AlertStatusHistory(ctx context.Context, alertID string) ([]AlertStatusRow, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+alertStatusColumnList+" FROM "+s.db+".alert_status FINAL"+
		" WHERE alert_id = ? ORDER BY time_ms, id", alertID)
	if err != nil {
		return nil, fmt.Errorf("alert status history: %w", err)
	}
	defer rows.Close()
	out := []AlertStatusRow{}
	for rows.Next() {
		var (
			r      AlertStatusRow
			timeS  time.Time
			timeMS int64
		)
		if err := rows.Scan(&r.ID, &r.AlertID, &r.Status, &r.Actor, &r.Comment, &timeS, &timeMS); err != nil {
			return nil, fmt.Errorf("alert status history: scan: %w", err)
		}
		r.Time = time.UnixMilli(timeMS).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert status history: %w", err)
	}
	return out, nil
}

// CurrentAlertStatus returns the latest status change (by time, then id) of
// each of the alerts that has one. Alerts missing from the map are open.
func (s *Store) CurrentAlertStatus(ctx context.Context, alertIDs ...string) (map[string]AlertStatusRow, error) {
	out := make(map[string]AlertStatusRow, len(alertIDs))
	if len(alertIDs) == 0 {
		return out, nil
	}
	// One placeholder per id: clickhouse-go binds a slice as an array
	// literal, which IN does not accept.
	args := make([]any, len(alertIDs))
	for i, id := range alertIDs {
		args[i] = id
	}
	list := strings.TrimSuffix(strings.Repeat("?, ", len(alertIDs)), ", ")
	// argMax over a tuple works on ClickHouse 18.16 as on current releases.
	// Duplicated changes (same id) cannot change the result, so no FINAL.
	rows, err := s.conn.Query(ctx, "SELECT alert_id,"+
		" argMax(id, (time_ms, id)), argMax(status, (time_ms, id)), argMax(actor, (time_ms, id)),"+
		" argMax(comment, (time_ms, id)), max(time_ms)"+
		" FROM "+s.db+".alert_status WHERE alert_id IN ("+list+") GROUP BY alert_id", args...)
	if err != nil {
		return nil, fmt.Errorf("current alert status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r      AlertStatusRow
			timeMS int64
		)
		if err := rows.Scan(&r.AlertID, &r.ID, &r.Status, &r.Actor, &r.Comment, &timeMS); err != nil {
			return nil, fmt.Errorf("current alert status: scan: %w", err)
		}
		r.Time = time.UnixMilli(timeMS).UTC()
		out[r.AlertID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("current alert status: %w", err)
	}
	return out, nil
}
