package chstore

// The dashboard's queries. Each reads only the columns and partitions it
// needs: every query is bounded by a time range on the partition key,
// except the two that look up an id which says nothing about its time (an
// alert's, a session's); they read that one column to learn the time, and
// everything after is bounded. Values are always bound parameters, never
// formatted into SQL; pseudonyms and alert ids are checked first.

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/schemas"
)

// TimeCount is a count in a time bucket starting at Time.
type TimeCount struct {
	Time  time.Time
	Count uint64
}

// NameCount is a count for a name (a severity, detector or app).
type NameCount struct {
	Name  string
	Count uint64
}

// Overview is the dashboard's first page: activity over a time range and
// what is open.
type Overview struct {
	From, To time.Time
	// EventsPerMinute has one bucket per minute from From to To, zeros
	// included.
	EventsPerMinute []TimeCount
	// AlertsPerHour has one bucket per hour from From to To, zeros included.
	AlertsPerHour []TimeCount
	// OpenBySeverity and OpenByDetector count open alerts (no status change
	// or the latest is "open") raised between From and To, most first.
	OpenBySeverity []NameCount
	OpenByDetector []NameCount
	// TopApps are the apps with the most events between From and To.
	TopApps []NameCount
}

// AlertFilter selects alerts. Empty lists match everything.
type AlertFilter struct {
	From, To   time.Time
	Severities []string
	Detectors  []string
	Apps       []string
	// Statuses are current statuses (open, acknowledged, resolved,
	// false_positive).
	Statuses []string
	Subject  string
	Session  string
	// Limit is the page size (1..1000).
	Limit int
	// Cursor continues after the last alert of the previous page (the
	// AlertPage.Next it returned); empty: the newest first.
	Cursor string
}

// AlertView is an alert with its current status.
type AlertView struct {
	AlertRow
	// Status is the latest status change's status, or "open".
	Status string
	// StatusActor and StatusTime are the latest change's, if any.
	StatusActor string
	StatusTime  time.Time
}

