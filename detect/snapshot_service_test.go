package detect

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// snapStack is a real NATS server with the events stream, and a
// connection to it for the test's own publishing and reading.
func snapStack(t testing.TB) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	return s, js
}

// runningService is a Service on its own NATS connection, as in its own
// process.
type runningService struct {
	*Service
	js      jetstream.JetStream
	metrics *Metrics
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

// runService starts a service on a new connection to srv and waits until
// it detects live (its replay is done; ClickHouse may be down).
func runService(t *testing.T, srv *server.Server, dsn string, cfg ServiceConfig, dcfg Config) *runningService {
	t.Helper()
	js := natstest.ConnectURL(t, srv.ClientURL())
	m := NewMetrics(nil)
	svc, err := NewService(js, cfg, dcfg, WithMetrics(m))
	require.NoError(t, err)
	if dsn != closedDSN {
		// Its own connection: a crash of the service leaves it running.
		startAlertWriter(t, natstest.ConnectURL(t, srv.ClientURL()), dsn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningService{Service: svc, js: js, metrics: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() { r.crash(t) })
	poll.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		select {
		case err := <-r.done:
			r.done <- err
			return fmt.Errorf("detect stopped: %v", err)
		default:
		}
		for _, u := range svc.units {
			if reason, ok := u.state.Reason(); ok {
				return fmt.Errorf("not detecting: %s", reason)
			}
		}
		return nil
	})
	return r
}

// stop shuts the service down gracefully (it writes its last snapshot).
func (r *runningService) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			require.NoError(t, err, "detect Run")
		case <-time.After(30 * time.Second):
			t.Fatal("detect did not stop within 30 s")
		}
	})
}

// crash ends the service as if its process died: its connection closes
// first, so nothing more is acknowledged, published or written.
func (r *runningService) crash(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.js.Conn().Close()
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("detect did not stop within 30 s")
		}
	})
}

// restores counts the snapshots a service restored at start.
func restores(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	return histogramCount(t, m.snapshotSeconds.WithLabelValues("restore").(prometheus.Histogram))
}

// snapshotInfo returns the metadata of the unit's snapshot.
func snapshotInfo(t *testing.T, js jetstream.JetStream, durable string) *jetstream.ObjectInfo {
	t.Helper()
	obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
	require.NoError(t, err)
	info, err := obs.GetInfo(t.Context(), durable)
	require.NoError(t, err)
	return info
}

// waitSnapshotOf waits until the unit's snapshot includes the events
// stream's last event.
func waitSnapshotOf(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()
	poll.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		s, err := js.Stream(t.Context(), schemas.EventStream)
		if err != nil {
			return err
		}
		obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
		if err != nil {
			return err
		}
		info, err := obs.GetInfo(t.Context(), durable)
		if err != nil {
			return err
		}
		seq, _ := strconv.ParseUint(info.Metadata["seq"], 10, 64)
		if last := s.CachedInfo().State.LastSeq; seq < last {
			return fmt.Errorf("snapshot at sequence %d of %d", seq, last)
		}
		return nil
	})
}

// waitStoredBefore waits until the events stream's last event was stored
// longer than d ago: a replay of d no longer reads it.
func waitStoredBefore(t *testing.T, js jetstream.JetStream, d time.Duration) {
	t.Helper()
	poll.CheckFor(t, d+10*time.Second, 50*time.Millisecond, func() error {
		s, err := js.Stream(t.Context(), schemas.EventStream)
		if err != nil {
			return err
		}
		if age := time.Since(s.CachedInfo().State.LastTime); age <= d {
			return fmt.Errorf("last event stored %s ago", age)
		}
		return nil
	})
}

// shortReplay replays one second of history when there is no snapshot,
// so that only a snapshot can carry older state across a restart; off
// turns snapshots off.
func shortReplay(off bool) ServiceConfig {
	cfg := svcConfig()
	cfg.MaxReplay, cfg.FirstLookback = time.Second, 0
	if off {
		cfg.Snapshots.Interval = 0
	}
	return cfg
}

