package chstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/schemas"
)

// A subject's and a session's pages.

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
		e.nilEmptyArrays()
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
