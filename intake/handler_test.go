package intake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/intake"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

type fixture struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	tokens *intake.Tokens
	reg    *prometheus.Registry
	srv    *httptest.Server
	token  string // for app "shop"
}

func newFixture(t *testing.T, cfg intake.Config) *fixture {
	t.Helper()
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	stream, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{Duplicates: time.Hour, Replicas: 1})
	require.NoError(t, err)
	tokens, err := intake.OpenTokens(t.Context(), js, []byte("a record key of at least 32 bytes!"))
	require.NoError(t, err)
	raw, tok, err := tokens.Create(t.Context(), "shop", "web", time.Hour, "test", time.Now())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(raw, intake.TokenPrefix))
	require.Len(t, tok.ID, intake.TokenIDLen)
	reg := prometheus.NewRegistry()
	h, err := intake.New(js, tokens, cfg, nil, reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("POST "+intake.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{js: js, stream: stream, tokens: tokens, reg: reg, srv: srv, token: raw}
}

// seq numbers the events of the tests, which run in parallel.
var seq atomic.Int64

// event returns a valid event of app as JSON, with extra members appended.
func event(app, extra string) (id string, data string) {
	id = fmt.Sprintf("01JEVENT%018d", seq.Add(1))
	at := time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05.000Z")
	return id, fmt.Sprintf(`{"id":%q,"schema_version":1,"type":"login.failed","time":%q,"app":%q,"subject":"k1:AAAAAAAAAAAAAAAAAAAAAA","reason":"bad_password"%s}`, id, at, app, extra)
}

func (f *fixture) post(t *testing.T, token, contentType string, body []byte) (*http.Response, intake.Response, map[string]string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+intake.Path, bytes.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var ok intake.Response
	var bad map[string]string
	if res.StatusCode == http.StatusAccepted || res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Content-Type") == "application/json" {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&ok))
	} else {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&bad))
	}
	return res, ok, bad
}

// stored returns the ids of the events in the stream, checked by the gate
// ingest and the detectors run (a request's events go in batched
// messages).
func (f *fixture) stored(t *testing.T) []string {
	t.Helper()
	info, err := f.stream.Info(t.Context())
	require.NoError(t, err)
	var ids []string
	for s := info.State.FirstSeq; s > 0 && s <= info.State.LastSeq; s++ {
		m, err := f.stream.GetMsg(t.Context(), s)
		require.NoError(t, err)
		var msgIDs []string
		require.NoError(t, pii.AdmitMessage(m.Subject, m.Header, m.Data, time.Now(), func(_ int, _ []byte, e *schemas.Event, err error) {
			require.NoError(t, err)
			ids = append(ids, e.ID)
			msgIDs = append(msgIDs, e.ID)
		}))
		want := msgIDs[0]
		if len(msgIDs) > 1 {
			want = schemas.BatchMsgID(msgIDs)
		}
		require.Equal(t, want, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

// TestIntakeBatch posts an NDJSON batch mixing good and bad events: the
// good ones are stored once (a resend is reported duplicate, not stored
// again), each bad one is rejected with an error naming its field, and no
// bad one reaches the stream.
func TestIntakeBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, intake.Config{})
	good1, e1 := event("shop", "")
	good2, e2 := event("shop", `,"client":{"user_agent":"Mozilla/5.0 (bob@example.com) Chrome/131.0.0.0"}`)
	_, email := event("shop", "")
	email = strings.Replace(email, `"k1:AAAAAAAAAAAAAAAAAAAAAA"`, `"alice@example.com"`, 1)
	_, other := event("bank", "")
	_, noSubject := event("shop", "")
	noSubject = strings.Replace(noSubject, `"subject":"k1:AAAAAAAAAAAAAAAAAAAAAA",`, "", 1)
	body := strings.Join([]string{e1, `{"id": "broken`, email, other, "", noSubject, e2}, "\n")

	res, out, _ := f.post(t, f.token, "application/x-ndjson", []byte(body))
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Equal(t, 2, out.Accepted)
	require.Equal(t, 4, out.Rejected)
	require.Len(t, out.Results, 6, "one result per event; the blank line is no event")
	byIndex := func(i int) intake.Result { return out.Results[i] }
	require.Equal(t, intake.StatusAccepted, byIndex(0).Status)
	require.Equal(t, good1, byIndex(0).ID)
	require.Equal(t, intake.StatusRejected, byIndex(1).Status)
	require.Contains(t, byIndex(1).Error, "JSON")
	require.Equal(t, []string{"subject"}, byIndex(2).Fields)
	require.NotContains(t, byIndex(2).Error, "alice", "the error never quotes personal data")
	require.Equal(t, []string{"app"}, byIndex(3).Fields)
	require.Contains(t, byIndex(3).Error, `may publish only for app "shop"`)
	require.Equal(t, []string{"subject"}, byIndex(4).Fields)
	require.Equal(t, intake.StatusAccepted, byIndex(5).Status)
	require.ElementsMatch(t, []string{good1, good2}, f.stored(t))

	// The User-Agent with an e-mail address was cleared, not stored.
	m, err := f.stream.GetLastMsgForSubject(t.Context(), schemas.EventSubjects)
	require.NoError(t, err)
	require.NotContains(t, string(m.Data), "bob@example.com")

	// Resending the batch doubles nothing.
	res, out, _ = f.post(t, f.token, "application/x-ndjson", []byte(body))
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Equal(t, 0, out.Accepted)
	require.Equal(t, 2, out.Duplicates)
	require.ElementsMatch(t, []string{good1, good2}, f.stored(t))

	require.Equal(t, 2.0, counter(t, f.reg, "sessionmon_intake_events_total", "duplicate"))
	require.Equal(t, 2.0, counter(t, f.reg, "sessionmon_intake_rejected_total", "app_mismatch"), "once a post")
}

// counter returns the value of the counter name{label=value}.
func counter(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, value)
	return 0
}

