package deploy_test

import (
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// metricSet is every series name sessionmon exports, with the labels each
// carries (a histogram's _bucket has le, and so on).
type metricSet map[string][]string

// recordingRegisterer registers with a real registry and notes the name,
// labels and kind of each collector's metrics.
type recordingRegisterer struct {
	reg     *prometheus.Registry
	metrics metricSet
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`(?:constLabels|variableLabels): \{([^}]*)\}`)
	constLabel = regexp.MustCompile(`^c\((.+)\)$`)
)

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	// A Histogram and a Summary are the same interface: those two and
	// the Go and process collectors get their kind from what they gather
	// (sessionmonMetrics); a vector gathers nothing until it has a child.
	k := kindPlain
	switch c.(type) {
	case *prometheus.HistogramVec:
		k = kindHistogram
	case *prometheus.SummaryVec:
		k = kindSummary
	}
	descs := make(chan *prometheus.Desc)
	go func() {
		c.Describe(descs)
		close(descs)
	}()
	for d := range descs {
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			continue // an invalid Desc: Register above refused it
		}
		var labels []string
		for _, g := range descLabels.FindAllStringSubmatch(d.String(), -1) {
			for l := range strings.SplitSeq(g[1], ",") {
				l, _, _ = strings.Cut(l, "=")
				if cm := constLabel.FindStringSubmatch(l); cm != nil {
					l = cm[1]
				}
				if l != "" {
					labels = append(labels, l)
				}
			}
		}
		r.metrics.add(m[1], labels, k)
	}
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recordingRegisterer) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// kind is how a metric is exposed.
type kind int

const (
	kindPlain kind = iota
	// kindHistogram is exposed as name_bucket (with le), name_sum and
	// name_count.
	kindHistogram
	// kindSummary is exposed as name (with quantile), name_sum and name_count.
	kindSummary
)

// add notes name, exposed as k, and the target labels.
func (s metricSet) add(name string, labels []string, k kind) {
	labels = append(slices.Clone(labels), targetLabels...)
	switch k {
	case kindPlain:
		s[name] = labels
	case kindHistogram:
		delete(s, name)
		s[name+"_bucket"] = append(slices.Clone(labels), "le")
	case kindSummary:
		s[name] = append(slices.Clone(labels), "quantile")
	}
	if k != kindPlain {
		s[name+"_sum"] = labels
		s[name+"_count"] = labels
	}
}

// sessionmonMetrics builds a registry the way sessionmon's commands do
// (cmd/sessionmon: newRegistry, then each service's metrics on it) and
// returns every series name it exports.
func sessionmonMetrics(t *testing.T) metricSet {
	t.Helper()
	r := &recordingRegisterer{reg: prometheus.NewRegistry(), metrics: metricSet{}}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ingest.NewMetrics(r)
	ingest.NewAlertMetrics(r)
	detect.NewMetrics(r)
	notify.NewMetrics(r)
	retention.NewMetrics(r)
	dashboard.NewMetrics(r)
	_, err := intake.New(nil, nil, intake.Config{}, nil, r)
	require.NoError(t, err)
	// cmd/sessionmon's newRegistry declares these itself, in package main:
	// declaredMetrics below finds them in its source.
	r.metrics.add("sessionmon_build_info", []string{"version", "commit", "goversion"}, kindPlain)

	families, err := r.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		k := kindPlain
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			k = kindHistogram
		case dto.MetricType_SUMMARY:
			k = kindSummary
		}
		if _, ok := r.metrics[f.GetName()]; ok && k == kindPlain {
			continue
		}
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		slices.Sort(labels)
		r.metrics.add(f.GetName(), slices.Compact(labels), k)
	}
	for _, name := range []string{"sessionmon_ingest_events_total", "sessionmon_dashboard_requests_total", "sessionmon_intake_requests_total",
		"sessionmon_notify_attempt_seconds_bucket", "go_goroutines", "process_start_time_seconds"} {
		require.Contains(t, r.metrics, name, "the registry misses a metric sessionmon exports")
	}
	require.Contains(t, r.metrics["sessionmon_ingest_rejected_total"], "reason")

	// Every metric the source declares is in the registry: a package
	// with metrics of its own is added above.
	for _, name := range declaredMetrics(t) {
		_, plain := r.metrics[name]
		_, hist := r.metrics[name+"_bucket"]
		require.True(t, plain || hist, "%s is declared in the source but not registered by this test", name)
	}
	return r.metrics
}

