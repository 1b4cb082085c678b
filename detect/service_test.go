package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// closedDSN points at a port nothing listens on.
const closedDSN = "clickhouse://127.0.0.1:1/sessionmon?dial_timeout=200ms"

// svcConfig retries quickly.
func svcConfig() ServiceConfig {
	c := DefaultServiceConfig()
	c.AckWait = 5 * time.Second
	c.RetryMin = 50 * time.Millisecond
	c.RetryMax = 500 * time.Millisecond
	return c
}

// svcStack is a real NATS server with the events stream.
func svcStack(t testing.TB) jetstream.JetStream {
	t.Helper()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	return js
}

// startService runs a new service until the test ends or stop is called,
// and waits until it detects live (its replay is done).
func startService(t testing.TB, js jetstream.JetStream, dsn string, cfg ServiceConfig, opts ...ServiceOption) (svc *Service, stop func()) {
	t.Helper()
	return startServiceWith(t, js, dsn, cfg, DefaultConfig(), opts...)
}

// startServiceWith is startService with the detectors' configuration dcfg.
func startServiceWith(t testing.TB, js jetstream.JetStream, dsn string, cfg ServiceConfig, dcfg Config, opts ...ServiceOption) (svc *Service, stop func()) {
	t.Helper()
	svc, err := NewService(js, cfg, dcfg, opts...)
	require.NoError(t, err)
	alertWriters.Store(svc, startAlertWriter(t, js, dsn))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("detect Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("detect did not stop within 30 s")
			}
		})
	}
	t.Cleanup(stop)
	poll.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		select {
		case err := <-done:
			return fmt.Errorf("detect stopped: %v", err)
		default:
		}
		for _, u := range svc.units {
			if r, ok := u.state.Reason(); ok {
				return fmt.Errorf("not detecting: %s", r)
			}
		}
		return nil
	})
	return svc, stop
}

// svcEvent returns a valid event of type typ about subject at at.
func svcEvent(id string, typ schemas.Type, subject string, at time.Time) *schemas.Event {
	return &schemas.Event{
		ID: id, SchemaVersion: schemas.SchemaVersion, Type: typ, Time: schemas.At(at.UTC().Truncate(time.Millisecond)),
		App: "shop", Subject: subject,
		Client: &schemas.Client{Device: "k1:dev-Mn8Bv7Cx6Zl5Kj4", IPPrefix: "203.0.113.0/24", ASN: 64500, Country: "DE"},
	}
}

// failedLogins returns n login.failed of subject, one every 2 s from at, with
// ids prefix-01 ...; first numbers the first one.
func failedLogins(prefix, subject string, at time.Time, first, n int) []*schemas.Event {
	var out []*schemas.Event
	for i := range n {
		e := svcEvent(fmt.Sprintf("%s-%02d", prefix, first+i), schemas.LoginFailed, subject, at.Add(time.Duration(i)*2*time.Second))
		e.Reason = "bad_password"
		out = append(out, e)
	}
	return out
}

// fixation returns a session.started that keeps its pre-login session id:
// one event, one session_fixation alert keyed by session.
func fixation(id, session string, at time.Time) *schemas.Event {
	e := svcEvent(id, schemas.SessionStarted, "k1:sentinel-"+session, at)
	e.Session, e.PreviousSession = "k1:ses-"+session, "k1:ses-"+session
	return e
}

func publishEvents(t testing.TB, js jetstream.JetStream, events ...*schemas.Event) {
	t.Helper()
	for _, e := range events {
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		publishRaw(t, js, e.ID, schemas.EventSubject(e.App, e.Subject), b)
	}
}

func publishRaw(t testing.TB, js jetstream.JetStream, id, subject string, data []byte) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = data
	_, err := js.PublishMsg(t.Context(), m)
	require.NoError(t, err)
}

