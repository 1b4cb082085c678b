package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// Subjects of TestEraseReachesEveryStream: erased is erased; kept and
// neighbour (whose pseudonym starts with erased's) keep everything.
const (
	erased    = "sub_erase_0001"
	kept      = "sub_keep_0002"
	neighbour = "sub_erase_00012"
)

// streamMessage is a message as stored in a stream.
type streamMessage struct {
	subject string
	header  nats.Header
	data    []byte
}

// mentions reports whether m names pseudonym anywhere, as a whole token
// (neighbour's pseudonym contains erased's): its NATS subject, a header (or
// the header naming it by hash) or its body.
func (m streamMessage) mentions(pseudonym string) bool {
	token := regexp.MustCompile(`(^|[^A-Za-z0-9_:~-])` + regexp.QuoteMeta(pseudonym) + `($|[^A-Za-z0-9_:~-])`)
	for _, v := range m.header.Values(schemas.SubjectHashHeader) {
		if v == schemas.SubjectHash(pseudonym) {
			return true
		}
	}
	for _, vs := range m.header {
		for _, v := range vs {
			if token.MatchString(v) {
				return true
			}
		}
	}
	return token.MatchString(m.subject) || token.Match(m.data)
}

// storedMessages reads every message of stream by sequence.
func storedMessages(t *testing.T, js jetstream.JetStream, stream string) []streamMessage {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	var out []streamMessage
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
			continue
		}
		out = append(out, streamMessage{subject: raw.Subject, header: raw.Header, data: raw.Data})
	}
	return out
}

// countMentions counts the messages of stream that mention pseudonym.
func countMentions(t *testing.T, js jetstream.JetStream, stream, pseudonym string) int {
	t.Helper()
	n := 0
	for _, m := range storedMessages(t, js, stream) {
		if m.mentions(pseudonym) {
			n++
		}
	}
	return n
}

func eventJSON(t *testing.T, id, subject string, at time.Time) []byte {
	t.Helper()
	b, err := schemas.Encode(&schemas.Event{ID: id, SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginFailed,
		Time: schemas.At(at), App: "shop", Subject: subject})
	require.NoError(t, err)
	return b
}