// gauge returns the value of the unlabelled gauge name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestIntakeJSONBodies takes a single event and an array; a malformed
// array is refused whole with 400, and nothing of it is stored.
func TestIntakeJSONBodies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, intake.Config{})
	id1, e1 := event("shop", "")
	res, out, _ := f.post(t, f.token, "application/json", []byte(e1))
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Equal(t, 1, out.Accepted)

	id2, e2 := event("shop", "")
	id3, e3 := event("shop", "")
	res, out, _ = f.post(t, f.token, "application/json; charset=utf-8", []byte("["+e2+","+e3+"]"))
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Equal(t, 2, out.Accepted)

	_, e4 := event("shop", "")
	res, _, bad := f.post(t, f.token, "application/json", []byte("["+e4+`,{"id":`))
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Contains(t, bad["error"], "not a JSON array")
	require.Contains(t, bad["error"], "nothing was stored")

	res, _, bad = f.post(t, f.token, "text/csv", []byte(e4))
	require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode)
	require.Contains(t, bad["error"], "application/x-ndjson")
	require.ElementsMatch(t, []string{id1, id2, id3}, f.stored(t))
}

// TestIntakeRefusesTokens: no token, a made-up one, a token whose record
// was forged in the bucket, an expired one and a revoked one are all 401,
// and nothing is stored.
func TestIntakeRefusesTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, intake.Config{})
	_, e := event("shop", "")
	check := func(token, want string) {
		t.Helper()
		res, _, bad := f.post(t, token, "application/x-ndjson", []byte(e))
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer")
		require.Contains(t, bad["error"], want)
	}
	check("", "missing intake token")
	check(intake.TokenPrefix+strings.Repeat("A", 43), "unknown or revoked")
	check("smt_dashboard-token", "unknown or revoked")

	// A record written to the bucket by someone without the record key.
	forged := intake.TokenPrefix + strings.Repeat("B", 43)
	kv, err := f.js.KeyValue(t.Context(), schemas.IntakeTokenBucket)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), sha256Hex(forged), []byte(`{"app":"shop","name":"x","created":"2026-01-01T00:00:00Z","expires":"2099-01-01T00:00:00Z","mac":"AAAA"}`))
	require.NoError(t, err)
	check(forged, "unknown or revoked")

	expired, _, err := f.tokens.Create(t.Context(), "shop", "old", time.Hour, "test", time.Now().Add(-2*time.Hour))
	require.NoError(t, err)
	check(expired, "expired at")

	revoked, tok, err := f.tokens.Create(t.Context(), "shop", "gone", time.Hour, "test", time.Now())
	require.NoError(t, err)
	require.NoError(t, f.tokens.Revoke(t.Context(), tok.ID))
	check(revoked, "unknown or revoked")
	require.ErrorIs(t, f.tokens.Revoke(t.Context(), tok.ID), intake.ErrUnknownToken)

	list, refused, err := f.tokens.List(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, refused, "the forged record")
	require.Len(t, list, 2)
	require.Empty(t, f.stored(t))
}

// TestIntakeLimits: a body over 1 MiB and a batch of over 1000 events are
// 413, and nothing of them is stored.
func TestIntakeLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, intake.Config{})
	_, e := event("shop", `,"attrs":{"pad":"`+strings.Repeat("x", 200)+`"}`)
	var big bytes.Buffer
	for big.Len() <= intake.MaxBodyBytes {
		big.WriteString(e + "\n")
	}
	res, _, bad := f.post(t, f.token, "application/x-ndjson", big.Bytes())
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Contains(t, bad["error"], "split the batch")

	var many bytes.Buffer
	for range intake.MaxEvents + 1 {
		_, e := event("shop", "")
		many.WriteString(e + "\n")
	}
	require.Less(t, many.Len(), intake.MaxBodyBytes)
	res, _, bad = f.post(t, f.token, "application/x-ndjson", many.Bytes())
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Contains(t, bad["error"], "1001 events")
	require.Empty(t, f.stored(t))
}