// metricDeclaration is a metric's name in its Opts.
var metricDeclaration = regexp.MustCompile(`Name:\s*"(sessionmon_[a-z0-9_]+)"`)

// declaredMetrics returns the names of the metrics sessionmon's Go source
// (tests and the SDK aside) declares.
func declaredMetrics(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	var names []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel, _ := filepath.Rel(root, path); rel == "sdk" || rel == "test" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricDeclaration.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, len(names), 40, "the metric declarations were not found")
	return names
}

// checkExpr parses a PromQL expression and checks that every metric it
// names is one sessionmon exports, and that every label it filters, groups
// or matches on is one of those metrics' (or a target label). It returns
// the metric names.
func checkExpr(t *testing.T, metrics metricSet, where, expr string) []string {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	node, err := p.ParseExpr(expr)
	require.NoError(t, err, "%s: %s", where, expr)

	// labelsUnder are the labels the metrics under n carry.
	labelsUnder := func(n parser.Node) map[string]bool {
		out := map[string]bool{}
		for _, l := range targetLabels {
			out[l] = true
		}
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				for _, l := range metrics[vs.Name] {
					out[l] = true
				}
			}
			return nil
		})
		return out
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			require.NotEmpty(t, n.Name, "%s: a selector without a metric name in %s", where, expr)
			labels, ok := metrics[n.Name]
			require.True(t, ok, "%s: %s is not a metric sessionmon exports", where, n.Name)
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					require.Contains(t, labels, m.Name, "%s: %s has no label %s", where, n.Name, m.Name)
				}
			}
			names = append(names, n.Name)
		case *parser.AggregateExpr:
			have := labelsUnder(n.Expr)
			for _, l := range n.Grouping {
				require.True(t, have[l], "%s: groups by %s, which none of its metrics has: %s", where, l, expr)
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				have := labelsUnder(n)
				for _, l := range slices.Concat(n.VectorMatching.MatchingLabels, n.VectorMatching.Include) {
					require.True(t, have[l], "%s: matches on %s, which none of its metrics has: %s", where, l, expr)
				}
			}
		}
		return nil
	})
	require.NotEmpty(t, names, "%s: names no metric: %s", where, expr)
	return names
}

// TestAlertRules loads deploy/prometheus/alerts.yml with Prometheus's own
// rule loader (strict: unknown keys are errors; templates are parsed) and
// checks what operators rely on: every rule is an alert with a for:, a
// severity, a summary and a description, and names only metrics sessionmon
// exports.
func TestAlertRules(t *testing.T) {
	metrics := sessionmonMetrics(t)
	groups, errs := rulefmt.ParseFile(filepath.Join(repoRoot(t), "deploy", "prometheus", "alerts.yml"),
		false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	require.NotEmpty(t, groups.Groups)

	alerts := map[string]bool{}
	used := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "group %s: only alerting rules here (record: %q)", g.Name, r.Record)
			require.False(t, alerts[r.Alert], "alert %s defined twice", r.Alert)
			alerts[r.Alert] = true
			require.GreaterOrEqual(t, time.Duration(r.For), time.Minute, "%s: for: is how long it must hold before it fires", r.Alert)
			require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], "%s: labels.severity", r.Alert)
			require.NotEmpty(t, strings.TrimSpace(r.Annotations["summary"]), "%s: annotations.summary", r.Alert)
			require.Greater(t, len(r.Annotations["description"]), 80, "%s: annotations.description tells the operator what to do", r.Alert)
			for _, n := range checkExpr(t, metrics, r.Alert, r.Expr) {
				used[n] = true
			}
		}
	}
	for _, a := range []string{"SessionmonIngestLagGrowing", "SessionmonRetentionOverdue", "SessionmonAlertsUndeliverable",
		"SessionmonDeadLetterSpike", "SessionmonClickHouseWritesFailing", "SessionmonIntakeErrors"} {
		require.True(t, alerts[a], "no alert %s", a)
	}
	t.Logf("%d alerts over %d metrics", len(alerts), len(used))
}

