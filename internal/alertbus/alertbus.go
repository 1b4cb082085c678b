// Package alertbus publishes on the alerts stream (schemas.AlertStream):
// the alerts detect and other parts of sessionmon raise, and the status
// changes people make while they triage. Both detect and the dashboard use
// it; neither depends on the other.
package alertbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

// Message builds the NATS message of a: its JSON, with the alert id as
// Nats-Msg-Id so that the stream stores a republished alert once, and the
// hash of its subject (schemas.SubjectHashHeader) so that an erasure finds
// it.
func Message(a *schemas.Alert) (*nats.Msg, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert %s: %w", a.ID, err)
	}
	m := nats.NewMsg(schemas.AlertSubject(a))
	m.Header.Set(jetstream.MsgIDHeader, a.ID)
	if a.Subject != "" {
		m.Header.Set(schemas.SubjectHashHeader, schemas.SubjectHash(a.Subject))
	}
	m.Data = b
	return m, nil
}

// PublishAlert publishes an alert raised outside the detectors (for example
// a failed retention run) on SESSIONMON_ALERTS, where the alerts table and
// the webhooks pick it up like any other. a.ID must be set and stable for
// the finding, so that publishing it again stores it once.
func PublishAlert(ctx context.Context, js jetstream.JetStream, a schemas.Alert) error {
	if a.ID == "" || a.Detector == "" || a.Severity.Rank() == 0 {
		return fmt.Errorf("%w: id, detector and severity are required", schemas.ErrInvalidAlert)
	}
	if a.Evidence == nil {
		a.Evidence = []string{}
	}
	m, err := Message(&a)
	if err != nil {
		return err
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	return nil
}

// PublishStatusChange validates c, gives it an id and a time when it has
// none, and stores it in the alerts stream (waiting for the stream's ack).
// The alerts writer appends it to the alert_status table. It returns the
// change as published. Publishing the same change (same id) twice stores it
// once.
func PublishStatusChange(ctx context.Context, js jetstream.JetStream, c schemas.StatusChange) (schemas.StatusChange, error) {
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
	m := nats.NewMsg(schemas.StatusSubject(c.Status))
	m.Header.Set(jetstream.MsgIDHeader, "status-"+c.ID)
	m.Data = b
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return c, fmt.Errorf("publish status change of alert %s: %w", c.AlertID, err)
	}
	return c, nil
}
