package chstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/schemas"
)

// The alert list and an alert's detail.

// alertStatuses are the statuses an AlertFilter may ask for.
var alertStatuses = []string{string(schemas.StatusOpen), string(schemas.StatusAcknowledged), string(schemas.StatusResolved), string(schemas.StatusFalsePositive)}

// Alerts returns one page of alerts matching f, newest first (by time, then
// id). The status filter applies to the current status before the page is
// cut, so paging with Next returns each matching alert exactly once (as
// long as no status changes meanwhile).
func (s *Store) Alerts(ctx context.Context, f AlertFilter) (AlertPage, error) {
	if err := checkRange(f.From, f.To, 0); err != nil {
		return AlertPage{}, fmt.Errorf("alerts: %w", err)
	}
	if f.Limit < 1 || f.Limit > MaxAlertPage {
		return AlertPage{}, fmt.Errorf("alerts: %w: limit: %d: want 1..%d", ErrInvalidArgument, f.Limit, MaxAlertPage)
	}
	for _, st := range f.Statuses {
		if !slices.Contains(alertStatuses, st) {
			return AlertPage{}, fmt.Errorf("alerts: %w: status %q: want open, acknowledged, resolved or false_positive", ErrInvalidArgument, st)
		}
	}
	where, args := timeRange(f.From, f.To)
	in := func(col string, values []string) {
		if len(values) > 0 {
			where += " AND " + col + " IN (" + placeholders(len(values)) + ")"
			args = append(args, anys(values)...)
		}
	}
	in("severity", f.Severities)
	in("detector", f.Detectors)
	in("app", f.Apps)
	if f.Subject != "" {
		if err := checkPseudonym("subject", f.Subject); err != nil {
			return AlertPage{}, fmt.Errorf("alerts: %w", err)
		}
		where, args = where+" AND subject = ?", append(args, f.Subject)
	}
	if f.Session != "" {
		if err := checkPseudonym("session", f.Session); err != nil {
			return AlertPage{}, fmt.Errorf("alerts: %w", err)
		}
		where, args = where+" AND session = ?", append(args, f.Session)
	}
	if f.Suppressed != nil {
		if *f.Suppressed {
			where += " AND suppressed_by != ''"
		} else {
			where += " AND suppressed_by = ''"
		}
	}
	if f.Cursor != "" {
		timeMS, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return AlertPage{}, fmt.Errorf("alerts: %w", err)
		}
		where += " AND (time_ms < ? OR (time_ms = ? AND id < ?))"
		args = append(args, timeMS, timeMS, id)
	}
	var statusWhere string
	var statusArgs []any
	if len(f.Statuses) > 0 {
		statusWhere = "if(cur_status = '', 'open', cur_status) IN (" + placeholders(len(f.Statuses)) + ")"
		statusArgs = anys(f.Statuses)
	}
	// One more than a page tells whether there is a next one.
	views, err := s.alertViews(ctx, "WHERE "+where, args, statusWhere, statusArgs, f.Limit+1)
	if err != nil {
		return AlertPage{}, fmt.Errorf("alerts: %w", err)
	}
	p := AlertPage{Alerts: views}
	if len(views) > f.Limit {
		p.Alerts = views[:f.Limit]
		last := p.Alerts[f.Limit-1]
		p.Next = encodeCursor(last.Time.UnixMilli(), last.ID)
	}
	return p, nil
}

// alertViews returns up to limit alerts matching where (a WHERE clause,
// possibly after a PREWHERE one, on the alerts table) and statusWhere (on
// cur_status, if not empty), newest first, each with its current status.
//
// Each alert once: a redelivered alert's copies share time_ms and id, and
// LIMIT 1 BY keeps one; FINAL did the same in twice the time over 30 day
// partitions (ClickHouse 18.16).
//
// It runs in two steps: the first reads only the few columns the filters
// and the order need to find the page's ids, the second reads the page's
// alerts whole (their long title, summary and details columns only for
// those), within the page's time range.
func (s *Store) alertViews(ctx context.Context, where string, args []any, statusWhere string, statusArgs []any, limit int) ([]AlertView, error) {
	q := "SELECT alert_id, time_ms, cur_status, cur_actor, cur_time_ms" +
		" FROM (SELECT id AS alert_id, time_ms FROM " + s.db + ".alerts " + where + " LIMIT 1 BY time_ms, id)" +
		" ANY LEFT JOIN (" + s.currentStatusQuery("SELECT id FROM "+s.db+".alerts "+where) + ") USING alert_id"
	qargs := append(slices.Clone(args), args...)
	if statusWhere != "" {
		q += " WHERE " + statusWhere
		qargs = append(qargs, statusArgs...)
	}
	q += " ORDER BY time_ms DESC, alert_id DESC LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(qargs, limit)...)
	if err != nil {
		return nil, fmt.Errorf("alert page: %w", err)
	}
	var (
		ids           []string
		minMS, maxMS  int64
		status, actor = map[string]string{}, map[string]string{}
		statusTime    = map[string]int64{}
	)
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			id, st, by     string
			timeMS, stTime int64
		)
		if err := r.Scan(&id, &timeMS, &st, &by, &stTime); err != nil {
			return err
		}
		if len(ids) == 0 || timeMS < minMS {
			minMS = timeMS
		}
		maxMS = max(maxMS, timeMS)
		ids = append(ids, id)
		status[id], actor[id], statusTime[id] = st, by, stTime
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alert page: %w", err)
	}
	if len(ids) == 0 {
		return []AlertView{}, nil
	}
	rng, rargs := timeRange(time.UnixMilli(minMS), time.UnixMilli(maxMS+1))
	rows, err = s.conn.Query(ctx, "SELECT "+alertColumnList+" FROM "+s.db+".alerts PREWHERE id IN ("+placeholders(len(ids))+")"+
		" WHERE "+rng+" LIMIT 1 BY time_ms, id", append(anys(ids), rargs...)...)
	if err != nil {
		return nil, fmt.Errorf("alert page: %w", err)
	}
	alerts, err := scanAlerts(rows, "alert page")
	if err != nil {
		return nil, err
	}
	byID := make(map[string]AlertRow, len(alerts))
	for _, a := range alerts {
		byID[a.ID] = a
	}
	out := make([]AlertView, 0, len(ids))
	for _, id := range ids {
		a, ok := byID[id]
		if !ok {
			continue // erased between the two steps
		}
		v := AlertView{AlertRow: a, Status: string(schemas.StatusOpen)}
		if st := status[id]; st != "" {
			v.Status, v.StatusActor, v.StatusTime = st, actor[id], time.UnixMilli(statusTime[id]).UTC()
		}
		out = append(out, v)
	}
	return out, nil
}

