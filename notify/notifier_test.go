package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// receiver is an httptest webhook receiver that verifies every request
// with the Standard Webhooks reference verifier. respond picks the status
// of the n-th request (1-based).
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	respond  func(n int, id string) int
	hits     int
	accepted map[string]int // webhook-id → 2xx answers
	ids      map[string]int // webhook-id → requests
}

func newReceiver(t testing.TB, secret string, respond func(n int, id string) int) *receiver {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	r := &receiver{t: t, respond: respond, accepted: map[string]int{}, ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		if err := v.Verify(body, req.Header); err != nil {
			t.Errorf("signature does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := req.Header.Get("webhook-id")
		var a schemas.Alert
		if err := json.Unmarshal(body, &a); err != nil || a.ID != id {
			t.Errorf("body is not the alert %s: %v", id, err)
		}
		r.mu.Lock()
		r.hits++
		r.ids[id]++
		status := r.respond(r.hits, id)
		if status/100 == 2 {
			r.accepted[id]++
		}
		r.mu.Unlock()
		if status < 0 { // hang
			<-req.Context().Done()
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setRespond(f func(n int, id string) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

// acceptedOnce checks that every id was accepted exactly once.
func (r *receiver) acceptedOnce(ids []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if n := r.accepted[id]; n != 1 {
			return fmt.Errorf("alert %s accepted %d times", id, n)
		}
	}
	if len(r.accepted) != len(ids) {
		return fmt.Errorf("accepted %d alerts, want %d", len(r.accepted), len(ids))
	}
	return nil
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// waitCount waits until counter c reaches want: the notifier counts a
// delivery just after the receiver answered.
func waitCount(t testing.TB, c prometheus.Collector, want float64) {
	t.Helper()
	poll.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := testutil.ToFloat64(c); got != want {
			return fmt.Errorf("counter is %v, want %v", got, want)
		}
		return nil
	})
}

func always(status int) func(int, string) int { return func(int, string) int { return status } }

// testWebhook is a webhook on r, fast to retry.
func testWebhook(name string, r *receiver) Webhook {
	return Webhook{
		Name: name, URL: r.srv.URL, Secret: kaSecret,
		AllowHTTP: true, AllowPrivate: true,
		Timeout: 500 * time.Millisecond, GiveUpAfter: time.Hour,
	}
}

func testConfig(hooks ...Webhook) Config {
	return Config{RetryMin: 50 * time.Millisecond, RetryMax: 300 * time.Millisecond, AckWait: 2 * time.Second, Webhooks: hooks}
}

// harness is a NATS server with the alerts stream.
type harness struct {
	t  *testing.T
	js jetstream.JetStream
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	_, err := natsconn.EnsureAlertStream(t.Context(), js, natsconn.AlertStreamConfig{MaxAge: time.Hour, Duplicates: time.Minute})
	require.NoError(t, err)
	return &harness{t: t, js: js}
}

// start runs a notifier until the returned stop is called (or the test
// ends) and waits until it is ready.
func (h *harness) start(cfg Config, opts ...Option) (*Notifier, *Metrics, func()) {
	h.t.Helper()
	m := NewMetrics(nil)
	n, err := New(h.js, cfg, append([]Option{WithMetrics(m)}, opts...)...)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(h.t, err)
			case <-time.After(10 * time.Second):
				h.t.Error("notifier did not stop")
			}
		})
	}
	h.t.Cleanup(stop)
	poll.CheckFor(h.t, 5*time.Second, 10*time.Millisecond, func() error { return n.Ready(ctx) })
	return n, m, stop
}

// publish stores alerts i in 0..count-1 (with the given severity and app)
// and returns their ids.
func (h *harness) publish(from, count int, mod func(*schemas.Alert)) []string {
	h.t.Helper()
	var ids []string
	for i := from; i < from+count; i++ {
		a := testAlert(i)
		if mod != nil {
			mod(&a)
		}
		msg := nats.NewMsg(schemas.AlertSubject(&a))
		msg.Header.Set(jetstream.MsgIDHeader, a.ID)
		msg.Data = testAlertJSON(h.t, a)
		_, err := h.js.PublishMsg(h.t.Context(), msg)
		require.NoError(h.t, err)
		ids = append(ids, a.ID)
	}
	return ids
}

func TestDeliverReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, func(n int, _ string) int {
		if n <= 8 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	_, m, _ := h.start(testConfig(testWebhook("ops", r)))
	ids := h.publish(1, 5, nil)
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(ids) })
	waitCount(t, m.delivered.WithLabelValues("ops"), 5)
	require.GreaterOrEqual(t, testutil.ToFloat64(m.retried.WithLabelValues("ops")), 8.0)
	require.Zero(t, testutil.ToFloat64(m.undeliverable.WithLabelValues("ops")))
	require.Equal(t, 5+8, r.requests())
}

func TestDeliverFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusNoContent))
	w := testWebhook("ops", r)
	w.MinSeverity = schemas.SeverityHigh
	w.Apps = []string{"shop"}
	w.Detectors = []string{"brute_force"}
	_, m, _ := h.start(testConfig(w))
	h.publish(1, 1, func(a *schemas.Alert) { a.Severity = schemas.SeverityLow })
	h.publish(2, 1, func(a *schemas.Alert) { a.App = "other" })
	h.publish(3, 1, func(a *schemas.Alert) { a.Detector = "token_reuse" })
	want := h.publish(4, 1, nil)
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(want) })
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return settled(t, h.js, "ops") })
	require.Equal(t, 1, r.requests())
	require.Equal(t, 1.0, testutil.ToFloat64(m.delivered.WithLabelValues("ops")))
}

// settled checks that the webhook's consumer has nothing pending or in
// flight: no alert can come again.
func settled(t testing.TB, js jetstream.JetStream, webhook string) error {
	c, err := js.Consumer(t.Context(), schemas.AlertStream, schemas.NotifyConsumerPrefix+webhook)
	if err != nil {
		return err
	}
	info, err := c.Info(t.Context())
	if err != nil {
		return err
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
	}
	return nil
}

func TestDeliverGoneIsNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusGone))
	n, m, _ := h.start(testConfig(testWebhook("gone", r)))
	ids := h.publish(1, 1, nil)
	var recs []Undeliverable
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() (err error) {
		recs, err = n.Undeliverable(t.Context())
		if err == nil && len(recs) == 0 {
			err = errors.New("no undeliverable record")
		}
		return err
	})
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return settled(t, h.js, "gone") })
	require.Equal(t, 1, r.requests(), "a 410 is not retried")
	require.Len(t, recs, 1)
	require.Equal(t, ids[0], recs[0].AlertID)
	require.Equal(t, ReasonPermanent, recs[0].Reason)
	require.Equal(t, http.StatusGone, recs[0].LastStatus)
	require.Equal(t, uint64(1), recs[0].Attempts)
	require.Equal(t, 1.0, testutil.ToFloat64(m.failed.WithLabelValues("gone")))
	require.Zero(t, testutil.ToFloat64(m.retried.WithLabelValues("gone")))
}

func TestHangingWebhookDoesNotBlockAnother(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	slow := newReceiver(t, kaSecret, always(-1))
	fast := newReceiver(t, kaSecret, always(http.StatusOK))
	ws := testWebhook("slow", slow)
	ws.Timeout = 300 * time.Millisecond
	ws.Concurrency = 1
	_, m, _ := h.start(testConfig(ws, testWebhook("fast", fast)))
	ids := h.publish(1, 4, nil)
	poll.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error { return fast.acceptedOnce(ids) })
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if got := testutil.ToFloat64(m.retried.WithLabelValues("slow")); got < 2 {
			return fmt.Errorf("slow retried %v times", got)
		}
		return nil
	})
	require.Zero(t, testutil.ToFloat64(m.delivered.WithLabelValues("slow")))
	waitCount(t, m.delivered.WithLabelValues("fast"), 4)
}

func TestRestartMidBackoffLosesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusServiceUnavailable))
	cfg := testConfig(testWebhook("ops", r))
	cfg.RetryMin, cfg.RetryMax = 500*time.Millisecond, time.Second
	_, m1, stop := h.start(cfg)
	ids := h.publish(1, 5, nil)
	poll.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := testutil.ToFloat64(m1.retried.WithLabelValues("ops")); got < 5 {
			return fmt.Errorf("retried %v", got)
		}
		return nil
	})
	stop()
	r.setRespond(always(http.StatusOK))
	_, m2, _ := h.start(cfg)
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(ids) })
	waitCount(t, m2.delivered.WithLabelValues("ops"), 5)
}

