package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// DefaultAlertConfig is the configuration out of the box of the writer of
// the alerts stream (NewAlerts). Its consumer keeps the name it had when
// detect wrote alerts, so an upgrade resumes where that one stopped.
func DefaultAlertConfig() Config {
	return Config{
		Durable:       schemas.AlertStoreDurable,
		BatchSize:     1000,
		BatchAge:      500 * time.Millisecond,
		MaxAckPending: 4000,
		AckWait:       30 * time.Second,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      10 * time.Second,
		DLQMaxAge:     DefaultConfig().DLQMaxAge,
	}
}

// NewAlerts returns a worker that copies SESSIONMON_ALERTS from js into the
// ClickHouse server at dsn: alerts to the alerts table, status changes to
// alert_status. It works as the events worker does (see New and Run): a
// batch is acknowledged once ClickHouse confirmed it, and the tables
// collapse what a redelivery writes again, so queries see each alert once.
// Messages that are neither an alert nor a status change are skipped
// (counted and logged), since nothing else publishes there. Its metrics
// come from NewAlertMetrics.
func NewAlerts(js jetstream.JetStream, dsn string, cfg Config, opts ...Option) (*Service, error) {
	s, err := newService(js, dsn, cfg, "alerts", opts...)
	if err != nil {
		return nil, err
	}
	if s.metrics == nil {
		s.metrics = NewAlertMetrics(nil)
	}
	s.ready.Set("starting")
	return s, nil
}

// addAlert decodes one message of the alerts stream into b.
func (s *Service) addAlert(b *batch, msg jetstream.Msg) {
	var err error
	if strings.HasPrefix(msg.Subject(), schemas.StatusSubjectPrefix) {
		var r chstore.AlertStatusRow
		if r, err = statusRowOf(msg.Data()); err == nil {
			b.statuses = append(b.statuses, r)
		}
	} else {
		var r chstore.AlertRow
		if r, err = alertRowOf(msg.Data()); err == nil {
			b.alerts = append(b.alerts, r)
		}
	}
	if err != nil {
		// Nothing else publishes here; keep the stream moving.
		s.metrics.skipped.Inc()
		s.logger.Warn("skipping message on the alerts stream", slog.String("subject", msg.Subject()), slog.Any("error", err))
	}
}

// insertAlerts writes the alerts and status changes of b.
func insertAlerts(ctx context.Context, store *chstore.Store, b *batch) error {
	if err := store.InsertAlerts(ctx, b.alerts); err != nil {
		return err
	}
	return store.AppendAlertStatus(ctx, b.statuses...)
}

// storedAlert is an alert as read back from the stream: Details stays the
// JSON it was published as, so that it is stored unchanged.
type storedAlert struct {
	schemas.Alert
	Details json.RawMessage `json:"details,omitempty"`
}

// alertRowOf converts an alert, as published on the alerts stream, to a
// row of the alerts table.
func alertRowOf(data []byte) (chstore.AlertRow, error) {
	var a storedAlert
	if err := json.Unmarshal(data, &a); err != nil {
		return chstore.AlertRow{}, fmt.Errorf("decode alert: %w", err)
	}
	if err := a.Validate(); err != nil {
		return chstore.AlertRow{}, err
	}
	r := chstore.AlertRow{
		ID:           a.ID,
		Detector:     a.Detector,
		Technique:    a.Technique,
		RuleVersion:  uint32(max(a.RuleVersion, 0)),
		Severity:     string(a.Severity),
		SeverityRank: uint8(a.Severity.Rank()),
		Time:         a.Time.UTC(),
		DetectedAt:   a.DetectedAt.UTC(),
		App:          a.App,
		Subject:      a.Subject,
		Session:      a.Session,
		Title:        a.Title,
		Summary:      a.Summary,
		Details:      string(a.Details),
		Evidence:     a.Evidence,
	}
	if a.Source != nil {
		r.SourceIPPrefix, r.SourceASN = a.Source.IPPrefix, a.Source.ASN
	}
	if sp := a.Suppression; sp != nil {
		r.SuppressedBy, r.SuppressionAction, r.OriginalSeverity = sp.Rule, string(sp.Action), string(sp.OriginalSeverity)
	}
	return r, nil
}

// statusRowOf converts a status change, as published on the alerts stream,
// to a row of the alert_status table.
func statusRowOf(data []byte) (chstore.AlertStatusRow, error) {
	var c schemas.StatusChange
	if err := json.Unmarshal(data, &c); err != nil {
		return chstore.AlertStatusRow{}, fmt.Errorf("decode status change: %w", err)
	}
	if err := c.Validate(); err != nil {
		return chstore.AlertStatusRow{}, err
	}
	return chstore.AlertStatusRow{
		ID:      c.ID,
		AlertID: c.AlertID,
		Status:  string(c.Status),
		Actor:   c.Actor,
		Comment: c.Comment,
		Time:    c.Time.UTC(),
	}, nil
}
