package chstore

// The dashboard's queries. Each reads only the columns and partitions it
// needs: every query is bounded by a time range on the partition key,
// except the two that look up an id which says nothing about its time (an
// alert's, a session's); they read that one column to learn the time, and
// everything after is bounded. Values are always bound parameters, never
// formatted into SQL; pseudonyms and alert ids are checked first.

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
	// Suppressed counts the alerts raised between From and To that a
	// suppression rule marked (silenced or lowered).
	Suppressed uint64
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
	// Suppressed, when set, keeps only the alerts a suppression rule
	// marked (true) or only the others (false).
	Suppressed *bool
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

// checkPseudonym returns an error naming field unless v is a pseudonym as
// schema v1 allows it.
func checkPseudonym(field, v string) error {
	if !schemas.ValidPseudonym(v) {
		return fmt.Errorf("%w: %s: must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -", ErrInvalidArgument, field)
	}
	return nil
}

// checkAlertID returns an error naming field unless id is an alert id.
func checkAlertID(field, id string) error {
	if !schemas.ValidAlertID(id) {
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

// currentStatusQuery returns a query of the current status of the alerts
// whose ids the subquery ids yields: alert_id, cur_status, cur_actor and
// cur_time_ms (the latest change by time, then id). An alert without
// changes has no row; ANY LEFT JOIN then gives it "" (open). Duplicated
// changes (the same id) cannot change argMax, so no FINAL; the IN set lets
// ClickHouse read only the index ranges of those alerts.
//
// On a cluster, alert_status and alerts are Distributed tables sharded by
// different keys: the set is built once, on the server that runs the
// query, and sent to every shard (GLOBAL IN), since each shard's own
// alerts hold other alerts' ids, and a shard may not query the cluster
// again (distributed_product_mode deny, the default). The join needs no
// GLOBAL: both of its sides are subqueries, so it runs on that server.
func (s *Store) currentStatusQuery(ids string) string {
	in := " IN ("
	if s.cluster != "" {
		in = " GLOBAL IN ("
	}
	return "SELECT alert_id, argMax(status, (time_ms, id)) AS cur_status, argMax(actor, (time_ms, id)) AS cur_actor," +
		" max(time_ms) AS cur_time_ms FROM " + s.db + ".alert_status WHERE alert_id" + in + ids + ") GROUP BY alert_id"
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
	if !schemas.ValidAlertID(parts[2]) {
		return 0, "", bad
	}
	return timeMS, parts[2], nil
}