const (
	refreshSubject = "k1:AbCdEfGhIjKlMnOpQrStUv"
	refreshFamily  = "k1:fam-Fa1Mi2Ly3To4Ke5N6x"
	refreshParent  = "k1:tok-Rf1Aa2Bb3Cc4Dd5Ee"
)

// refreshed is a token.refreshed of refreshParent into child on device, as
// in testdata/token_reuse_refresh.
func refreshed(id, child, device string, at time.Time) *schemas.Event {
	e := svcEvent(id, schemas.TokenRefreshed, refreshSubject, at)
	e.Session = "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X"
	e.Client.Device = device
	issued := e.Time
	expires := schemas.At(issued.Add(14 * 24 * time.Hour))
	e.Token = &schemas.Token{ID: child, Kind: schemas.TokenRefresh, Family: refreshFamily, Parent: refreshParent,
		IssuedAt: &issued, ExpiresAt: &expires}
	return e
}

// TestSnapshotRestartKeepsRefreshRotationOfDaysAgo: a refresh token
// rotated three days (event time) before a restart and presented again
// after it raises token_reuse. Without snapshots the restart's replay
// (here one second; 24 h by default) does not reach the rotation and the
// reuse goes unnoticed.
func TestSnapshotRestartKeepsRefreshRotationOfDaysAgo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		snapshots bool
		want      int
	}{
		{name: "restart/snapshot keeps the rotation", snapshots: true, want: 1},
		{name: "restart/replay alone misses it", snapshots: false, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, js := snapStack(t)
			chtest.New(t)
			dsn := chtest.DSN(t)
			cfg := shortReplay(!tc.snapshots)
			first := runService(t, srv, dsn, cfg, DefaultConfig())
			rotated := time.Now().Add(-72 * time.Hour)
			publishEvents(t, js, refreshed("trr-rotate", "k1:tok-Rf2Ff3Gg4Hh5Ii6Jj", "k1:dev-Lp0Ok9Ij8Uh7Yg6Tf5R", rotated))
			waitForSentinel(t, js, "rotated")
			waitAcked(t, js, cfg.Durable)
			first.stop(t)
			waitStoredBefore(t, js, cfg.MaxReplay)

			second := runService(t, srv, dsn, cfg, DefaultConfig())
			require.Zero(t, testutil.ToFloat64(second.metrics.snapshotFailures.WithLabelValues("read")))
			if tc.snapshots {
				require.Equal(t, uint64(1), restores(t, second.metrics))
			}
			require.Zero(t, testutil.ToFloat64(second.metrics.replayed), "nothing within the replay window")
			publishEvents(t, js, refreshed("trr-reuse", "k1:tok-Rf3Kk4Ll5Mm6Nn7Oo", "k1:dev-Mn8Bv7Cx6Zl5Kj4Hg3F", time.Now()))
			alerts := waitForSentinel(t, js, "reused")
			require.Equal(t, tc.want, countAlerts(alerts, tokenReuseName, refreshSubject), "alerts: %+v", alerts)
			if tc.want == 0 {
				return
			}
			var reuse schemas.Alert
			for _, a := range alerts {
				if a.Detector == tokenReuseName {
					reuse = a
				}
			}
			require.Equal(t, variantRefreshReuse, reuse.Details["variant"])
			require.Equal(t, []string{"trr-rotate", "trr-reuse"}, reuse.Evidence)
			require.InDelta(t, float64(72*3600), reuse.Details["elapsed_s"], 60)
			rows := storedAlerts(t, chtest.Open(t, dsn), len(alerts))
			found := false
			for _, r := range rows {
				found = found || r.ID == reuse.ID
			}
			require.True(t, found, "the alert is stored in ClickHouse")
		})
	}
}