// streamAlerts returns every alert in SESSIONMON_ALERTS, in stream order.
func streamAlerts(t testing.TB, js jetstream.JetStream) []schemas.Alert {
	t.Helper()
	s, err := js.Stream(t.Context(), schemas.AlertStream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	var out []schemas.Alert
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		if strings.HasPrefix(m.Subject, schemas.StatusSubjectPrefix) {
			continue
		}
		var a schemas.Alert
		require.NoError(t, json.Unmarshal(m.Data, &a))
		require.Equal(t, schemas.AlertSubject(&a), m.Subject)
		require.Equal(t, a.ID, m.Header.Get(jetstream.MsgIDHeader))
		out = append(out, a)
	}
	return out
}

// countAlerts counts the alerts of detector about subject.
func countAlerts(alerts []schemas.Alert, detector, subject string) int {
	n := 0
	for _, a := range alerts {
		if a.Detector == detector && a.Subject == subject {
			n++
		}
	}
	return n
}

// waitForSentinel publishes a session_fixation event dated now and waits
// for its alert: the events published before it have then been processed
// and their alerts published (the engine releases in event-time order).
func waitForSentinel(t testing.TB, js jetstream.JetStream, name string) []schemas.Alert {
	t.Helper()
	publishEvents(t, js, fixation("sentinel-"+name, name, time.Now()))
	var alerts []schemas.Alert
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		alerts = streamAlerts(t, js)
		if countAlerts(alerts, "session_fixation", "k1:sentinel-"+name) == 0 {
			return fmt.Errorf("no sentinel alert %s among %d alerts", name, len(alerts))
		}
		return nil
	})
	return alerts
}

// waitAcked waits until the consumer acknowledged every event in the
// stream.
func waitAcked(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		s, err := js.Stream(t.Context(), schemas.EventStream)
		if err != nil {
			return err
		}
		c, err := js.Consumer(t.Context(), schemas.EventStream, durable)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if last := s.CachedInfo().State.LastSeq; info.AckFloor.Stream != last {
			return fmt.Errorf("ack floor %d of %d", info.AckFloor.Stream, last)
		}
		return nil
	})
}

// storedAlerts waits until the alerts table holds want alerts and returns
// them.
func storedAlerts(t testing.TB, store *chstore.Store, want int) []chstore.AlertRow {
	t.Helper()
	var rows []chstore.AlertRow
	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var err error
		rows, err = store.AlertsSince(context.Background(), time.Now().Add(-time.Hour), 1000)
		if err != nil {
			return err
		}
		if len(rows) != want {
			return fmt.Errorf("%d of %d alerts stored", len(rows), want)
		}
		return nil
	})
	return rows
}