// AlertPage is one page of alerts, newest first.
type AlertPage struct {
	Alerts []AlertView
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// AlertDetail is an alert with everything the detail page shows.
type AlertDetail struct {
	Alert AlertView
	// History is the alert's status changes, oldest first.
	History []AlertStatusRow
	// Evidence is the alert's evidence events, oldest first.
	Evidence []EventRow
	// Deliveries are the alert's webhook delivery attempts, oldest first.
	Deliveries []WebhookDeliveryRow
}

// SessionSummary is one session of a subject.
type SessionSummary struct {
	Session         string
	App             string
	First, Last     time.Time
	Events          uint64
	Countries       []string
	Cities          []string
	Devices         []string // ClientDevice pseudonyms
	Browsers        []string // "family / os / device class"
	IPPrefixes      []string
	Alerts          uint64
	Ended           bool
	PreviousSession string
}

// SubjectView is a subject's activity between From and To.
type SubjectView struct {
	Subject  string
	From, To time.Time
	Sessions []SessionSummary
	// Events are the newest events first, at most the query's limit.
	Events []EventRow
	Alerts []AlertView
}

// TokenSummary is one token seen in a session's events.
type TokenSummary struct {
	ID        string
	Kind      string
	Family    string
	Parent    string
	IssuedAt  time.Time
	ExpiresAt time.Time
	LastSeen  time.Time
	Uses      uint64
	Revoked   bool
}

// SessionView is one session: its events (oldest first), tokens and alerts.
type SessionView struct {
	Session string
	Summary SessionSummary
	Events  []EventRow
	Tokens  []TokenSummary
	Alerts  []AlertView
}

// Limits of the dashboard's queries.
const (
	// MaxOverviewRange is the longest range Overview counts: it reads every
	// event of the range.
	MaxOverviewRange = 31 * 24 * time.Hour
	// MaxAlertPage is the largest AlertFilter.Limit.
	MaxAlertPage = 1000
	// MaxEventsLimit is the largest number of events Subject returns.
	MaxEventsLimit = 10_000
	// maxSessions is the number of sessions Subject summarises at most
	// (the newest).
	maxSessions = 500
	// maxViewAlerts is the number of alerts Subject and Session return at
	// most (the newest).
	maxViewAlerts = 1000
	// maxSessionEvents is the number of events Session returns at most
	// (the oldest); its summary and tokens count them all.
	maxSessionEvents = 10_000
	// maxEvidence is the number of evidence events AlertDetail reads.
	maxEvidence = 1000
	// topApps is the length of Overview.TopApps.
	topApps = 10
)

// evidenceWindows are the time windows before an alert in which
// AlertDetail looks for its evidence events, narrowest first: most evidence
// is minutes old, so the first window reads one or two day partitions; only
// evidence not found there (the first location of an impossible travel
// days earlier) makes it read more.
var evidenceWindows = []time.Duration{24 * time.Hour, 31 * 24 * time.Hour, 400 * 24 * time.Hour}

// alertIDPattern is detect's rule for alert ids (32 lowercase hex digits).
var alertIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkPseudonym returns an error naming field unless v is a pseudonym as
// schema v1 allows it.
func checkPseudonym(field, v string) error {
	if !subjectPattern.MatchString(v) {
		return fmt.Errorf("%w: %s: must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -", ErrInvalidArgument, field)
	}
	return nil
}

// checkAlertID returns an error naming field unless id is an alert id.
func checkAlertID(field, id string) error {
	if !alertIDPattern.MatchString(id) {
		return fmt.Errorf("%w: %s: must be an alert id: 32 lowercase hex digits", ErrInvalidArgument, field)
	}
	return nil
}

// checkRange returns an error naming from or to unless from < to and the
// range is at most longest (0: no limit).
func checkRange(from, to time.Time, longest time.Duration) error {
	switch {
	case from.IsZero():
		return fmt.Errorf("%w: from: must be set", ErrInvalidArgument)
	case to.IsZero():
		return fmt.Errorf("%w: to: must be set", ErrInvalidArgument)
	case !from.Before(to):
		return fmt.Errorf("%w: to: must be after from", ErrInvalidArgument)
	case longest > 0 && to.Sub(from) > longest:
		return fmt.Errorf("%w: from: the range is at most %s", ErrInvalidArgument, longest)
	}
	return nil
}

// timeRange is the condition from <= time < to on a table partitioned by
// time: the condition on the partition key (whole seconds) lets ClickHouse
// skip every partition outside the range, the one on time_ms is exact.
func timeRange(from, to time.Time) (string, []any) {
	return "time >= toDateTime(?) AND time <= toDateTime(?) AND time_ms >= ? AND time_ms < ?",
		[]any{from.Unix(), to.Unix(), from.UnixMilli(), to.UnixMilli()}
}

// Overview returns the overview between from and to (at most
// MaxOverviewRange apart).
//
// Counting events exactly once: a redelivered event is stored twice until
// a merge collapses the copies, so a plain count() is not exact. Measured
// on the benchmark's 10 million events (1% stored twice; 337k events in
// the last 24 h; ClickHouse 18.16, 2 busy cores), per minute and app over
// 24 h: count() FROM events FINAL took 136-175 ms (FINAL reads the sorting
// key and ingested_at and merges the parts in one stream); uniqExact(id)
// without FINAL 57-136 ms (it reads the id column and hashes each id);
// count(), not exact, 18-32 ms. uniqExact is exact here (copies share id,
// time and app, so they fall in the same bucket) and the faster exact
// choice. A pre-aggregated table (a materialized view counting per
// minute) would count redelivered copies twice, since it sees inserts
// before any merge, and an exact one (uniqExactState) would store every id
// again: not worth it at this speed.
func (s *Store) Overview(ctx context.Context, from, to time.Time) (Overview, error) {
	if err := checkRange(from, to, MaxOverviewRange); err != nil {
		return Overview{}, fmt.Errorf("overview: %w", err)
	}
	from, to = from.UTC(), to.UTC()
	o := Overview{From: from, To: to}
	// The events and the alerts are independent: both at once.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.overviewEvents(gctx, &o) })
	g.Go(func() error { return s.overviewAlerts(gctx, &o) })
	if err := g.Wait(); err != nil {
		return Overview{}, fmt.Errorf("overview: %w", err)
	}
	return o, nil
}

// overviewEvents fills o's events per minute and top apps.
func (s *Store) overviewEvents(ctx context.Context, o *Overview) error {
	where, args := timeRange(o.From, o.To)
	// Events per minute and per app, in one scan; Go sums both ways.
	rows, err := s.conn.Query(ctx, "SELECT intDiv(time_ms, 60000) AS m, app, uniqExact(id) FROM "+s.db+".events"+
		" WHERE "+where+" GROUP BY m, app", args...)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	perMinute := map[int64]uint64{}
	perApp := map[string]uint64{}
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			m   int64
			app string
			n   uint64
		)
		if err := r.Scan(&m, &app, &n); err != nil {
			return err
		}
		perMinute[m] += n
		perApp[app] += n
		return nil
	})
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	o.EventsPerMinute = buckets(o.From, o.To, time.Minute, perMinute)
	o.TopApps = mostFirst(perApp)
	if len(o.TopApps) > topApps {
		o.TopApps = o.TopApps[:topApps]
	}
	return nil
}