// stuffingFailures returns one login.failed from prefix for each of n
// subjects, numbered from first, 3 s apart from at.
func stuffingFailures(prefix string, at time.Time, first, n int) []*schemas.Event {
	var out []*schemas.Event
	for i := range n {
		subject := fmt.Sprintf("k1:stuffed-%04d-AbCdEf", first+i)
		e := svcEvent(fmt.Sprintf("cs-%02d", first+i), schemas.LoginFailed, subject, at.Add(time.Duration(i)*3*time.Second))
		e.Reason, e.Client.IPPrefix, e.Client.ASN = "bad_password", prefix, 64511
		out = append(out, e)
	}
	return out
}

// TestSnapshotRestartKeepsCredentialStuffingWindow: half of the failing
// subjects of a credential-stuffing run before a restart, half after: it
// fires, counting both halves.
func TestSnapshotRestartKeepsCredentialStuffingWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		snapshots bool
		want      int
	}{
		{name: "restart/snapshot keeps the first half", snapshots: true, want: 1},
		{name: "restart/replay alone misses it", snapshots: false, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, js := snapStack(t)
			cfg := shortReplay(!tc.snapshots)
			first := runService(t, srv, closedDSN, cfg, DefaultConfig())
			const prefix = "198.51.100.0/24"
			at := time.Now().Add(-4 * time.Minute)
			publishEvents(t, js, stuffingFailures(prefix, at, 1, 10)...)
			waitForSentinel(t, js, "stuffing-before")
			waitAcked(t, js, cfg.Durable)
			first.stop(t)
			waitStoredBefore(t, js, cfg.MaxReplay)

			runService(t, srv, closedDSN, cfg, DefaultConfig())
			publishEvents(t, js, stuffingFailures(prefix, at.Add(time.Minute), 11, 10)...)
			alerts := waitForSentinel(t, js, "stuffing-after")
			n := 0
			for _, a := range alerts {
				if a.Detector == credentialStuffingName {
					n++
					require.Equal(t, prefix, a.Source.IPPrefix)
					require.EqualValues(t, 20, a.Details["distinct_subjects"])
					require.Len(t, a.Evidence, 20)
					require.Equal(t, "cs-01", a.Evidence[0], "the first half counts")
				}
			}
			require.Equal(t, tc.want, n, "alerts: %+v", alerts)
		})
	}
}