// AlertDetail returns one alert with its history, evidence and deliveries;
// ErrNotFound when there is no such alert.
//
// An alert id says nothing about its time, so finding the alert reads the
// id column of every alerts partition (alerts are few: 100k alerts are
// ~3 MB of ids); everything else is bounded by the alert's time or keyed
// by its id.
func (s *Store) AlertDetail(ctx context.Context, id string) (AlertDetail, error) {
	if err := checkAlertID("id", id); err != nil {
		return AlertDetail{}, fmt.Errorf("alert detail: %w", err)
	}
	// The id column alone first, to learn the alert's time and partition.
	var timeMS int64
	err := s.conn.QueryRow(ctx, "SELECT time_ms FROM "+s.db+".alerts PREWHERE id = ? LIMIT 1", id).Scan(&timeMS)
	if errors.Is(err, sql.ErrNoRows) {
		return AlertDetail{}, fmt.Errorf("alert detail: alert %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return AlertDetail{}, fmt.Errorf("alert detail: %w", err)
	}
	rng, args := timeRange(time.UnixMilli(timeMS), time.UnixMilli(timeMS+1))
	views, err := s.alertViews(ctx, "PREWHERE id = ? WHERE "+rng, append([]any{id}, args...), "", nil, 1)
	if err != nil {
		return AlertDetail{}, fmt.Errorf("alert detail: %w", err)
	}
	if len(views) == 0 {
		return AlertDetail{}, fmt.Errorf("alert detail: alert %s: %w", id, ErrNotFound)
	}
	d := AlertDetail{Alert: views[0]}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		d.History, err = s.AlertStatusHistory(gctx, id)
		return err
	})
	g.Go(func() (err error) {
		d.Deliveries, err = s.WebhookDeliveriesOfAlert(gctx, id)
		return err
	})
	g.Go(func() (err error) {
		d.Evidence, err = s.evidence(gctx, d.Alert.AlertRow)
		return err
	})
	if err := g.Wait(); err != nil {
		return AlertDetail{}, fmt.Errorf("alert detail: %w", err)
	}
	return d, nil
}

// evidence returns the alert's evidence events, oldest first. Most
// evidence is the alert subject's and minutes old, so it looks first by
// subject (which leads the events' sorting key) within a day before the
// alert, and only for what is still missing in wider windows and across
// subjects (credential stuffing spans many).
func (s *Store) evidence(ctx context.Context, a AlertRow) ([]EventRow, error) {
	var ids []string
	for _, id := range a.Evidence {
		if !slices.Contains(ids, id) && len(ids) < maxEvidence {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return []EventRow{}, nil
	}
	// Evidence comes before the alert; a little after is clock skew.
	to := a.Time.Add(time.Hour)
	found := map[string]EventRow{}
	for _, try := range []struct {
		bySubject bool
		window    time.Duration
	}{{true, evidenceWindows[0]}, {false, evidenceWindows[0]}, {true, evidenceWindows[2]}, {false, evidenceWindows[1]}} {
		var missing []string
		for _, id := range ids {
			if _, ok := found[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		rng, args := timeRange(a.Time.Add(-try.window), to)
		where := "WHERE id IN (" + placeholders(len(missing)) + ") AND " + rng
		args = append(anys(missing), args...)
		if try.bySubject {
			where, args = "PREWHERE subject = ? "+where, append([]any{a.Subject}, args...)
		}
		evs, err := s.eventsPage(ctx, "evidence", where, args, "", len(missing))
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			found[e.ID] = e
		}
	}
	out := make([]EventRow, 0, len(found))
	for _, e := range found {
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y EventRow) int {
		if x.TimeMS != y.TimeMS {
			return int(x.TimeMS - y.TimeMS)
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}