// overviewAlerts fills o's alerts per hour and open alerts.
func (s *Store) overviewAlerts(ctx context.Context, o *Overview) error {
	where, args := timeRange(o.From, o.To)
	// Alerts per hour, and the open ones by severity and detector, in one
	// query: alerts (each once: see alertViews) joined with their current
	// status.
	rows, err := s.conn.Query(ctx, "SELECT intDiv(time_ms, 3600000) AS h, severity, detector, count(),"+
		" countIf(cur_status IN ('', 'open'))"+
		" FROM (SELECT id AS alert_id, time_ms, severity, detector FROM "+s.db+".alerts WHERE "+where+" LIMIT 1 BY time_ms, id)"+
		" ANY LEFT JOIN ("+currentStatusQuery(s.db, "SELECT id FROM "+s.db+".alerts WHERE "+where)+") USING alert_id"+
		" GROUP BY h, severity, detector", append(slices.Clone(args), args...)...)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	perHour := map[int64]uint64{}
	bySeverity, byDetector := map[string]uint64{}, map[string]uint64{}
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			h                  int64
			severity, detector string
			n, open            uint64
		)
		if err := r.Scan(&h, &severity, &detector, &n, &open); err != nil {
			return err
		}
		perHour[h] += n
		if open > 0 {
			bySeverity[severity] += open
			byDetector[detector] += open
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	o.AlertsPerHour = buckets(o.From, o.To, time.Hour, perHour)
	o.OpenBySeverity, o.OpenByDetector = mostFirst(bySeverity), mostFirst(byDetector)
	return nil
}

// currentStatusQuery returns a query of the current status of the alerts
// whose ids the subquery ids yields: alert_id, cur_status, cur_actor and
// cur_time_ms (the latest change by time, then id). An alert without
// changes has no row; ANY LEFT JOIN then gives it "" (open). Duplicated
// changes (the same id) cannot change argMax, so no FINAL; the IN set lets
// ClickHouse read only the index ranges of those alerts.
func currentStatusQuery(db, ids string) string {
	return "SELECT alert_id, argMax(status, (time_ms, id)) AS cur_status, argMax(actor, (time_ms, id)) AS cur_actor," +
		" max(time_ms) AS cur_time_ms FROM " + db + ".alert_status WHERE alert_id IN (" + ids + ") GROUP BY alert_id"
}

// buckets returns one bucket of width step per step from from (truncated to
// step) until to, with the counts of counts (keyed by Unix time / step).
func buckets(from, to time.Time, step time.Duration, counts map[int64]uint64) []TimeCount {
	out := []TimeCount{}
	for t := from.Truncate(step); t.Before(to); t = t.Add(step) {
		out = append(out, TimeCount{Time: t, Count: counts[t.UnixMilli()/step.Milliseconds()]})
	}
	return out
}

