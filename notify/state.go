package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// headerAlertSeq carries, on a redelivery, the alert's sequence in
// SESSIONMON_ALERTS.
const headerAlertSeq = "Sessionmon-Alert-Seq"

// Reasons of an Undeliverable record.
const (
	// ReasonGaveUp: the webhook kept failing temporarily for give_up_after.
	ReasonGaveUp = "gave_up"
	// ReasonPermanent: the webhook failed permanently (e.g. 410 Gone).
	ReasonPermanent = "permanent"
)

// Undeliverable records an alert a webhook did not get. It stays until
// the alert is delivered to that webhook (after Redeliver).
type Undeliverable struct {
	Webhook string `json:"webhook"`
	AlertID string `json:"alert_id"`
	// Reason is ReasonGaveUp or ReasonPermanent.
	Reason string `json:"reason"`
	// Attempts made, LastStatus the last HTTP status (0: none), LastError
	// the last failure.
	Attempts   uint64 `json:"attempts"`
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Sequence is the alert's sequence in SESSIONMON_ALERTS.
	Sequence   uint64    `json:"sequence"`
	QueuedAt   time.Time `json:"queued_at"`
	RecordedAt time.Time `json:"recorded_at"`
}

func undeliverableKey(webhook, alertID string) string { return webhook + "." + alertID }

// ensureState creates or updates the undeliverable bucket and the
// redelivery stream, keeping the replicas they have.
func ensureState(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, jetstream.Stream, error) {
	return natsconn.EnsureNotifyState(ctx, js, 1)
}

// putUndeliverable stores r, replacing an older record.
func putUndeliverable(ctx context.Context, kv jetstream.KeyValue, r Undeliverable) error {
	b, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("encode undeliverable record: %w", err)
	}
	if _, err := kv.Put(ctx, undeliverableKey(r.Webhook, r.AlertID), b); err != nil {
		return fmt.Errorf("store undeliverable record %s/%s: %w", r.Webhook, r.AlertID, err)
	}
	return nil
}

// deleteUndeliverable drops the record of alertID for webhook, if any.
func deleteUndeliverable(ctx context.Context, kv jetstream.KeyValue, webhook, alertID string) error {
	err := kv.Delete(ctx, undeliverableKey(webhook, alertID))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete undeliverable record %s/%s: %w", webhook, alertID, err)
	}
	return nil
}

// listUndeliverable returns the records whose keys match filter (a KV
// subject filter such as "*.<id>" or ">").
func listUndeliverable(ctx context.Context, kv jetstream.KeyValue, filter string) ([]Undeliverable, error) {
	lister, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list undeliverable records: %w", err)
	}
	defer lister.Stop()
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	out := []Undeliverable{}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read undeliverable record %s: %w", k, err)
		}
		var r Undeliverable
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return nil, fmt.Errorf("decode undeliverable record %s: %w", k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// findAlert returns the raw JSON and the stream sequence of alert id:
// from seq when it holds that alert, otherwise by reading the stream's
// alerts until it is found.
func findAlert(ctx context.Context, js jetstream.JetStream, id string, seq uint64) ([]byte, uint64, error) {
	st, err := js.Stream(ctx, schemas.AlertStream)
	if err != nil {
		return nil, 0, fmt.Errorf("find alert %s: %w", id, err)
	}
	if seq > 0 {
		m, err := st.GetMsg(ctx, seq)
		if err == nil && m.Header.Get(jetstream.MsgIDHeader) == id {
			return m.Data, seq, nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, 0, fmt.Errorf("find alert %s: %w", id, err)
		}
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: severitySubjects(schemas.SeverityLow, nil),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("find alert %s: %w", id, err)
	}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, 0, fmt.Errorf("find alert %s: %w", id, err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = md.NumPending
			if m.Headers().Get(jetstream.MsgIDHeader) == id {
				return m.Data(), md.Sequence.Stream, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, 0, fmt.Errorf("find alert %s: %w", id, err)
		}
		if n == 0 || pending == 0 {
			return nil, 0, fmt.Errorf("alert %s: %w in %s", id, ErrNotFound, schemas.AlertStream)
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
}

// redeliverMsg builds the message that queues alert raw again for webhook.
func redeliverMsg(webhook string, raw []byte, seq uint64) *nats.Msg {
	m := nats.NewMsg(schemas.RedeliverSubjectPrefix + webhook)
	m.Data = raw
	m.Header.Set(headerAlertSeq, strconv.FormatUint(seq, 10))
	return m
}

// severitySubjects lists the alert subjects of severities at least min,
// and of the given detectors (nil: all).
func severitySubjects(min schemas.Severity, detectors []string) []string {
	var out []string
	for _, s := range []schemas.Severity{schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical} {
		if s.Rank() < min.Rank() {
			continue
		}
		if len(detectors) == 0 {
			out = append(out, schemas.AlertSubjectPrefix+string(s)+".*")
			continue
		}
		for _, d := range detectors {
			out = append(out, schemas.AlertSubjectPrefix+string(s)+"."+d)
		}
	}
	return out
}