func TestServiceAlertsOnceOnStreamAndInClickHouse(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	store := chtest.New(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	svc, _ := startService(t, js, chtest.DSN(t), svcConfig(), WithMetrics(m))
	poll.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return svc.Ready(t.Context()) })

	// Twelve failed logins: the tenth raises brute_force, the rest are
	// the same finding. Published twice: the stream drops the copies.
	const victim = "k1:victim-AbCdEfGhIjKl"
	attack := failedLogins("bf", victim, time.Now().Add(-30*time.Second), 1, 12)
	publishEvents(t, js, attack...)
	publishEvents(t, js, attack...)

	var alerts []schemas.Alert
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		alerts = streamAlerts(t, js)
		if len(alerts) == 0 {
			return fmt.Errorf("no alert yet")
		}
		return nil
	})
	alerts = waitForSentinel(t, js, "once")
	require.Equal(t, 1, countAlerts(alerts, "brute_force", victim), "alerts: %+v", alerts)
	require.Len(t, alerts, 2, "the attack and the sentinel")
	a := alerts[0]
	require.Equal(t, schemas.SeverityMedium, a.Severity)
	require.Equal(t, "bf-10", a.Evidence[len(a.Evidence)-1], "the tenth failure triggers it")
	require.Equal(t, schemas.AlertID("brute_force", victim, "bf-10"), a.ID)

	rows := storedAlerts(t, store, 2)
	byID := map[string]chstore.AlertRow{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	row, ok := byID[a.ID]
	require.True(t, ok, "the alert is in ClickHouse")
	require.Equal(t, "brute_force", row.Detector)
	require.Equal(t, "medium", row.Severity)
	require.Equal(t, uint8(2), row.SeverityRank)
	require.Equal(t, victim, row.Subject)
	require.Equal(t, a.Time.UnixMilli(), row.Time.UnixMilli())
	require.Equal(t, a.Evidence, row.Evidence)
	var details map[string]any
	require.NoError(t, json.Unmarshal([]byte(row.Details), &details))
	require.EqualValues(t, 10, details["failures"])
	ids, err := store.AlertIDsSince(t.Context(), time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, ids, 2)

	require.Equal(t, 1.0, testutil.ToFloat64(m.alerts.WithLabelValues("brute_force", "medium")))
	require.Equal(t, 13.0, testutil.ToFloat64(m.events), "12 events and the sentinel, each once")
	require.Equal(t, uint64(2), histogramCount(t, m.latency), "both alerts' latency is measured")
	require.Zero(t, testutil.ToFloat64(m.publishErrors))
	n, err := testutil.GatherAndCount(reg, "sessionmon_detect_alerts_total", "sessionmon_detect_alert_latency_seconds")
	require.NoError(t, err)
	require.Equal(t, 3, n, "two alert series and the histogram are registered")
}

// histogramCount returns the number of observations of h.
func histogramCount(t testing.TB, h prometheus.Histogram) uint64 {
	t.Helper()
	out := make(chan prometheus.Metric, 1)
	h.Collect(out)
	pb := new(dto.Metric)
	require.NoError(t, (<-out).Write(pb))
	return pb.GetHistogram().GetSampleCount()
}

// restartMode is how a start rebuilds the state: by restoring the
// snapshot the stop wrote, or, with snapshots off, by replay alone.
type restartMode struct {
	name      string
	snapshots bool
}

var restartModes = []restartMode{{name: "restart/snapshot", snapshots: true}, {name: "restart/replay", snapshots: false}}

// config returns cfg with snapshots on or off.
func (m restartMode) config(cfg ServiceConfig) ServiceConfig {
	if !m.snapshots {
		cfg.Snapshots.Interval = 0
	}
	return cfg
}

// replayed is what the restart replays: nothing after a snapshot taken
// at the stop, else the events of the window.
func (m restartMode) replayed(window float64) float64 {
	if m.snapshots {
		return 0
	}
	return window
}

func TestServiceRestartDoesNotReAlertAndKeepsState(t *testing.T) {
	t.Parallel()
	for _, mode := range restartModes {
		for _, pub := range publishModes {
			t.Run(mode.name+"/"+pub.name, func(t *testing.T) {
				t.Parallel()
				testRestartDoesNotReAlertAndKeepsState(t, mode, pub)
			})
		}
	}
}