// mostFirst returns counts sorted by count, most first, then by name.
func mostFirst(counts map[string]uint64) []NameCount {
	out := make([]NameCount, 0, len(counts))
	for name, n := range counts {
		out = append(out, NameCount{Name: name, Count: n})
	}
	slices.SortFunc(out, func(a, b NameCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// scanEach calls fn for each row and closes rows.
func scanEach(rows driver.Rows, fn func(driver.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
	}
	return rows.Err()
}

// encodeCursor returns the opaque cursor of the position after an alert.
func encodeCursor(timeMS int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1." + strconv.FormatInt(timeMS, 10) + "." + id))
}

// decodeCursor parses a cursor of encodeCursor.
func decodeCursor(c string) (timeMS int64, id string, err error) {
	bad := fmt.Errorf("%w: cursor: not a cursor this server returned", ErrInvalidArgument)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return 0, "", bad
	}
	if timeMS, err = strconv.ParseInt(parts[1], 10, 64); err != nil || timeMS < 0 {
		return 0, "", bad
	}
	if !alertIDPattern.MatchString(parts[2]) {
		return 0, "", bad
	}
	return timeMS, parts[2], nil
}

// alertStatuses are the statuses an AlertFilter may ask for.
var alertStatuses = []string{AlertOpen, AlertAcknowledged, AlertResolved, AlertFalsePositive}

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
		" ANY LEFT JOIN (" + currentStatusQuery(s.db, "SELECT id FROM "+s.db+".alerts "+where) + ") USING alert_id"
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
		v := AlertView{AlertRow: a, Status: AlertOpen}
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

// eventsPage returns up to limit events matching where (a WHERE clause,
// possibly after a PREWHERE one, which must bound time), each once, ordered
// by time_ms and id (order "DESC": newest first).
//
// Each once without FINAL: a redelivered event's copies share time_ms and
// id, and LIMIT 1 BY time_ms, id keeps one of them (the newest delivery).
// On ClickHouse 18.16, FINAL over a subject's rows spread over 30 day
// partitions took 0.6 s for what LIMIT 1 BY does in 50 ms (FINAL merges
// every part it touches, in one stream). The first step reads only the
// sorting key to find the page's time span; the second reads the page's
// rows whole, only within that span.
func (s *Store) eventsPage(ctx context.Context, op, where string, args []any, order string, limit int) ([]EventRow, error) {
	rows, err := s.conn.Query(ctx, "SELECT time_ms, id FROM "+s.db+".events "+where+
		" ORDER BY time_ms "+order+", id "+order+" LIMIT 1 BY time_ms, id LIMIT ?", append(slices.Clone(args), limit)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var (
		n            int
		minMS, maxMS int64
	)
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			ms int64
			id string
		)
		if err := r.Scan(&ms, &id); err != nil {
			return err
		}
		if n == 0 || ms < minMS {
			minMS = ms
		}
		maxMS = max(maxMS, ms)
		n++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return []EventRow{}, nil
	}
	// Within the page's own span, the first limit rows in the same order
	// are the page again: no list of ids to send.
	rng, rargs := timeRange(time.UnixMilli(minMS), time.UnixMilli(maxMS+1))
	args = append(append(slices.Clone(args), rargs...), limit)
	rows, err = s.conn.Query(ctx, "SELECT "+eventColumnList+" FROM "+s.db+".events "+where+" AND "+rng+
		" ORDER BY time_ms "+order+", id "+order+", ingested_at DESC LIMIT 1 BY time_ms, id LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return scanEvents(rows, op)
}

// scanEvents reads rows of eventColumnList and closes rows.
func scanEvents(rows driver.Rows, op string) ([]EventRow, error) {
	out := []EventRow{}
	dest := make([]any, len(eventColumns))
	err := scanEach(rows, func(r driver.Rows) error {
		var e EventRow
		for i, c := range eventColumns {
			dest[i] = c.dest(&e)
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		e.Time, e.IngestedAt = e.Time.UTC(), e.IngestedAt.UTC()
		// Empty arrays scan as empty slices; NewEventRow leaves them nil.
		if len(e.TokenClaims) == 0 {
			e.TokenClaims = nil
		}
		if len(e.AttrsKeys) == 0 {
			e.AttrsKeys, e.AttrsValues = nil, nil
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// Subject returns a subject's sessions (the newest 500), newest events (at
// most limit, 1..MaxEventsLimit) and alerts (the newest 1000) between from
// and to. Every query is keyed by the subject, which leads the events
// table's sorting key, and bounded by the range.
func (s *Store) Subject(ctx context.Context, subject string, from, to time.Time, limit int) (SubjectView, error) {
	if err := checkPseudonym("subject", subject); err != nil {
		return SubjectView{}, fmt.Errorf("subject: %w", err)
	}
	if err := checkRange(from, to, 0); err != nil {
		return SubjectView{}, fmt.Errorf("subject: %w", err)
	}
	if limit < 1 || limit > MaxEventsLimit {
		return SubjectView{}, fmt.Errorf("subject: %w: limit: %d: want 1..%d", ErrInvalidArgument, limit, MaxEventsLimit)
	}
	from, to = from.UTC(), to.UTC()
	v := SubjectView{Subject: subject, From: from, To: to}
	rng, rargs := timeRange(from, to)
	// PREWHERE: the subject's granules are found by the sorting key; the
	// subject column alone then tells which rows of them to read further.
	where, args := "PREWHERE subject = ? WHERE "+rng, append([]any{subject}, rargs...)
	// The three are independent: run at once, the page waits for the
	// slowest instead of the sum.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		v.Sessions, err = s.sessionSummaries(gctx, where+" AND session != ''", slices.Clone(args), maxSessions)
		return err
	})
	g.Go(func() (err error) {
		v.Events, err = s.eventsPage(gctx, "events", where, slices.Clone(args), "DESC", limit)
		return err
	})
	g.Go(func() (err error) {
		v.Alerts, err = s.alertViews(gctx, where, slices.Clone(args), "", nil, maxViewAlerts)
		return err
	})
	if err := g.Wait(); err != nil {
		return SubjectView{}, fmt.Errorf("subject: %w", err)
	}
	countAlerts(v.Sessions, v.Alerts)
	return v, nil
}

// countAlerts sets each session's Alerts from alerts.
func countAlerts(sessions []SessionSummary, alerts []AlertView) {
	n := map[string]uint64{}
	for _, a := range alerts {
		n[a.Session]++
	}
	for i := range sessions {
		sessions[i].Alerts = n[sessions[i].Session]
	}
}

// sessionSummaries summarises the sessions of the events matching where (a
// WHERE clause, possibly after a PREWHERE one),
// the most recently active first, at most limit.
func (s *Store) sessionSummaries(ctx context.Context, where string, args []any, limit int) ([]SessionSummary, error) {
	// Every aggregate here ignores a redelivered copy (uniqExact(id)
	// counts), so no FINAL: see eventsPage.
	rows, err := s.conn.Query(ctx, "SELECT session, any(app), min(time_ms), max(time_ms) AS last, uniqExact(id),"+
		" groupUniqArray(client_country), groupUniqArray(client_city), groupUniqArray(client_device),"+
		" groupUniqArray(if(ua_browser = '' AND ua_os = '' AND ua_device = '', '', concat(ua_browser, ' / ', ua_os, ' / ', ua_device))),"+
		" groupUniqArray(client_ip_prefix), max(type = ?), anyIf(previous_session, previous_session != '')"+
		" FROM "+s.db+".events "+where+" GROUP BY session ORDER BY last DESC, session LIMIT ?",
		append(append([]any{string(schemas.SessionEnded)}, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	out := []SessionSummary{}
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			ss          SessionSummary
			first, last int64
			ended       uint8
		)
		if err := r.Scan(&ss.Session, &ss.App, &first, &last, &ss.Events, &ss.Countries, &ss.Cities, &ss.Devices,
			&ss.Browsers, &ss.IPPrefixes, &ended, &ss.PreviousSession); err != nil {
			return err
		}
		ss.First, ss.Last, ss.Ended = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC(), ended == 1
		for _, l := range []*[]string{&ss.Countries, &ss.Cities, &ss.Devices, &ss.Browsers, &ss.IPPrefixes} {
			*l = slices.DeleteFunc(*l, func(v string) bool { return v == "" })
			slices.Sort(*l) // groupUniqArray's order is arbitrary
		}
		out = append(out, ss)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return out, nil
}

// Session returns one session's events (the oldest 10,000), tokens and
// alerts; ErrNotFound when no event has that session.
//
// A session id says nothing about its subject or time, and the events
// table is sorted by subject: the first query reads the session column
// alone (PREWHERE) to find the session's subjects and time range; every
// other query is then keyed by subject and bounded by that range.
func (s *Store) Session(ctx context.Context, session string) (SessionView, error) {
	if err := checkPseudonym("session", session); err != nil {
		return SessionView{}, fmt.Errorf("session: %w", err)
	}
	rows, err := s.conn.Query(ctx, "SELECT subject, min(time_ms), max(time_ms) FROM "+s.db+".events"+
		" PREWHERE session = ? GROUP BY subject ORDER BY subject", session)
	if err != nil {
		return SessionView{}, fmt.Errorf("session: find: %w", err)
	}
	var (
		subjects        []string
		firstMS, lastMS int64
	)
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			subject string
			a, b    int64
		)
		if err := r.Scan(&subject, &a, &b); err != nil {
			return err
		}
		if len(subjects) == 0 || a < firstMS {
			firstMS = a
		}
		lastMS = max(lastMS, b)
		subjects = append(subjects, subject)
		return nil
	})
	if err != nil {
		return SessionView{}, fmt.Errorf("session: find: %w", err)
	}
	if len(subjects) == 0 {
		return SessionView{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	v := SessionView{Session: session}
	rng, rargs := timeRange(time.UnixMilli(firstMS), time.UnixMilli(lastMS+1))
	where := "PREWHERE subject IN (" + placeholders(len(subjects)) + ") AND session = ? WHERE " + rng
	args := append(append(anys(subjects), session), rargs...)

	// Independent of each other: all at once.
	var sums []SessionSummary
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		sums, err = s.sessionSummaries(gctx, where, slices.Clone(args), 1)
		return err
	})
	g.Go(func() (err error) {
		v.Events, err = s.eventsPage(gctx, "events", where, slices.Clone(args), "", maxSessionEvents)
		return err
	})
	g.Go(func() (err error) {
		v.Tokens, err = s.sessionTokens(gctx, where, slices.Clone(args))
		return err
	})
	g.Go(func() (err error) {
		// An alert's time is the time of an event of the session.
		v.Alerts, err = s.alertViews(gctx, "PREWHERE session = ? WHERE "+rng, append([]any{session}, rargs...), "", nil, maxViewAlerts)
		return err
	})
	if err := g.Wait(); err != nil {
		return SessionView{}, fmt.Errorf("session: %w", err)
	}
	if len(sums) == 0 {
		return SessionView{}, fmt.Errorf("session: %w", ErrNotFound) // erased meanwhile
	}
	v.Summary = sums[0]
	v.Summary.Alerts = uint64(len(v.Alerts))
	return v, nil
}

// sessionTokens summarises the tokens of the events matching where (a
// WHERE clause, possibly after a PREWHERE one), in the
// order they were first seen. Like sessionSummaries, every aggregate
// ignores redelivered copies.
func (s *Store) sessionTokens(ctx context.Context, where string, args []any) ([]TokenSummary, error) {
	rows, err := s.conn.Query(ctx, "SELECT token_id, anyIf(token_kind, token_kind != ''),"+
		" anyIf(token_family, token_family != ''), anyIf(token_parent, token_parent != ''),"+
		" max(token_issued_at_ms), max(token_expires_at_ms), min(time_ms) AS first, max(time_ms),"+
		" uniqExactIf(id, type = ?), max(type = ?)"+
		" FROM "+s.db+".events "+where+" AND token_id != '' GROUP BY token_id ORDER BY first, token_id",
		append([]any{string(schemas.TokenUsed), string(schemas.TokenRevoked)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	out := []TokenSummary{}
	err = scanEach(rows, func(r driver.Rows) error {
		var (
			t                          TokenSummary
			issued, expires, first, ls int64
			revoked                    uint8
		)
		if err := r.Scan(&t.ID, &t.Kind, &t.Family, &t.Parent, &issued, &expires, &first, &ls, &t.Uses, &revoked); err != nil {
			return err
		}
		if issued > 0 {
			t.IssuedAt = time.UnixMilli(issued).UTC()
		}
		if expires > 0 {
			t.ExpiresAt = time.UnixMilli(expires).UTC()
		}
		t.LastSeen, t.Revoked = time.UnixMilli(ls).UTC(), revoked == 1
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return out, nil
}
