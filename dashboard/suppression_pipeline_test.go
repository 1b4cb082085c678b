package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/schemas"
)

// hookReceiver records the alert ids a webhook received.
type hookReceiver struct {
	mu  sync.Mutex
	ids map[string]schemas.Alert
}

func (r *hookReceiver) got(id string) (schemas.Alert, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.ids[id]
	return a, ok
}

// gauge returns the value of the metric name (summed over its series) in
// reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestSuppressionAppliesToTheRunningPipeline runs the pipeline as serve
// does (embedded NATS, ingest, the alerts writer, detect, the notifier
// with a webhook and the dashboard, on real ClickHouse), makes a
// suppression rule through the dashboard API while it runs, and shows that
// within 10 s the next matching alert is stored marked and not sent to the
// webhook, while an alert the rule does not match is delivered unmarked.
func TestSuppressionAppliesToTheRunningPipeline(t *testing.T) {
	store := chtest.New(t)
	dsn := chtest.DSN(t)
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := t.Context()
	_, err := natsconn.EnsureEventStream(ctx, js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	_, err = natsconn.EnsureAlertStream(ctx, js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)

	ic := ingest.DefaultConfig()
	ic.BatchAge = 100 * time.Millisecond
	ing, err := ingest.New(js, dsn, ic)
	require.NoError(t, err)
	ac := ingest.DefaultAlertConfig()
	ac.BatchAge = 100 * time.Millisecond
	alerts, err := ingest.NewAlerts(js, dsn, ac)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	dc, err := detect.ParseConfig(nil)
	require.NoError(t, err)
	det, err := detect.NewService(js, detect.DefaultServiceConfig(), dc, detect.WithMetrics(detect.NewMetrics(reg)))
	require.NoError(t, err)

	hook := &hookReceiver{ids: map[string]schemas.Alert{}}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a schemas.Alert
		if json.Unmarshal(b, &a) == nil {
			hook.mu.Lock()
			hook.ids[a.ID] = a
			hook.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	ncfg := notify.DefaultConfig()
	ncfg.RetryMin, ncfg.RetryMax = 50*time.Millisecond, 300*time.Millisecond
	ncfg.Webhooks = []notify.Webhook{{Name: "siem", URL: receiver.URL, AllowHTTP: true, AllowPrivate: true,
		Secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}}
	ncfg.ApplyDefaults()
	notifier, err := notify.New(js, ncfg, notify.WithMetrics(notify.NewMetrics(reg)))
	require.NoError(t, err)

	dcfg := DefaultConfig()
	dcfg.Users = []User{{Name: "adam", Role: RoleAdmin, PasswordHash: hashPasswordWith("unused-adam", 8, 1, 1)}}
	srv, err := New(ctx, dcfg, Deps{Store: store, JS: js})
	require.NoError(t, err)
	bearer, _, err := srv.h.auth.tokens.create(ctx, apiToken{Name: "pipeline", Role: RoleAnalyst,
		Created: time.Now(), Expires: time.Now().Add(time.Hour), CreatedBy: "adam"})
	require.NoError(t, err)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return ing.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	g.Go(func() error { return det.Run(gctx) })
	g.Go(func() error { return notifier.Run(gctx) })
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("pipeline: %v", err)
		}
	})
	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		return errors.Join(det.Ready(ctx), notifier.Ready(ctx))
	})

	api := func(method, path string, body any) *httptest.ResponseRecorder {
		t.Helper()
		var r io.Reader = http.NoBody
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			r = strings.NewReader(string(b))
		}
		req := httptest.NewRequestWithContext(ctx, method, path, r)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bearer)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	// fixation publishes a session.started that keeps its pre-login
	// session: one session_fixation alert (high) about subject.
	n := 0
	fixation := func(subject string) string {
		t.Helper()
		n++
		ev := &schemas.Event{ID: fmt.Sprintf("ev-%s-%d", strings.TrimPrefix(subject, "k1:"), n), SchemaVersion: schemas.SchemaVersion,
			Type: schemas.SessionStarted, Time: schemas.At(time.Now().UTC().Truncate(time.Millisecond)), App: "shop", Subject: subject,
			Session: fmt.Sprintf("k1:ses-pipeline-%03d", n), Client: &schemas.Client{IPPrefix: "203.0.113.0/24", ASN: 64500, Country: "DE"}}
		ev.PreviousSession = ev.Session
		b, err := schemas.Encode(ev)
		require.NoError(t, err)
		m := nats.NewMsg(schemas.EventSubject(ev.App, ev.Subject))
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
		m.Data = b
		_, err = js.PublishMsg(ctx, m)
		require.NoError(t, err)
		return ev.ID
	}
	// alertOf waits for the stored alert of subject raised by event evID.
	alertOf := func(subject, evID string) alertJSON {
		t.Helper()
		var found alertJSON
		poll.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			rec := api(http.MethodGet, "/api/v1/alerts?subject="+subject, nil)
			if rec.Code != http.StatusOK {
				return fmt.Errorf("alerts: %d %s", rec.Code, rec.Body.String())
			}
			var out alertListJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				return err
			}
			for _, a := range out.Alerts {
				if len(a.Evidence) > 0 && a.Evidence[0] == evID {
					found = a
					return nil
				}
			}
			return fmt.Errorf("no alert for %s yet among %d", evID, len(out.Alerts))
		})
		return found
	}
	const muted, loud = "k1:pipeline-muted", "k1:pipeline-loud"

	// Before the rule: the muted subject's alert is delivered.
	before := alertOf(muted, fixation(muted))
	require.Nil(t, before.Suppression)
	poll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, ok := hook.got(before.ID); !ok {
			return errors.New("not delivered yet")
		}
		return nil
	})

	start := time.Now()
	rec := api(http.MethodPost, "/api/v1/suppressions", map[string]any{"detector": "session_fixation", "subject": muted,
		"action": "silence", "reason": "test account", "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var rule suppressionView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rule))
	// Detect picks the rule up without a restart.
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v := gauge(t, reg, "sessionmon_detect_suppression_rules"); v != 1 {
			return fmt.Errorf("detect holds %v rules", v)
		}
		return nil
	})
	mutedEv := fixation(muted)
	loudEv := fixation(loud)
	silenced := alertOf(muted, mutedEv)
	require.Less(t, time.Since(start), 10*time.Second, "the next matching alert is marked within 10 s of the rule")
	require.Equal(t, &schemas.AlertSuppression{Rule: rule.ID, Action: schemas.SuppressSilence}, silenced.Suppression)
	require.Equal(t, "high", silenced.Severity, "silence keeps the severity")
	other := alertOf(loud, loudEv)
	require.Nil(t, other.Suppression, "an alert the rule does not match is unaffected")

	// The unmatched alert is delivered; the silenced one, published
	// before it, is settled without a delivery.
	poll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, ok := hook.got(other.ID); !ok {
			return errors.New("the unmatched alert is not delivered yet")
		}
		if v := gauge(t, reg, "sessionmon_notify_silenced_total"); v != 1 {
			return fmt.Errorf("%v alerts silenced by the notifier", v)
		}
		return nil
	})
	_, delivered := hook.got(silenced.ID)
	require.False(t, delivered, "a silenced alert reaches no webhook")
	require.Equal(t, 1.0, gauge(t, reg, "sessionmon_detect_alerts_suppressed_total"))

	// The list filter finds exactly the silenced one.
	rec = api(http.MethodGet, "/api/v1/alerts?suppressed=true", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var page alertListJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	require.Len(t, page.Alerts, 1)
	require.Equal(t, silenced.ID, page.Alerts[0].ID)

	// Deleted: the next alert of the subject is delivered again.
	rec = api(http.MethodDelete, "/api/v1/suppressions/"+rule.ID, nil)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v := gauge(t, reg, "sessionmon_detect_suppression_rules"); v != 0 {
			return fmt.Errorf("detect holds %v rules", v)
		}
		return nil
	})
	after := alertOf(muted, fixation(muted))
	require.Nil(t, after.Suppression)
	poll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if _, ok := hook.got(after.ID); !ok {
			return errors.New("not delivered yet")
		}
		return nil
	})
}