func testRestartDoesNotReAlertAndKeepsState(t *testing.T, mode restartMode, pub publishMode) {
	js := svcStack(t)
	store := chtest.New(t)
	dsn := chtest.DSN(t)
	cfg := mode.config(svcConfig())
	_, stop1 := startService(t, js, dsn, cfg)

	// Before the restart: a whole attack on a, and the first half of one
	// on b.
	const a, b = "k1:victim-a-AbCdEfGh", "k1:victim-b-AbCdEfGh"
	at := time.Now().Add(-2 * time.Minute)
	pub.publish(t, js, failedLogins("a", a, at, 1, 12)...)
	pub.publish(t, js, failedLogins("b", b, at, 1, 6)...)
	before := waitForSentinel(t, js, "before")
	require.Equal(t, 1, countAlerts(before, "brute_force", a))
	require.Zero(t, countAlerts(before, "brute_force", b))
	waitAcked(t, js, cfg.Durable)
	stop1()

	m := NewMetrics(nil)
	_, _ = startService(t, js, dsn, cfg, WithMetrics(m))
	require.Equal(t, mode.replayed(19), testutil.ToFloat64(m.replayed), "the snapshot holds the state, or the replay rebuilt it from every event")
	// The second half of b's attack.
	pub.publish(t, js, failedLogins("b", b, at.Add(time.Minute), 7, 4)...)
	after := waitForSentinel(t, js, "after")
	require.Equal(t, 1, countAlerts(after, "brute_force", a), "a is not alerted again")
	require.Equal(t, 1, countAlerts(after, "brute_force", b), "b is detected across the restart")
	require.Len(t, after, 4, "a, b and two sentinels: %+v", after)
	require.Equal(t, 1.0, testutil.ToFloat64(m.alerts.WithLabelValues("brute_force", "medium")))
	require.Equal(t, 5.0, testutil.ToFloat64(m.events), "only the new events are processed live")

	rows := storedAlerts(t, store, 4)
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r.ID] = true
	}
	for _, al := range after {
		require.True(t, ids[al.ID], "alert %s %s is stored", al.Detector, al.ID)
	}
}

func TestServiceRestartPublishesAlertsLostInFlight(t *testing.T) {
	t.Parallel()
	for _, mode := range restartModes {
		for _, pub := range publishModes {
			t.Run(mode.name+"/"+pub.name, func(t *testing.T) {
				t.Parallel()
				testRestartPublishesAlertsLostInFlight(t, mode, pub)
			})
		}
	}
}

func testRestartPublishesAlertsLostInFlight(t *testing.T, mode restartMode, pub publishMode) {
	js := svcStack(t)
	// The first service holds events for a minute, and is stopped while
	// the event that completes the attack is still held: processed, never
	// released, never acknowledged, so its alert was never sent. (The
	// snapshot the stop writes holds it in the restored reorder buffer.)
	cfg := mode.config(svcConfig())
	cfg.MaxHold = time.Minute
	cfg.AckWait = 5 * time.Minute
	m1 := NewMetrics(nil)
	_, stop1 := startService(t, js, closedDSN, cfg, WithMetrics(m1))
	const c = "k1:victim-c-AbCdEfGh"
	pub.publish(t, js, failedLogins("c", c, time.Now().Add(-30*time.Second), 1, 10)...)
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(m1.events); n != 10 {
			return fmt.Errorf("%v of 10 events processed", n)
		}
		return nil
	})
	stop1()
	require.Zero(t, countAlerts(streamAlerts(t, js), "brute_force", c))

	m2 := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, mode.config(svcConfig()), WithMetrics(m2))
	alerts := waitForSentinel(t, js, "lost")
	require.Equal(t, 1, countAlerts(alerts, "brute_force", c), "the replay publishes the alert the stop lost")
	require.Len(t, alerts, 2)
	require.Equal(t, mode.replayed(10), testutil.ToFloat64(m2.replayed))
	require.Equal(t, 1.0, testutil.ToFloat64(m2.events), "only the sentinel is processed live, the held events are not processed again")
}

func TestServiceFirstStartBuildsStateWithoutAlertingHistory(t *testing.T) {
	t.Parallel()
	for _, mode := range restartModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testFirstStartBuildsStateWithoutAlertingHistory(t, mode)
		})
	}
}

