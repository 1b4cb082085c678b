package deploy_test

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// A scenario runs for scenarioLength from t0, scraped every scrapeEvery;
// the alert expressions are evaluated at its end.
const (
	t0             = 1_800_000_000.0 // Unix seconds
	scenarioLength = time.Hour
	scrapeEvery    = 15 * time.Second
)

// now is the Unix time the expressions are evaluated at.
const now = t0 + float64(scenarioLength/time.Second)

// evalSeries is a series of a scenario: PromQL notation and its value s
// seconds into the scenario.
type evalSeries struct {
	metric string
	value  func(s float64) float64
}

// perSecond is a counter growing by r each second.
func perSecond(r float64) func(float64) float64 { return func(s float64) float64 { return r * s } }

// fixed is a gauge or a counter that does not move.
func fixed(v float64) func(float64) float64 { return func(float64) float64 { return v } }

// ago is a timestamp gauge holding now minus d.
func ago(d time.Duration) func(float64) float64 { return fixed(now - d.Seconds()) }

// TestAlertRulesFire evaluates each alert's expression with Prometheus's
// query engine over scraped series of a scenario: it returns the series
// that fire, and none when all is well. (for: is then Prometheus's to
// apply: the expressions here hold over the whole scenario.)
func TestAlertRulesFire(t *testing.T) {
	groups, errs := rulefmt.ParseFile(filepath.Join(repoRoot(t), "deploy", "prometheus", "alerts.yml"),
		false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	exprs := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	const job = `job="sessionmon"`
	cases := []struct {
		name, alert string
		series      []evalSeries
		fires       []string // label sets, as Prometheus prints them
	}{
		{name: "ingest lag/growing", alert: "SessionmonIngestLagGrowing", series: []evalSeries{
			// Two workers of one job report the same consumer.
			{`sessionmon_ingest_consumer_pending{` + job + `,instance="a"}`, func(s float64) float64 { return 20000 + 10*s }},
			{`sessionmon_ingest_consumer_pending{` + job + `,instance="b"}`, func(s float64) float64 { return 20000 + 10*s }},
		}, fires: []string{`{job="sessionmon"}`}},
		{name: "ingest lag/large but draining", alert: "SessionmonIngestLagGrowing", series: []evalSeries{
			{`sessionmon_ingest_consumer_pending{` + job + `,instance="a"}`, func(s float64) float64 { return 90000 - 10*s }},
		}},
		{name: "ingest lag/growing but small", alert: "SessionmonIngestLagGrowing", series: []evalSeries{
			{`sessionmon_ingest_consumer_pending{` + job + `,instance="a"}`, func(s float64) float64 { return s / 10 }},
		}},
		{name: "detect lag/partitions summed", alert: "SessionmonDetectLagGrowing", series: []evalSeries{
			{`sessionmon_detect_consumer_pending{` + job + `,instance="a"}`, func(s float64) float64 { return 4000 + s }},
			{`sessionmon_detect_consumer_pending{` + job + `,instance="b"}`, func(s float64) float64 { return 4000 + s }},
		}, fires: []string{`{job="sessionmon"}`}},

		{name: "clickhouse/every insert fails", alert: "SessionmonClickHouseWritesFailing", series: []evalSeries{
			{`sessionmon_ingest_insert_errors_total{` + job + `,instance="a"}`, perSecond(0.2)},
			{`sessionmon_ingest_events_total{` + job + `,instance="a"}`, fixed(5000)},
		}, fires: []string{`{job="sessionmon"}`}},
		{name: "clickhouse/alerts writer fails", alert: "SessionmonClickHouseWritesFailing", series: []evalSeries{
			{`sessionmon_detect_store_errors_total{` + job + `,instance="a"}`, perSecond(0.2)},
			{`sessionmon_detect_alerts_stored_total{` + job + `,instance="a"}`, fixed(10)},
		}, fires: []string{`{job="sessionmon"}`}},
		{name: "clickhouse/some inserts retried, events stored", alert: "SessionmonClickHouseWritesFailing", series: []evalSeries{
			{`sessionmon_ingest_insert_errors_total{` + job + `,instance="a"}`, perSecond(0.01)},
			{`sessionmon_ingest_events_total{` + job + `,instance="a"}`, perSecond(100)},
		}},
		{name: "clickhouse/idle", alert: "SessionmonClickHouseWritesFailing", series: []evalSeries{
			{`sessionmon_ingest_insert_errors_total{` + job + `,instance="a"}`, fixed(3)},
			{`sessionmon_ingest_events_total{` + job + `,instance="a"}`, fixed(5000)},
		}},

		{name: "dead letters/5% schema", alert: "SessionmonDeadLetterSpike", series: []evalSeries{
			{`sessionmon_ingest_events_total{` + job + `,instance="a"}`, perSecond(95)},
			{`sessionmon_ingest_rejected_total{` + job + `,instance="a",reason="schema"}`, perSecond(5)},
			{`sessionmon_ingest_rejected_total{` + job + `,instance="a",reason="pii"}`, fixed(0)},
		}, fires: []string{`{job="sessionmon", reason="schema"}`}},
		{name: "dead letters/0.5% of a busy pipeline", alert: "SessionmonDeadLetterSpike", series: []evalSeries{
			{`sessionmon_ingest_events_total{` + job + `,instance="a"}`, perSecond(1000)},
			{`sessionmon_ingest_rejected_total{` + job + `,instance="a",reason="schema"}`, perSecond(5)},
		}},
		{name: "dead letters/a trickle on a quiet pipeline", alert: "SessionmonDeadLetterSpike", series: []evalSeries{
			{`sessionmon_ingest_events_total{` + job + `,instance="a"}`, fixed(0)},
			{`sessionmon_ingest_rejected_total{` + job + `,instance="a",reason="pii"}`, perSecond(0.01)},
		}},

		{name: "undeliverable/given up", alert: "SessionmonAlertsUndeliverable", series: []evalSeries{
			{`sessionmon_notify_undeliverable_total{` + job + `,instance="a",webhook="soc"}`, func(s float64) float64 { return min(s, 3000) / 1000 }},
			{`sessionmon_notify_failed_total{` + job + `,instance="a",webhook="soc"}`, fixed(0)},
			{`sessionmon_notify_undeliverable_total{` + job + `,instance="a",webhook="dpo"}`, fixed(0)},
			{`sessionmon_notify_failed_total{` + job + `,instance="a",webhook="dpo"}`, fixed(0)},
		}, fires: []string{`{job="sessionmon", webhook="soc"}`}},
		{name: "undeliverable/refused", alert: "SessionmonAlertsUndeliverable", series: []evalSeries{
			{`sessionmon_notify_undeliverable_total{` + job + `,instance="a",webhook="soc"}`, fixed(0)},
			{`sessionmon_notify_failed_total{` + job + `,instance="a",webhook="soc"}`, perSecond(0.001)},
		}, fires: []string{`{job="sessionmon", webhook="soc"}`}},
		{name: "undeliverable/none lately", alert: "SessionmonAlertsUndeliverable", series: []evalSeries{
			{`sessionmon_notify_undeliverable_total{` + job + `,instance="a",webhook="soc"}`, fixed(4)},
			{`sessionmon_notify_failed_total{` + job + `,instance="a",webhook="soc"}`, fixed(1)},
		}},
		{name: "webhook failing/only retries", alert: "SessionmonWebhookFailing", series: []evalSeries{
			{`sessionmon_notify_retried_total{` + job + `,instance="a",webhook="soc"}`, perSecond(0.1)},
			{`sessionmon_notify_delivered_total{` + job + `,instance="a",webhook="soc"}`, fixed(40)},
		}, fires: []string{`{job="sessionmon", webhook="soc"}`}},
		{name: "webhook failing/retries and deliveries", alert: "SessionmonWebhookFailing", series: []evalSeries{
			{`sessionmon_notify_retried_total{` + job + `,instance="a",webhook="soc"}`, perSecond(0.1)},
			{`sessionmon_notify_delivered_total{` + job + `,instance="a",webhook="soc"}`, perSecond(1)},
		}},

		{name: "retention/none since start, up 2 days", alert: "SessionmonRetentionOverdue", series: []evalSeries{
			{`sessionmon_retention_last_success_timestamp_seconds{` + job + `,instance="a"}`, fixed(0)},
			{`process_start_time_seconds{` + job + `,instance="a"}`, ago(48 * time.Hour)},
		}, fires: []string{`{job="sessionmon"}`}},
		{name: "retention/last success 27 h ago", alert: "SessionmonRetentionOverdue", series: []evalSeries{
			{`sessionmon_retention_last_success_timestamp_seconds{` + job + `,instance="a"}`, ago(27 * time.Hour)},
			{`process_start_time_seconds{` + job + `,instance="a"}`, ago(72 * time.Hour)},
		}, fires: []string{`{job="sessionmon"}`}},
		{name: "retention/none yet, started 2 h ago", alert: "SessionmonRetentionOverdue", series: []evalSeries{
			{`sessionmon_retention_last_success_timestamp_seconds{` + job + `,instance="a"}`, fixed(0)},
			{`process_start_time_seconds{` + job + `,instance="a"}`, ago(2 * time.Hour)},
		}},
		{name: "retention/run by the other replica", alert: "SessionmonRetentionOverdue", series: []evalSeries{
			{`sessionmon_retention_last_success_timestamp_seconds{` + job + `,instance="a"}`, fixed(0)},
			{`process_start_time_seconds{` + job + `,instance="a"}`, ago(72 * time.Hour)},
			{`sessionmon_retention_last_success_timestamp_seconds{` + job + `,instance="b"}`, ago(5 * time.Hour)},
			{`process_start_time_seconds{` + job + `,instance="b"}`, ago(72 * time.Hour)},
		}},
		{name: "retention/only other processes are old", alert: "SessionmonRetentionOverdue", series: []evalSeries{
			{`sessionmon_retention_last_success_timestamp_seconds{` + job + `,instance="a"}`, fixed(0)},
			{`process_start_time_seconds{` + job + `,instance="a"}`, ago(2 * time.Hour)},
			// An intake process of the same job runs no retention.
			{`process_start_time_seconds{` + job + `,instance="intake"}`, ago(72 * time.Hour)},
		}},

		{name: "intake/10% 503", alert: "SessionmonIntakeErrors", series: []evalSeries{
			{`sessionmon_intake_requests_total{` + job + `,instance="a",code="202"}`, perSecond(9)},
			{`sessionmon_intake_requests_total{` + job + `,instance="a",code="503"}`, perSecond(1)},
		}, fires: []string{`{job="sessionmon"}`}},
		{name: "intake/4xx are the clients'", alert: "SessionmonIntakeErrors", series: []evalSeries{
			{`sessionmon_intake_requests_total{` + job + `,instance="a",code="202"}`, perSecond(9)},
			{`sessionmon_intake_requests_total{` + job + `,instance="a",code="401"}`, perSecond(5)},
			{`sessionmon_intake_requests_total{` + job + `,instance="a",code="503"}`, perSecond(0.1)},
		}},
	}
	tested := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expr, ok := exprs[tc.alert]
			require.True(t, ok, "no alert %s", tc.alert)
			tested[tc.alert] = true
			got := evalAt(t, expr, tc.series)
			require.ElementsMatch(t, tc.fires, got)
		})
	}
	for a := range exprs {
		require.True(t, tested[a], "alert %s has no scenario", a)
	}
}