// TestEraseReachesEveryStream erases a subject with `sessionmon erase`
// while NATS holds copies of its data: events stored before and after the
// events stream was partitioned, alerts with and without the subject hash
// header (published before it existed), an alert of another subject whose
// details name it, status changes of its alerts (one whose alert is only
// in ClickHouse, having left the stream), and dead letters. Afterwards no
// message of the three streams mentions the subject, every other
// subject's message is still there, and the erasure request, as stored
// and as listed, keeps only the pseudonym's hash with the counts deleted
// per stream.
func TestEraseReachesEveryStream(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := chtest.New(t)
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)

	// Events: before the stream was partitioned (stored as published),
	// then partitioned.
	_, err := natsconn.EnsureEventStream(ctx, js, natsconn.StreamConfig{MaxAge: time.Hour, Duplicates: time.Minute})
	require.NoError(t, err)
	publish := func(subject string, data []byte, hdr nats.Header) {
		t.Helper()
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: hdr})
		require.NoError(t, err)
	}
	for _, sub := range []string{erased, kept, neighbour} {
		publish(schemas.EventSubject("shop", sub), eventJSON(t, "ev-old-"+sub, sub, at), nil)
	}
	_, err = natsconn.EnsureEventStream(ctx, js, natsconn.StreamConfig{MaxAge: time.Hour, Duplicates: time.Minute, Partitions: 16})
	require.NoError(t, err)
	for i, sub := range []string{erased, erased, kept, neighbour} {
		publish(schemas.EventSubject("shop", sub), eventJSON(t, "ev-new-"+sub+"-"+string(rune('a'+i)), sub, at), nil)
	}

	// Alerts and status changes.
	require.NoError(t, ensureAlertStream(ctx, js, true))
	alertOf := func(id, subject string) schemas.Alert {
		return schemas.Alert{ID: alertID(id), Detector: "brute_force", Severity: schemas.SeverityMedium, Time: schemas.At(at),
			DetectedAt: schemas.At(at), App: "shop", Subject: subject, Title: "Brute force", Summary: "5 failed logins",
			Evidence: []string{"ev-1"}}
	}
	for _, a := range []schemas.Alert{alertOf("a-erased-new", erased), alertOf("a-kept", kept), alertOf("a-neighbour", neighbour)} {
		require.NoError(t, alertbus.PublishAlert(ctx, js, a))
	}
	// Published before alerts carried the subject hash header.
	legacy, err := json.Marshal(alertOf("a-erased-legacy", erased))
	require.NoError(t, err)
	publish(schemas.AlertSubjectPrefix+"medium.brute_force", legacy, nil)
	// A source alert of no subject whose details name the erased one.
	stuffing := alertOf("a-source", "")
	stuffing.Detector, stuffing.Details = "credential_stuffing", map[string]any{"subjects": []string{erased, kept}}
	require.NoError(t, alertbus.PublishAlert(ctx, js, stuffing))
	for _, id := range []string{"a-erased-new", "a-erased-legacy", "a-only-in-clickhouse", "a-kept"} {
		_, err := alertbus.PublishStatusChange(ctx, js, schemas.StatusChange{AlertID: alertID(id), Status: schemas.StatusAcknowledged,
			Actor: "soc", Comment: "looked at it", Time: schemas.At(at)})
		require.NoError(t, err)
	}
	// ClickHouse knows the alert whose message has left the stream.
	require.NoError(t, store.InsertAlerts(ctx, []chstore.AlertRow{{ID: alertID("a-only-in-clickhouse"), Detector: "brute_force",
		Severity: "medium", SeverityRank: 2, Time: at, DetectedAt: at, App: "shop", Subject: erased, Title: "t", Summary: "s"}}))

	// Dead letters: as ingest writes them now (with the header; the body
	// spells the pseudonym with JSON escapes), as it wrote them before,
	// and another subject's.
	_, err = natsconn.EnsureDLQStream(ctx, js, 7*24*time.Hour, 1)
	require.NoError(t, err)
	escaped := []byte(`{"id":"ev-x","subject":"sub\u005ferase\u005f0001","type":"login.failed","attrs":{"email":"[redacted:email]"}}`)
	publish("sessionmon.dlq.pii", escaped, nats.Header{schemas.SubjectHashHeader: {schemas.SubjectHash(erased)}})
	publish("sessionmon.dlq.schema", []byte(`{"id":"ev-y","subject":"`+erased+`","type":"nope"}`), nil)
	publish("sessionmon.dlq.schema", []byte(`{"id":"ev-z","subject":"`+kept+`","type":"nope"}`),
		nats.Header{schemas.SubjectHashHeader: {schemas.SubjectHash(kept)}})
	publish("sessionmon.dlq.invalid_json", []byte(`{"subject":"`+neighbour+`",`), nil)

	before := map[string][]streamMessage{}
	for _, stream := range []string{schemas.EventStream, schemas.AlertStream, schemas.DLQStream} {
		before[stream] = storedMessages(t, js, stream)
		require.NotZero(t, countMentions(t, js, stream, erased), "%s holds the subject before the erasure", stream)
	}

	headed := 0
	for _, m := range before[schemas.AlertStream] {
		if m.header.Get(schemas.SubjectHashHeader) == schemas.SubjectHash(erased) {
			headed++
		}
	}
	require.Equal(t, 1, headed, "an alert published now names its subject by hash in a header")

	var out bytes.Buffer
	e := subjectEnv(t, &out, erased)
	e.cfg.ClickHouseDSN = chtest.DSN(t)
	e.cfg.NATS.URL = s.ClientURL()
	require.NoError(t, runErase(ctx, e))
	require.Contains(t, out.String(), "NATS stream SESSIONMON_ALERTS: 6 messages deleted\n"+
		"NATS stream SESSIONMON_DLQ: 2 messages deleted\n"+
		"NATS stream SESSIONMON_EVENTS: 3 messages deleted\n", out.String())
	require.NotContains(t, out.String(), erased, "the command does not print the pseudonym")
	require.Contains(t, out.String(), "recorded as subject "+schemas.SubjectHash(erased))

	for stream, msgs := range before {
		require.Zero(t, countMentions(t, js, stream, erased), "no message of %s mentions the erased subject", stream)
		var want []streamMessage
		for _, m := range msgs {
			if !m.mentions(erased) && !isStatusOf(m, "a-erased-new", "a-erased-legacy", "a-only-in-clickhouse") {
				want = append(want, m)
			}
		}
		require.Equal(t, want, storedMessages(t, js, stream), "every other message of %s is untouched", stream)
	}
	require.Equal(t, 2, countMentions(t, js, schemas.EventStream, kept))
	require.Equal(t, 2, countMentions(t, js, schemas.EventStream, neighbour))

	reqs, err := store.ErasureRequests(ctx, 10)
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, chstore.ErasureDone, r.Status)
	require.Empty(t, r.Subject)
	require.Equal(t, schemas.SubjectHash(erased), r.SubjectHash)
	require.Equal(t, chstore.StreamMessages{schemas.EventStream: 3, schemas.AlertStream: 6, schemas.DLQStream: 2}, r.Streams)
	opts, err := clickhouse.ParseDSN(chtest.DSN(t))
	require.NoError(t, err)
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	defer conn.Close()
	var stored uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+store.Database()+".erasure_requests WHERE subject = ?",
		erased).Scan(&stored))
	require.Zero(t, stored, "no status change of the request keeps the pseudonym")

	out.Reset()
	list := subjectEnv(t, &out, "")
	list.cfg.ClickHouseDSN = chtest.DSN(t)
	list.args = []string{"list"}
	require.NoError(t, runErase(ctx, list))
	require.Contains(t, out.String(), schemas.SubjectHash(erased))
	require.NotContains(t, out.String(), erased)
}

// alertID makes a valid alert id (32 hex digits) of a name.
func alertID(name string) string {
	return strings.TrimPrefix(schemas.SubjectHash(name), "sha256:")[:32]
}

// isStatusOf reports whether m is a status change of one of the alerts.
func isStatusOf(m streamMessage, alerts ...string) bool {
	if !strings.HasPrefix(m.subject, schemas.StatusSubjectPrefix) {
		return false
	}
	var c schemas.StatusChange
	if json.Unmarshal(m.data, &c) != nil {
		return false
	}
	for _, a := range alerts {
		if c.AlertID == alertID(a) {
			return true
		}
	}
	return false
}