func testFirstStartBuildsStateWithoutAlertingHistory(t *testing.T, mode restartMode) {
	js := svcStack(t)
	const a, b = "k1:victim-a-AbCdEfGh", "k1:victim-b-AbCdEfGh"
	at := time.Now().Add(-time.Minute)
	publishEvents(t, js, failedLogins("a", a, at, 1, 12)...)
	publishEvents(t, js, failedLogins("b", b, at, 1, 9)...)

	// Without a lookback, the first start creates the consumer after the
	// last event; a restart before anything new arrived must not take the
	// history for unacknowledged events either.
	cfg := mode.config(svcConfig())
	cfg.FirstLookback = 0
	_, stop := startService(t, js, closedDSN, cfg)
	stop()
	m := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m))
	require.Equal(t, mode.replayed(21), testutil.ToFloat64(m.replayed))
	publishEvents(t, js, failedLogins("b", b, at.Add(30*time.Second), 10, 1)...)
	alerts := waitForSentinel(t, js, "first")
	require.Zero(t, countAlerts(alerts, "brute_force", a), "history before the first start is not alerted")
	require.Equal(t, 1, countAlerts(alerts, "brute_force", b), "but it is state: b's tenth failure alerts")
	require.Equal(t, mode.replayed(1), testutil.ToFloat64(m.replaySkipped), "a's alert was found and dropped in the replay (the first start's, with snapshots)")
}

// TestServiceFirstStartAlertsRecentEvents: events stored shortly before
// the very first detect process started (serve's own demo traffic, apps
// publishing while detect waits for its stream) raise their alerts.
func TestServiceFirstStartAlertsRecentEvents(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	const victim = "k1:victim-early-AbCdEfGh"
	publishEvents(t, js, failedLogins("early", victim, time.Now().Add(-time.Minute), 1, 12)...)
	_, _ = startService(t, js, closedDSN, svcConfig())
	alerts := waitForSentinel(t, js, "recent")
	require.Equal(t, 1, countAlerts(alerts, "brute_force", victim), "events of the lookback are alerted once")
}

func TestServiceSkipsInvalidEvents(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	cfg := svcConfig()
	m := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m))
	publishRaw(t, js, "bad-1", schemas.EventSubject("shop", "k1:whoever-AbCdEfGh"), []byte("not json"))
	publishRaw(t, js, "bad-2", schemas.EventSubject("shop", "k1:whoever-AbCdEfGh"), []byte(`{"id":"x","schema_version":1,"type":"login.failed"}`))
	future := svcEvent("bad-3", schemas.LoginFailed, "k1:whoever-AbCdEfGh", time.Now().Add(48*time.Hour))
	publishEvents(t, js, future)
	alerts := waitForSentinel(t, js, "invalid")
	require.Len(t, alerts, 1)
	require.Equal(t, 1.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonInvalidJSON)))
	require.Equal(t, 2.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonSchema)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.events))
	waitAcked(t, js, cfg.Durable)
}

func TestServiceDetectsWithoutClickHouse(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	svc, _ := startService(t, js, closedDSN, svcConfig())
	alerts := waitForSentinel(t, js, "noch")
	require.Len(t, alerts, 1, "alerts reach the stream while ClickHouse is down")
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		err := writerOf(t, svc).Ready(t.Context())
		if err == nil || !strings.Contains(err.Error(), "waiting for clickhouse") {
			return fmt.Errorf("readiness: %v", err)
		}
		return nil
	})
	require.NoError(t, svc.Ready(t.Context()), "detection itself is ready")
}