// TestSnapshotErasedSubjectDoesNotComeBack: after an erasure (PrepareForget,
// then Forget) the subject's earlier failures no longer count toward a
// brute_force alert their tenth would complete, after a crash right after
// the erasure and after an erasure made while detect was down. Another
// subject's state survives.
func TestSnapshotErasedSubjectDoesNotComeBack(t *testing.T) {
	t.Parallel()
	const erased, kept = "k1:erased-AbCdEfGhIj", "k1:kept-AbCdEfGhIjKl"
	for _, tc := range []struct {
		name string
		// erase carries out the erasure of a running service r and ends
		// r.
		erase func(t *testing.T, r *runningService, js jetstream.JetStream)
		// restored says whether the restart restores a snapshot (the
		// one written by Forget); refused whether it refuses the one
		// made before the erasure.
		restored, refused bool
	}{
		{name: "erasure/crash right after", erase: func(t *testing.T, r *runningService, js jetstream.JetStream) {
			_, err := PrepareForget(t.Context(), js, erased)
			require.NoError(t, err)
			require.NoError(t, r.Forget(t.Context(), erased))
			require.NoError(t, CompleteForget(t.Context(), js), "keeps the snapshot Forget wrote")
			r.crash(t)
		}, restored: true},
		{name: "erasure/while detect is down", erase: func(t *testing.T, r *runningService, js jetstream.JetStream) {
			r.stop(t)
			_, err := PrepareForget(t.Context(), js, erased)
			require.NoError(t, err)
			// No detect process answers; the snapshot made before the
			// erasure is deleted.
			require.NoError(t, CompleteForget(t.Context(), js))
			obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
			require.NoError(t, err)
			_, err = obs.GetInfo(t.Context(), r.cfg.Durable)
			require.ErrorIs(t, err, jetstream.ErrObjectNotFound)
		}},
		{name: "erasure/while detect is down, stale snapshot left", erase: func(t *testing.T, r *runningService, js jetstream.JetStream) {
			r.stop(t)
			// As if the erasure stopped before CompleteForget: the
			// snapshot is refused at start.
			_, err := PrepareForget(t.Context(), js, erased)
			require.NoError(t, err)
		}, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, js := snapStack(t)
			cfg := svcConfig()
			first := runService(t, srv, closedDSN, cfg, DefaultConfig())
			at := time.Now().Add(-time.Minute)
			publishEvents(t, js, failedLogins("e", erased, at, 1, 9)...)
			publishEvents(t, js, failedLogins("k", kept, at, 1, 9)...)
			waitForSentinel(t, js, "erase-before")
			waitAcked(t, js, cfg.Durable)
			tc.erase(t, first, js)

			s, err := js.Stream(t.Context(), schemas.EventStream)
			require.NoError(t, err)
			for _, f := range schemas.SubjectEventFilters(erased) {
				info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(f))
				require.NoError(t, err)
				require.Zero(t, len(info.State.Subjects), "the subject's events are purged from the stream (%s)", f)
			}

			second := runService(t, srv, closedDSN, cfg, DefaultConfig())
			if tc.restored {
				require.Equal(t, uint64(1), restores(t, second.metrics), "the snapshot Forget wrote is restored")
			} else {
				require.Zero(t, restores(t, second.metrics))
			}
			if tc.refused {
				require.Equal(t, 1.0, testutil.ToFloat64(second.metrics.snapshotFailures.WithLabelValues("read")),
					"the snapshot made before the erasure is refused")
			}
			publishEvents(t, js, failedLogins("e", erased, at.Add(30*time.Second), 10, 1)...)
			publishEvents(t, js, failedLogins("k", kept, at.Add(30*time.Second), 10, 1)...)
			alerts := waitForSentinel(t, js, "erase-after")
			require.Zero(t, countAlerts(alerts, bruteForceName, erased), "the failures before the erasure no longer count")
			require.Equal(t, 1, countAlerts(alerts, bruteForceName, kept), "the other subject's state survived")
			second.stop(t)
		})
	}
}

// TestSnapshotForgetFailsWhenTheSnapshotCannotBeWritten: an erasure is
// reported done only once the snapshot without the subject is written.
func TestSnapshotForgetFailsWhenTheSnapshotCannotBeWritten(t *testing.T) {
	t.Parallel()
	srv, js := snapStack(t)
	r := runService(t, srv, closedDSN, svcConfig(), DefaultConfig())
	require.NoError(t, r.Forget(t.Context(), "k1:whoever-AbCdEfGh"))
	// A full bucket refuses the next snapshot.
	_, err := js.UpdateObjectStore(t.Context(), jetstream.ObjectStoreConfig{Bucket: schemas.StateBucket, MaxBytes: 1})
	require.NoError(t, err)
	err = r.Forget(t.Context(), "k1:whoever-AbCdEfGh")
	require.ErrorContains(t, err, "write snapshot")
	require.Positive(t, testutil.ToFloat64(r.metrics.snapshotFailures.WithLabelValues("write")))
}

