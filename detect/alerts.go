package detect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// NATS names of alerts. An alert travels on
// AlertSubjectPrefix + "<severity>.<detector>", so a subscriber can ask for
// sessionmon.alerts.critical.> or sessionmon.alerts.*.brute_force. Status
// changes travel on AlertSubjectPrefix + "status.<status>" in the same
// stream ("status" is no severity).
const (
	// AlertStream is the JetStream stream that holds alerts and their
	// status changes.
	AlertStream = "SESSIONMON_ALERTS"
	// AlertSubjectPrefix starts every alert subject.
	AlertSubjectPrefix = "sessionmon.alerts."
	// AlertSubjects is the stream's subject filter.
	AlertSubjects = AlertSubjectPrefix + ">"
	// StatusSubjectPrefix starts every status change subject.
	StatusSubjectPrefix = AlertSubjectPrefix + "status."
)

// AlertSubject returns the subject a is published on.
func AlertSubject(a *Alert) string {
	return AlertSubjectPrefix + string(a.Severity) + "." + a.Detector
}

// AlertStreamConfig holds the limits of the alerts stream.
type AlertStreamConfig struct {
	// MaxAge is how long the stream keeps an alert. It must cover detect's
	// replay window, whose already-sent alerts are read back from the
	// stream at start.
	MaxAge time.Duration
	// Duplicates is the window in which an alert id published again (a
	// retry, a replay) is dropped by the stream.
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster (1 on a single server,
	// stream-replicas); an existing stream with more keeps them.
	Replicas int
}

// EnsureAlertStream creates the SESSIONMON_ALERTS stream, or updates it to
// cfg when it exists. It is safe to call at every start and from several
// processes at once.
func EnsureAlertStream(ctx context.Context, js jetstream.JetStream, cfg AlertStreamConfig) (jetstream.Stream, error) {
	replicas, err := natsconn.ReplicasFor(ctx, js, AlertStream, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        AlertStream,
		Description: "sessionmon alerts (detect.Alert JSON) and their status changes",
		Subjects:    []string{AlertSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.Duplicates,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", AlertStream, err)
	}
	return s, nil
}

// alertMessage builds the NATS message of a: its JSON, with the alert id as
// Nats-Msg-Id so that the stream stores a republished alert once, and the
// hash of its subject (schemas.SubjectHashHeader) so that an erasure finds
// it.
func alertMessage(a *Alert) (*nats.Msg, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert %s: %w", a.ID, err)
	}
	m := nats.NewMsg(AlertSubject(a))
	m.Header.Set(jetstream.MsgIDHeader, a.ID)
	if a.Subject != "" {
		m.Header.Set(schemas.SubjectHashHeader, schemas.SubjectHash(a.Subject))
	}
	m.Data = b
	return m, nil
}

// storedAlert is an alert as read back from the stream: Details stays the
// JSON it was published as, so that it is stored unchanged.
type storedAlert struct {
	Alert
	Details json.RawMessage `json:"details,omitempty"`
}

// alertRowOf converts an alert, as published on the alerts stream, to a
// row of the alerts table.
func alertRowOf(data []byte) (chstore.AlertRow, error) {
	var a storedAlert
	if err := json.Unmarshal(data, &a); err != nil {
		return chstore.AlertRow{}, fmt.Errorf("decode alert: %w", err)
	}
	if a.ID == "" || a.Detector == "" || a.Severity.Rank() == 0 || a.Time.IsZero() {
		return chstore.AlertRow{}, fmt.Errorf("%w: alert needs an id, a detector, a severity and a time", ErrInvalidAlert)
	}
	r := chstore.AlertRow{
		ID:           a.ID,
		Detector:     a.Detector,
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
	return r, nil
}

// AlertStatus is the state of an alert as people triage it.
type AlertStatus string

// Alert statuses. Every alert starts open.
const (
	StatusOpen          AlertStatus = chstore.AlertOpen
	StatusAcknowledged  AlertStatus = chstore.AlertAcknowledged
	StatusResolved      AlertStatus = chstore.AlertResolved
	StatusFalsePositive AlertStatus = chstore.AlertFalsePositive
)

func (s AlertStatus) valid() bool {
	switch s {
	case StatusOpen, StatusAcknowledged, StatusResolved, StatusFalsePositive:
		return true
	}
	return false
}

// Status change limits.
const (
	maxActorLen   = 200
	maxCommentLen = 2000
)

// StatusChange is an event that changes an alert's status: who did it and
// why. Changes are appended (to the alerts stream, then the alert_status
// table), never applied in place; the latest one is the alert's status.
// Its JSON form is part of sessionmon's interface.
type StatusChange struct {
	// ID identifies the change; PublishStatusChange fills it when empty.
	ID      string       `json:"id"`
	AlertID string       `json:"alert_id"`
	Status  AlertStatus  `json:"status"`
	Actor   string       `json:"actor"`
	Comment string       `json:"comment,omitempty"`
	Time    schemas.Time `json:"time"`
}

// Validate checks every field and returns all problems joined, each
// wrapping ErrInvalidStatusChange.
func (c *StatusChange) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidStatusChange, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" || len(c.ID) > 64 {
		bad("id must have 1 to 64 characters")
	}
	if !chstore.ValidAlertID(c.AlertID) {
		bad("alert_id must be an alert id (32 hex digits)")
	}
	if !c.Status.valid() {
		bad("status must be open, acknowledged, resolved or false_positive (got %q)", c.Status)
	}
	if c.Actor == "" || len(c.Actor) > maxActorLen {
		bad("actor must have 1 to %d characters", maxActorLen)
	}
	if len(c.Comment) > maxCommentLen {
		bad("comment must have at most %d characters", maxCommentLen)
	}
	if c.Time.IsZero() {
		bad("time must be set")
	}
	return errors.Join(errs...)
}

// PublishStatusChange validates c, gives it an id and a time when it has
// none, and stores it in the alerts stream (waiting for the stream's ack).
// detect's store writer appends it to the alert_status table. It returns the
// change as published. Publishing the same change (same id) twice stores it
// once.
func PublishStatusChange(ctx context.Context, js jetstream.JetStream, c StatusChange) (StatusChange, error) {
	if c.ID == "" {
		var b [16]byte
		// crypto/rand.Read never returns an error.
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	if c.Time.IsZero() {
		c.Time = schemas.At(time.Now().UTC().Truncate(time.Millisecond))
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return c, fmt.Errorf("encode status change: %w", err)
	}
	m := nats.NewMsg(StatusSubjectPrefix + string(c.Status))
	m.Header.Set(jetstream.MsgIDHeader, "status-"+c.ID)
	m.Data = b
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return c, fmt.Errorf("publish status change of alert %s: %w", c.AlertID, err)
	}
	return c, nil
}

// statusRowOf converts a status change, as published on the alerts stream,
// to a row of the alert_status table.
func statusRowOf(data []byte) (chstore.AlertStatusRow, error) {
	var c StatusChange
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

// PublishAlert publishes an alert raised outside the detectors (for example
// a failed retention run) on SESSIONMON_ALERTS, where the alerts table and
// the webhooks pick it up like any other. a.ID must be set and stable for
// the finding, so that publishing it again stores it once.
func PublishAlert(ctx context.Context, js jetstream.JetStream, a Alert) error {
	if a.ID == "" || a.Detector == "" || a.Severity.Rank() == 0 {
		return fmt.Errorf("%w: id, detector and severity are required", ErrInvalidAlert)
	}
	if a.Evidence == nil {
		a.Evidence = []string{}
	}
	m, err := alertMessage(&a)
	if err != nil {
		return err
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	return nil
}