func TestServiceStoresStatusChanges(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	store := chtest.New(t)
	_, _ = startService(t, js, chtest.DSN(t), svcConfig())
	alerts := waitForSentinel(t, js, "status")
	require.Len(t, alerts, 1)
	id := alerts[0].ID
	storedAlerts(t, store, 1)

	ack, err := alertbus.PublishStatusChange(t.Context(), js, schemas.StatusChange{AlertID: id, Status: schemas.StatusAcknowledged, Actor: "alice", Comment: "looking"})
	require.NoError(t, err)
	require.Len(t, ack.ID, 32)
	fp, err := alertbus.PublishStatusChange(t.Context(), js, schemas.StatusChange{AlertID: id, Status: schemas.StatusFalsePositive, Actor: "bob",
		Comment: "pen test", Time: schemas.At(ack.Time.Add(time.Second))})
	require.NoError(t, err)
	// Published again (a retry): stored once.
	_, err = alertbus.PublishStatusChange(t.Context(), js, fp)
	require.NoError(t, err)

	var hist []chstore.AlertStatusRow
	poll.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		hist, err = store.AlertStatusHistory(t.Context(), id)
		if err != nil {
			return err
		}
		if len(hist) != 2 {
			return fmt.Errorf("%d of 2 changes stored", len(hist))
		}
		return nil
	})
	require.Equal(t, []chstore.AlertStatusRow{
		{ID: ack.ID, AlertID: id, Status: "acknowledged", Actor: "alice", Comment: "looking", Time: ack.Time.UTC()},
		{ID: fp.ID, AlertID: id, Status: "false_positive", Actor: "bob", Comment: "pen test", Time: fp.Time.UTC()},
	}, hist)
	cur, err := store.CurrentAlertStatus(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, "false_positive", cur[id].Status)
	require.Len(t, streamAlerts(t, js), 1, "status changes are not alerts")

	for _, tc := range []struct {
		name string
		c    schemas.StatusChange
	}{
		{name: "status/unknown", c: schemas.StatusChange{AlertID: id, Status: "closed", Actor: "x"}},
		{name: "status/no actor", c: schemas.StatusChange{AlertID: id, Status: schemas.StatusResolved}},
		{name: "status/not an alert id", c: schemas.StatusChange{AlertID: "nope", Status: schemas.StatusResolved, Actor: "x"}},
	} {
		_, err := alertbus.PublishStatusChange(t.Context(), js, tc.c)
		require.ErrorIs(t, err, schemas.ErrInvalidStatusChange, tc.name)
	}
}

func TestServiceForget(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	cfg := svcConfig()
	svc, _ := startService(t, js, closedDSN, cfg)
	const d = "k1:victim-d-AbCdEfGh"
	at := time.Now().Add(-time.Minute)
	publishEvents(t, js, failedLogins("d", d, at, 1, 9)...)
	waitForSentinel(t, js, "forget-before")
	require.NoError(t, svc.Forget(t.Context(), d))
	publishEvents(t, js, failedLogins("d", d, at.Add(30*time.Second), 10, 1)...)
	alerts := waitForSentinel(t, js, "forget-after")
	require.Zero(t, countAlerts(alerts, "brute_force", d), "the nine failures before Forget no longer count")
}

func TestServiceConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultServiceConfig().Validate())
	for _, tc := range []struct {
		name   string
		change func(*ServiceConfig)
		want   string
	}{
		{name: "config/no consumer name", change: func(c *ServiceConfig) { c.Durable = "" }, want: "consumer names"},
		{name: "config/no max hold", change: func(c *ServiceConfig) { c.MaxHold = 0 }, want: "max hold"},
		{name: "config/alerts kept shorter than the replay", change: func(c *ServiceConfig) { c.Alerts.MaxAge = time.Hour }, want: "cover the detect max replay"},
		{name: "config/ack wait below the hold", change: func(c *ServiceConfig) { c.AckWait = 2 * time.Second; c.MaxHold = time.Second }, want: "ack wait"},
	} {
		c := DefaultServiceConfig()
		tc.change(&c)
		err := c.Validate()
		require.ErrorContains(t, err, tc.want, tc.name)
	}
}

