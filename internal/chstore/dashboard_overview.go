package chstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"
)

// The overview page: activity over a time range and what is open.

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
		" countIf(cur_status IN ('', 'open')), countIf(suppressed_by != '')"+
		" FROM (SELECT id AS alert_id, time_ms, severity, detector, suppressed_by FROM "+s.db+".alerts WHERE "+where+" LIMIT 1 BY time_ms, id)"+
		" ANY LEFT JOIN ("+s.currentStatusQuery("SELECT id FROM "+s.db+".alerts WHERE "+where)+") USING alert_id"+
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
			n, open, muted     uint64
		)
		if err := r.Scan(&h, &severity, &detector, &n, &open, &muted); err != nil {
			return err
		}
		perHour[h] += n
		o.Suppressed += muted
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