// TestSnapshotUnusableFallsBackToReplay: a snapshot that is damaged, of
// another version, not a snapshot at all, or made with another detector
// configuration is refused with a warning, and the start replays the
// recent window as without snapshots: an attack spanning the restart is
// still detected.
func TestSnapshotUnusableFallsBackToReplay(t *testing.T) {
	t.Parallel()
	threshold10 := func(t *testing.T) Config {
		cfg, err := ParseConfig([]byte("detectors: {brute_force: {threshold: 10, severity: low}}"))
		require.NoError(t, err)
		return cfg
	}
	rewrite := func(change func([]byte) []byte) func(*testing.T, jetstream.ObjectStore, string) {
		return func(t *testing.T, obs jetstream.ObjectStore, name string) {
			b, err := obs.GetBytes(t.Context(), name)
			require.NoError(t, err)
			_, err = obs.PutBytes(t.Context(), name, change(b))
			require.NoError(t, err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(*testing.T, jetstream.ObjectStore, string)
		dcfg   func(*testing.T) Config
	}{
		{name: "fallback/one byte flipped", damage: rewrite(func(b []byte) []byte { b[len(b)/2] ^= 1; return b })},
		{name: "fallback/another version", damage: rewrite(func(b []byte) []byte {
			b[len(snapshotMagic)] = snapshotVersion + 1
			return append(b[:len(b)-snapshotSumSize], sumOf(b[:len(b)-snapshotSumSize])...)
		})},
		{name: "fallback/not a snapshot", damage: rewrite(func([]byte) []byte { return []byte(`{"state":"forged"}`) })},
		{name: "fallback/another configuration", dcfg: threshold10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, js := snapStack(t)
			cfg := svcConfig()
			first := runService(t, srv, closedDSN, cfg, DefaultConfig())
			const victim = "k1:victim-f-AbCdEfGh"
			at := time.Now().Add(-2 * time.Minute)
			publishEvents(t, js, failedLogins("f", victim, at, 1, 6)...)
			waitForSentinel(t, js, "fallback-before")
			waitAcked(t, js, cfg.Durable)
			first.stop(t)
			if tc.damage != nil {
				obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
				require.NoError(t, err)
				tc.damage(t, obs, cfg.Durable)
			}
			dcfg := DefaultConfig()
			if tc.dcfg != nil {
				dcfg = tc.dcfg(t)
			}

			second := runService(t, srv, closedDSN, cfg, dcfg)
			require.Equal(t, 1.0, testutil.ToFloat64(second.metrics.snapshotFailures.WithLabelValues("read")), "the snapshot is refused")
			require.Zero(t, restores(t, second.metrics))
			require.Equal(t, 7.0, testutil.ToFloat64(second.metrics.replayed), "the six failures and the sentinel are replayed")
			publishEvents(t, js, failedLogins("f", victim, at.Add(time.Minute), 7, 4)...)
			alerts := waitForSentinel(t, js, "fallback-after")
			require.Equal(t, 1, countAlerts(alerts, bruteForceName, victim), "the attack spanning the restart is detected")
			second.stop(t)
			info := snapshotInfo(t, js, cfg.Durable)
			require.Equal(t, strconv.Itoa(snapshotVersion), info.Metadata["version"], "a good snapshot replaced the bad one")
		})
	}
}

// TestSnapshotCrashReplaysEventsAfterTheSnapshot: after a crash, the start
// restores the last snapshot and replays the events stored after it, and
// only those; with the periodic snapshot written before the crash, there
// is nothing to replay.
func TestSnapshotCrashReplaysEventsAfterTheSnapshot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
		periodic bool
		replayed float64
	}{
		{name: "crash/after the start's snapshot", interval: time.Hour, replayed: 7},
		{name: "crash/after a periodic snapshot", interval: time.Second, periodic: true, replayed: 0},
	} {
		for _, pub := range publishModes {
			t.Run(tc.name+"/"+pub.name, func(t *testing.T) {
				t.Parallel()
				testSnapshotCrashReplays(t, tc.interval, tc.periodic, tc.replayed, pub)
			})
		}
	}
}

