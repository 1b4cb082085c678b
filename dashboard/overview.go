package dashboard

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// overviewRange is the time the overview covers.
const overviewRange = 24 * time.Hour

// ingestConsumer is the durable consumer of the ingest workers, whose
// backlog is the pipeline's lag.
var ingestConsumer = ingest.DefaultConfig().Durable

// maxCountedFailures bounds the failed deliveries the overview counts.
const maxCountedFailures = 1000

// healthView is the state of the pipeline. A field that could not be read is
// nil and named in Unavailable.
type healthView struct {
	// ConsumerLag is the events not yet ingested: pending plus unacked.
	ConsumerLag *uint64 `json:"consumer_lag,omitempty"`
	DeadLetters *uint64 `json:"dead_letters,omitempty"`
	// WebhookFailures counts failed attempts over the overview's range
	// (at most 1000).
	WebhookFailures *uint64 `json:"webhook_failures,omitempty"`
	// Undeliverable counts alerts webhooks gave up on; nil without
	// webhooks.
	Undeliverable *uint64 `json:"undeliverable,omitempty"`
	// LastRetentionRun is the last successful retention run.
	LastRetentionRun *time.Time `json:"last_retention_run,omitempty"`
	Unavailable      []string   `json:"unavailable,omitempty"`
}

// overviewData is the overview page.
type overviewData struct {
	chstore.Overview
	Health       healthView
	EventsChart  template.HTML
	AlertsChart  template.HTML
	TotalEvents  uint64
	TotalAlerts  uint64
	OpenAlerts   uint64
	AlertsFilter string
}

func sumCounts(cs []chstore.TimeCount) uint64 {
	var n uint64
	for _, c := range cs {
		n += c.Count
	}
	return n
}

// loadOverview loads the last 24 hours and the pipeline's health.
func (h *handler) loadOverview(c echo.Context) (overviewData, error) {
	ctx := c.Request().Context()
	to := h.now().UTC()
	from := to.Add(-overviewRange)
	o, err := h.store.Overview(ctx, from, to)
	if err != nil {
		return overviewData{}, err
	}
	d := overviewData{Overview: o, Health: h.pipelineHealth(ctx, from), TotalEvents: sumCounts(o.EventsPerMinute), TotalAlerts: sumCounts(o.AlertsPerHour)}
	for _, s := range o.OpenBySeverity {
		d.OpenAlerts += s.Count
	}
	return d, nil
}

// pipelineHealth reads each health figure on its own: one that fails is
// logged and left out, the rest still show.
func (h *handler) pipelineHealth(ctx context.Context, since time.Time) healthView {
	var hl healthView
	unavailable := func(what string, err error) {
		hl.Unavailable = append(hl.Unavailable, what)
		h.logger.WarnContext(ctx, "overview: health figure unavailable", slog.String("figure", what), slog.Any("error", err))
	}
	if h.js != nil {
		if cons, err := h.js.Consumer(ctx, schemas.EventStream, ingestConsumer); err != nil {
			unavailable("consumer_lag", err)
		} else if info, err := cons.Info(ctx); err != nil {
			unavailable("consumer_lag", err)
		} else {
			lag := info.NumPending + uint64(info.NumAckPending)
			hl.ConsumerLag = &lag
		}
		s, err := h.js.Stream(ctx, schemas.DLQStream)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			var zero uint64
			hl.DeadLetters = &zero
		case err != nil:
			unavailable("dead_letters", err)
		default:
			if info, err := s.Info(ctx); err != nil {
				unavailable("dead_letters", err)
			} else {
				n := info.State.Msgs
				hl.DeadLetters = &n
			}
		}
	} else {
		hl.Unavailable = append(hl.Unavailable, "consumer_lag", "dead_letters")
	}
	if rows, err := h.store.WebhookDeliveriesSince(ctx, since, chstore.DeliveryFailed, maxCountedFailures); err != nil {
		unavailable("webhook_failures", err)
	} else {
		n := uint64(len(rows))
		hl.WebhookFailures = &n
	}
	if h.notifier != nil {
		if recs, err := h.notifier.Undeliverable(ctx); err != nil {
			unavailable("undeliverable", err)
		} else {
			n := uint64(len(recs))
			hl.Undeliverable = &n
		}
	}
	if last, ok, err := h.store.LastRun(ctx, chstore.OutcomeOK); err != nil {
		unavailable("last_retention_run", err)
	} else if ok {
		t := last.Started.UTC()
		hl.LastRetentionRun = &t
	}
	return hl
}

// showOverview renders the overview: activity charts of the last 24 hours,
// open alerts, top apps and the pipeline's health.
func (h *handler) showOverview(c echo.Context) error {
	d, err := h.loadOverview(c)
	if err != nil {
		return err
	}
	d.EventsChart = barChart("Events per minute, last 24 h", d.EventsPerMinute, time.Minute)
	d.AlertsChart = barChart("Alerts per hour, last 24 h", d.AlertsPerHour, time.Hour)
	return h.page(c, http.StatusOK, viewOverview, d)
}

// countJSON is a time bucket's count.
type countJSON struct {
	Time  time.Time `json:"time"`
	Count uint64    `json:"count"`
}

// nameCountJSON is a count for a name.
type nameCountJSON struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

func newCountsJSON(cs []chstore.TimeCount) []countJSON {
	out := make([]countJSON, len(cs))
	for i, c := range cs {
		out[i] = countJSON{Time: c.Time.UTC(), Count: c.Count}
	}
	return out
}

func newNameCountsJSON(cs []chstore.NameCount) []nameCountJSON {
	out := make([]nameCountJSON, len(cs))
	for i, c := range cs {
		out[i] = nameCountJSON{Name: c.Name, Count: c.Count}
	}
	return out
}

// overviewJSON is the answer of GET /api/v1/overview.
type overviewJSON struct {
	From            time.Time       `json:"from"`
	To              time.Time       `json:"to"`
	EventsPerMinute []countJSON     `json:"events_per_minute"`
	AlertsPerHour   []countJSON     `json:"alerts_per_hour"`
	OpenBySeverity  []nameCountJSON `json:"open_by_severity"`
	OpenByDetector  []nameCountJSON `json:"open_by_detector"`
	TopApps         []nameCountJSON `json:"top_apps"`
	// SuppressedAlerts counts the alerts of the range a suppression rule
	// marked.
	SuppressedAlerts uint64     `json:"suppressed_alerts"`
	Health           healthView `json:"health"`
}

// apiOverview answers GET /api/v1/overview.
//
// No parameters. Response 200: overviewJSON {from, to (the last 24
// hours), events_per_minute and alerts_per_hour: [{time, count}], zeros
// included; open_by_severity, open_by_detector, top_apps: [{name, count}];
// suppressed_alerts (marked by a suppression rule); health: {consumer_lag, dead_letters, webhook_failures, undeliverable,
// last_retention_run, unavailable: [figures that could not be read]}}.
func (h *handler) apiOverview(c echo.Context) error {
	d, err := h.loadOverview(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, overviewJSON{
		From: d.From.UTC(), To: d.To.UTC(), EventsPerMinute: newCountsJSON(d.EventsPerMinute), AlertsPerHour: newCountsJSON(d.AlertsPerHour),
		OpenBySeverity: newNameCountsJSON(d.OpenBySeverity), OpenByDetector: newNameCountsJSON(d.OpenByDetector),
		TopApps: newNameCountsJSON(d.TopApps), SuppressedAlerts: d.Suppressed, Health: d.Health,
	})
}