// grafanaPanel is what the test reads of a panel of a Grafana dashboard's
// JSON model.
type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	Targets    []struct {
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	// Panels are those of a collapsed row.
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVariable is a variable in a query.
var grafanaVariable = regexp.MustCompile(`\$\{?(\w+)`)

// grafanaVariables stand for what Grafana substitutes before it sends a
// query, so that the query parses as PromQL.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "6h")

// TestGrafanaDashboard checks deploy/grafana/sessionmon.json: valid JSON
// with a title and a uid, a Prometheus data source as the ${DS_PROMETHEUS}
// input (so it imports into any Grafana), and panels whose every query
// parses and names only metrics sessionmon exports.
func TestGrafanaDashboard(t *testing.T) {
	metrics := sessionmonMetrics(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana", "sessionmon.json"))
	require.NoError(t, err)
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []grafanaPanel `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	require.NoError(t, dec.Decode(&d))
	require.False(t, dec.More(), "one JSON document")
	require.NotEmpty(t, d.Title)
	require.NotEmpty(t, d.UID)
	require.LessOrEqual(t, len(d.UID), 40, "Grafana refuses a uid over 40 characters")

	require.Len(t, d.Inputs, 1)
	require.Equal(t, "DS_PROMETHEUS", d.Inputs[0].Name)
	require.Equal(t, "datasource", d.Inputs[0].Type)
	require.Equal(t, "prometheus", d.Inputs[0].PluginID)
	// A data source variable of the same name, for provisioning, which
	// does not substitute inputs.
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	require.Equal(t, "datasource", vars["DS_PROMETHEUS"])
	prometheusDS := grafanaDatasource{Type: "prometheus", UID: "${DS_PROMETHEUS}"}

	var panels []grafanaPanel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range panels {
		require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
		ids[p.ID] = true
		if p.Type == "row" {
			continue // a row only groups panels
		}
		require.NotEmpty(t, p.Title, "panel %d has no title", p.ID)
		require.NotNil(t, p.Datasource, "panel %q has no data source", p.Title)
		require.Equal(t, prometheusDS, *p.Datasource, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			if tg.Datasource != nil {
				require.Equal(t, prometheusDS, *tg.Datasource, "panel %q", p.Title)
			}
			for _, v := range grafanaVariable.FindAllStringSubmatch(tg.Expr, -1) {
				if !strings.HasPrefix(v[1], "__") {
					require.Contains(t, vars, v[1], "panel %q uses $%s, which the dashboard does not define", p.Title, v[1])
				}
			}
			expr := grafanaVariables.Replace(tg.Expr)
			require.NotContains(t, expr, "$__", "panel %q: a Grafana variable the test does not know", p.Title)
			for _, n := range checkExpr(t, metrics, "panel "+p.Title+" "+tg.RefID, expr) {
				used[n] = true
			}
		}
	}
	// What operators open the dashboard for.
	for _, n := range []string{
		"sessionmon_ingest_events_total", "sessionmon_ingest_consumer_pending", "sessionmon_ingest_rejected_total",
		"sessionmon_detect_alerts_total", "sessionmon_notify_delivered_total", "sessionmon_notify_failed_total",
		"sessionmon_notify_undeliverable_total", "sessionmon_retention_last_success_timestamp_seconds",
		"sessionmon_dashboard_requests_total", "sessionmon_intake_requests_total", "sessionmon_intake_events_total",
	} {
		require.True(t, used[n], "no panel shows %s", n)
	}
	t.Logf("%d panels over %d metrics: %v", len(panels), len(used), slices.Sorted(maps.Keys(used)))
}