// TestIntakeOverload: past MaxInFlight requests at once, the next is 429
// with Retry-After.
func TestIntakeOverload(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{Duplicates: time.Hour, Replicas: 1})
	require.NoError(t, err)
	tokens, err := intake.OpenTokens(t.Context(), js, []byte("a record key of at least 32 bytes!"))
	require.NoError(t, err)
	raw, _, err := tokens.Create(t.Context(), "shop", "web", time.Hour, "test", time.Now())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	h, err := intake.New(js, tokens, intake.Config{MaxInFlight: 1}, nil, reg)
	require.NoError(t, err)

	// The one slot is held by a request whose body has not arrived yet.
	pr, pw := io.Pipe()
	held := httptest.NewRequestWithContext(t.Context(), http.MethodPost, intake.Path, pr)
	held.Header.Set("Authorization", "Bearer "+raw)
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, held)
		done <- rec.Code
	}()
	require.Eventually(t, func() bool {
		return gauge(t, reg, "sessionmon_intake_in_flight") == 1
	}, 5*time.Second, 5*time.Millisecond)

	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, intake.Path, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+raw)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))

	_, e := event("shop", "")
	_, _ = pw.Write([]byte(e))
	pw.Close()
	require.Equal(t, http.StatusAccepted, <-done)
}

// TestIntakeJetStreamDown: when JetStream cannot store the events (here:
// no stream takes them), the answer is 503 with Retry-After, every valid
// event is reported failed, and a retry later stores them once.
func TestIntakeJetStreamDown(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	tokens, err := intake.OpenTokens(t.Context(), js, []byte("a record key of at least 32 bytes!"))
	require.NoError(t, err)
	raw, _, err := tokens.Create(t.Context(), "shop", "web", time.Hour, "test", time.Now())
	require.NoError(t, err)
	h, err := intake.New(js, tokens, intake.Config{PublishTimeout: 2 * time.Second}, nil, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &fixture{js: js, srv: srv, token: raw}

	id, e := event("shop", "")
	_, bad := event("shop", "")
	bad = strings.Replace(bad, `"login.failed"`, `"login.maybe"`, 1)
	res, out, _ := f.post(t, raw, "application/x-ndjson", []byte(e+"\n"+bad))
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Equal(t, "2", res.Header.Get("Retry-After"))
	require.Equal(t, 1, out.Failed)
	require.Equal(t, 1, out.Rejected)
	require.Equal(t, intake.StatusFailed, out.Results[0].Status)
	require.Contains(t, out.Results[0].Error, "not stored")

	f.stream, err = natsconn.EnsureEventStream(t.Context(), js, natsconn.StreamConfig{Duplicates: time.Hour, Replicas: 1})
	require.NoError(t, err)
	for range 2 {
		res, _, _ = f.post(t, raw, "application/x-ndjson", []byte(e+"\n"+bad))
		require.Equal(t, http.StatusAccepted, res.StatusCode)
	}
	require.Equal(t, []string{id}, f.stored(t))
}

// TestIntakePacksPartitions: a request's events go into one batched
// message per partition of the events stream, each in the partition of
// its subject, and the same request sent again is stored once.
func TestIntakePacksPartitions(t *testing.T) {
	f := newFixture(t, intake.Config{})
	const parts = 4
	_, err := natsconn.EnsureEventStream(t.Context(), f.js, natsconn.StreamConfig{Duplicates: time.Hour, Replicas: 1, Partitions: parts})
	require.NoError(t, err)
	at := time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05.000Z")
	var body bytes.Buffer
	const n = 200
	for i := range n {
		fmt.Fprintf(&body, `{"id":"01JPACK%019d","schema_version":1,"type":"login.failed","time":%q,"app":"shop","subject":"k1:SUBJECT%014d"}`+"\n", i, at, i%37)
	}
	res, out, _ := f.post(t, f.token, "application/x-ndjson", body.Bytes())
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Equal(t, n, out.Accepted)

	info, err := f.stream.Info(t.Context())
	require.NoError(t, err)
	require.LessOrEqual(t, info.State.Msgs, uint64(parts), "one message per partition")
	seen := map[string]bool{}
	for s := info.State.FirstSeq; s <= info.State.LastSeq; s++ {
		m, err := f.stream.GetMsg(t.Context(), s)
		require.NoError(t, err)
		tokens := strings.Split(m.Subject, ".")
		require.Len(t, tokens, 5, m.Subject)
		p, err := strconv.Atoi(tokens[2])
		require.NoError(t, err)
		require.NoError(t, pii.AdmitMessage(m.Subject, m.Header, m.Data, time.Now(), func(_ int, _ []byte, e *schemas.Event, err error) {
			require.NoError(t, err)
			require.Equal(t, p, schemas.EventPartition(e.Subject, parts), "event %s stored in partition %d", e.ID, p)
			require.False(t, seen[e.ID], "event %s stored twice", e.ID)
			seen[e.ID] = true
		}))
	}
	require.Len(t, seen, n)

	res, out, _ = f.post(t, f.token, "application/x-ndjson", body.Bytes())
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.Equal(t, n, out.Duplicates, "the same request again is stored once")
	after, err := f.stream.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, info.State.Msgs, after.State.Msgs)
}