// testSnapshotCrashReplays is one case of
// TestSnapshotCrashReplaysEventsAfterTheSnapshot.
func testSnapshotCrashReplays(t *testing.T, interval time.Duration, periodic bool, replayed float64, pub publishMode) {
	srv, js := snapStack(t)
	cfg := svcConfig()
	cfg.Snapshots.Interval = interval
	first := runService(t, srv, closedDSN, cfg, DefaultConfig())
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
		if err == nil {
			_, err = obs.GetInfo(t.Context(), cfg.Durable)
		}
		return err
	})
	const victim = "k1:victim-g-AbCdEfGh"
	at := time.Now().Add(-2 * time.Minute)
	pub.publish(t, js, failedLogins("g", victim, at, 1, 6)...)
	waitForSentinel(t, js, "crash-before")
	waitAcked(t, js, cfg.Durable)
	if periodic {
		waitSnapshotOf(t, js, cfg.Durable)
	}
	first.crash(t)

	second := runService(t, srv, closedDSN, cfg, DefaultConfig())
	require.Zero(t, testutil.ToFloat64(second.metrics.snapshotFailures.WithLabelValues("read")))
	require.Equal(t, uint64(1), restores(t, second.metrics), "the snapshot is restored")
	require.Equal(t, replayed, testutil.ToFloat64(second.metrics.replayed))
	pub.publish(t, js, failedLogins("g", victim, at.Add(time.Minute), 7, 4)...)
	alerts := waitForSentinel(t, js, "crash-after")
	require.Equal(t, 1, countAlerts(alerts, bruteForceName, victim))
	require.Len(t, alerts, 3, "the alert and two sentinels, each once: %+v", alerts)
	second.stop(t)
}

// TestSnapshotPublishesAlertsInFlight: the alerts a snapshot lists as in
// flight (raised, publication not confirmed when it was taken) are
// published at the restart unless the alerts stream has them.
func TestSnapshotPublishesAlertsInFlight(t *testing.T) {
	t.Parallel()
	srv, js := snapStack(t)
	cfg := svcConfig()
	first := runService(t, srv, closedDSN, cfg, DefaultConfig())
	sent := waitForSentinel(t, js, "inflight")
	require.Len(t, sent, 1)
	first.stop(t)

	// Add two alerts in flight to the snapshot: one the stream has, one
	// it lost.
	obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
	require.NoError(t, err)
	b, err := obs.GetBytes(t.Context(), cfg.Durable)
	require.NoError(t, err)
	h, r, err := readSnapshotHeader(b)
	require.NoError(t, err)
	dets, err := NewDetectors(DefaultConfig())
	require.NoError(t, err)
	eng, err := NewEngine(DefaultConfig(), dets)
	require.NoError(t, err)
	require.NoError(t, eng.restoreState(r))
	lost := sent[0]
	lost.ID, lost.Subject, lost.Key = schemas.AlertID(lost.Detector, "lost", "lost"), "k1:lost-AbCdEfGhIjKl", "lost"
	h.inflight = []schemas.Alert{sent[0], lost}
	b, err = encodeSnapshot(&h, eng, 0)
	require.NoError(t, err)
	_, err = obs.PutBytes(t.Context(), cfg.Durable, b)
	require.NoError(t, err)

	runService(t, srv, closedDSN, cfg, DefaultConfig())
	alerts := waitForSentinel(t, js, "inflight-after")
	require.Len(t, alerts, 3, "the first sentinel once, the lost alert, the second sentinel: %+v", alerts)
	require.Equal(t, lost.ID, alerts[1].ID)
}

// TestSnapshotOfDeletedConsumerIsDropped: when a layout is left and its
// consumer deleted, the next start deletes the consumer's snapshot, which
// nothing would restore.
func TestSnapshotOfDeletedConsumerIsDropped(t *testing.T) {
	t.Parallel()
	srv, js := snapStack(t)
	cfg := svcConfig()
	first := runService(t, srv, closedDSN, cfg, DefaultConfig())
	waitForSentinel(t, js, "orphan")
	first.stop(t)
	snapshotInfo(t, js, cfg.Durable)

	require.NoError(t, js.DeleteConsumer(t.Context(), schemas.EventStream, cfg.Durable))
	other := cfg
	other.Durable = "sessionmon-detect-other"
	runService(t, srv, closedDSN, other, DefaultConfig()).stop(t)
	obs, err := js.ObjectStore(t.Context(), schemas.StateBucket)
	require.NoError(t, err)
	_, err = obs.GetInfo(t.Context(), cfg.Durable)
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound, "the deleted consumer's snapshot is dropped")
	snapshotInfo(t, js, other.Durable)
}