func TestEngineAdvanceTo(t *testing.T) {
	t.Parallel()
	f := &fakeDetector{name: "fake", on: schemas.LoginFailed}
	eng, err := NewEngine(DefaultConfig(), []Detector{f}, WithClock(engClock))
	require.NoError(t, err)
	require.Empty(t, eng.AdvanceTo(engNow), "nothing to release before the first event")
	for _, e := range []*schemas.Event{engEv("b", 2*time.Second), engEv("a", time.Second, engType(schemas.LoginFailed)), engEv("c", 3*time.Second)} {
		require.Empty(t, eng.Process(e))
	}
	require.Empty(t, f.seen, "all three wait for the lateness window")
	alerts := eng.AdvanceTo(engEv("", 2*time.Second).Time.Time)
	require.Equal(t, []string{"a", "b"}, f.seen, "released up to the time, in order")
	require.Len(t, alerts, 1)
	require.Equal(t, engEv("", 2*time.Second).Time.Time, eng.Watermark())
	require.Empty(t, eng.AdvanceTo(engEv("", time.Second).Time.Time), "the watermark never moves back")
	require.Equal(t, engEv("", 2*time.Second).Time.Time, eng.Watermark())
	eng.Process(engEv("late", 1500*time.Millisecond))
	require.Equal(t, []string{"a", "b", "late"}, f.seen)
	require.Equal(t, int64(1), eng.Stats().Late)
	require.Equal(t, 1, eng.Stats().Pending)
}

func TestSeqSet(t *testing.T) {
	t.Parallel()
	s := newSeqSet(100)
	require.False(t, s.has(101))
	s.add(101)
	s.add(105)
	require.True(t, s.has(101))
	require.False(t, s.has(103), "skipped over, not seen")
	s.add(103)
	require.True(t, s.has(103))
	require.False(t, s.has(106))
	s.add(105 + seqSetSize - 1)
	require.True(t, s.has(105), "still in the window")
	require.False(t, s.has(106), "skipped over when the window moved")
	require.True(t, s.has(104), "too old to remember: counted as seen")
	s.add(105 + seqSetSize + 10)
	require.False(t, s.has(105+seqSetSize), "skipped over, though 105 used its bit")
	s.add(1 << 40)
	require.False(t, s.has(1<<40-1))
	require.True(t, s.has(1<<40))
}

// histogramQuantile returns the upper bound of the bucket that holds the
// q-quantile of the service's latency histogram.
func histogramQuantile(t testing.TB, m *Metrics, q float64) time.Duration {
	t.Helper()
	out := make(chan prometheus.Metric, 1)
	m.latency.Collect(out)
	pb := new(dto.Metric)
	require.NoError(t, (<-out).Write(pb))
	h := pb.GetHistogram()
	want := q * float64(h.GetSampleCount())
	for _, b := range h.GetBucket() {
		if float64(b.GetCumulativeCount()) >= want {
			return time.Duration(b.GetUpperBound() * float64(time.Second))
		}
	}
	return -1
}

func TestServiceClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts a ClickHouse server: not in -short")
	}
	srv := chtest.StartServer(t)
	dsn := srv.DSN("sessionmon_detect_outage")
	js := svcStack(t)

	// detect starts while ClickHouse is down: it detects, and readiness
	// says what waits.
	srv.Stop()
	svc, _ := startService(t, js, dsn, svcConfig())
	alerts := waitForSentinel(t, js, "down-1")
	require.Len(t, alerts, 1)
	poll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if err := writerOf(t, svc).Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "waiting for clickhouse") {
			return fmt.Errorf("readiness: %v", err)
		}
		return nil
	})
	srv.Start()
	store := chtest.Open(t, dsn)
	storedAlerts(t, store, 1)
	poll.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return writerOf(t, svc).Ready(t.Context()) })

	// ClickHouse goes away while alerts keep coming; they wait in the
	// stream and are stored once it is back, each once.
	srv.Stop()
	for i := range 5 {
		waitForSentinel(t, js, fmt.Sprintf("down-2-%d", i))
	}
	poll.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if err := writerOf(t, svc).Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "clickhouse") {
			return fmt.Errorf("readiness: %v", err)
		}
		return nil
	})
	srv.Start()
	rows := storedAlerts(t, store, 6)
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r.ID] = true
	}
	require.Len(t, ids, 6)
	poll.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return writerOf(t, svc).Ready(t.Context()) })
}