func TestGiveUpThenRedeliver(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusBadGateway))
	w := testWebhook("ops", r)
	w.GiveUpAfter = 500 * time.Millisecond
	other := newReceiver(t, kaSecret, always(http.StatusOK))
	n, m, _ := h.start(testConfig(w, testWebhook("other", other)))
	ids := h.publish(1, 2, nil)
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if got := testutil.ToFloat64(m.undeliverable.WithLabelValues("ops")); got != 2 {
			return fmt.Errorf("undeliverable %v", got)
		}
		return nil
	})
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return settled(t, h.js, "ops") })
	recs, err := n.Undeliverable(t.Context())
	require.NoError(t, err)
	require.Len(t, recs, 2)
	for _, rec := range recs {
		require.Equal(t, ReasonGaveUp, rec.Reason)
		require.Equal(t, "ops", rec.Webhook)
		require.Equal(t, http.StatusBadGateway, rec.LastStatus)
		require.Greater(t, rec.Attempts, uint64(1))
	}

	r.setRespond(always(http.StatusOK))
	got, err := n.Redeliver(t.Context(), ids[0], "")
	require.NoError(t, err)
	require.Equal(t, []string{"ops"}, got, "only the webhook that gave up")
	_, err = n.Redeliver(t.Context(), ids[1], "ops")
	require.NoError(t, err)
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(ids) })
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		recs, err := n.Undeliverable(t.Context())
		if err == nil && len(recs) != 0 {
			err = fmt.Errorf("%d records left", len(recs))
		}
		return err
	})
	require.NoError(t, other.acceptedOnce(ids), "the other webhook got each alert once")

	_, err = n.Redeliver(t.Context(), ids[0], "")
	require.ErrorIs(t, err, ErrNotFound, "no record left")
	_, err = n.Redeliver(t.Context(), ids[0], "nope")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = n.Redeliver(t.Context(), fmtID(99), "ops")
	require.ErrorIs(t, err, ErrNotFound, "no such alert in the stream")
}

func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	h := newHarness(t)
	r := newReceiver(t, kaSecret, func(n int, _ string) int {
		if n == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	_, _, stop := h.start(testConfig(testWebhook("ops", r)), WithDeliveryLog(store))
	ids := h.publish(1, 1, nil)
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(ids) })
	stop() // flushes the log
	rows, err := store.WebhookDeliveriesOfAlert(t.Context(), ids[0])
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, chstore.DeliveryRetry, rows[0].Status)
	require.Equal(t, uint16(429), rows[0].HTTPStatus)
	require.Equal(t, uint32(1), rows[0].Attempt)
	require.Equal(t, chstore.DeliveryDelivered, rows[1].Status)
	require.Equal(t, uint16(200), rows[1].HTTPStatus)
	require.Equal(t, uint32(2), rows[1].Attempt)
	for _, row := range rows {
		require.Equal(t, "ops", row.Webhook)
		require.NotContains(t, row.Error, "MfKQ9r8")
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusOK))
	w := testWebhook("ops", r)
	w.RateLimit, w.Burst, w.Concurrency = 5, 1, 4
	_, _, _ = h.start(testConfig(w))
	start := time.Now()
	ids := h.publish(1, 4, nil)
	poll.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error { return r.acceptedOnce(ids) })
	// 5 a second with a burst of 1: three waits of 200ms at least.
	require.GreaterOrEqual(t, time.Since(start), 550*time.Millisecond)
}

func TestNewWebhookGetsAlertsRaisedBeforeItStarted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusOK))
	// Detect ran before the notifier was first started: these alerts wait
	// in the stream and are delivered once it starts.
	before := h.publish(1, 3, nil)
	_, _, stop := h.start(testConfig(testWebhook("ops", r)))
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(before) })

	// A restart keeps the consumer where it was: nothing is sent twice.
	stop()
	after := h.publish(4, 2, nil)
	h.start(testConfig(testWebhook("ops", r)))
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(append(before, after...)) })
	require.Equal(t, 5, r.requests())
}