// evalAt evaluates expr at now over series and returns the label sets of
// the result.
func evalAt(t *testing.T, expr string, series []evalSeries) []string {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	var stored []storage.Series
	for _, s := range series {
		lset, err := p.ParseMetric(s.metric)
		require.NoError(t, err, s.metric)
		var samples []chunks.Sample
		for at := time.Duration(0); at <= scenarioLength; at += scrapeEvery {
			samples = append(samples, floatSample{t: int64((t0 + at.Seconds()) * 1000), f: s.value(at.Seconds())})
		}
		stored = append(stored, storage.NewListSeries(lset, samples))
	}
	slices.SortFunc(stored, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: 10 * time.Second, Parser: p})
	q, err := engine.NewInstantQuery(t.Context(), memQueryable(stored), nil, expr, time.UnixMilli(int64(now*1000)))
	require.NoError(t, err)
	defer q.Close()
	res := q.Exec(t.Context())
	require.NoError(t, res.Err)
	vec, err := res.Vector()
	require.NoError(t, err)
	out := []string{}
	for _, s := range vec {
		out = append(out, s.Metric.String())
	}
	return out
}

// floatSample is a float sample of a stored series.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                    { return s.t }
func (floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                  { return s.f }
func (floatSample) H() *histogram.Histogram       { return nil }
func (floatSample) FH() *histogram.FloatHistogram { return nil }
func (floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample         { return s }

// memQueryable is a storage of a few series, sorted by labels.
type memQueryable []storage.Series

func (q memQueryable) Querier(int64, int64) (storage.Querier, error) {
	return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
		var sel []storage.Series
		for _, s := range q {
			if matchAll(s.Labels(), ms) {
				sel = append(sel, s)
			}
		}
		return &seriesSlice{series: sel, i: -1}
	}}, nil
}

func matchAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// seriesSlice is a storage.SeriesSet over a slice.
type seriesSlice struct {
	series []storage.Series
	i      int
}

func (s *seriesSlice) Next() bool                      { s.i++; return s.i < len(s.series) }
func (s *seriesSlice) At() storage.Series              { return s.series[s.i] }
func (*seriesSlice) Err() error                        { return nil }
func (*seriesSlice) Warnings() annotations.Annotations { return nil }
