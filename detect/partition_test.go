package detect

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestDetectorScopes makes the scope of every detector a decision: a new
// detector must be added to one of the two lists.
func TestDetectorScopes(t *testing.T) {
	t.Parallel()
	subjectKeyed := []string{
		"absolute_timeout_exceeded", "brute_force", "idle_timeout_exceeded", "impossible_travel",
		"long_lived_token", "missing_reauth", "session_fixation", "session_hijack", "token_pii_claims", "token_reuse",
	}
	source := []string{"credential_stuffing", "insecure_cookie", "retired_signing_key"}
	for _, name := range subjectKeyed {
		require.False(t, IsSourceDetector(name), name)
	}
	for _, name := range source {
		require.True(t, IsSourceDetector(name), name)
	}
	all := slices.Concat(subjectKeyed, source)
	slices.Sort(all)
	require.Equal(t, DetectorNames(), all, "every detector is classified")
}

func TestPartitionsValidate(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	tests := []struct {
		name string
		p    Partitions
		err  string
	}{
		{name: "default/whole", p: Partitions{}},
		{name: "owned", p: Partitions{Count: 8, Owned: []int{0, 1, 2, 3}, SourceDetectors: &yes}},
		{name: "all partitions without sources", p: Partitions{Count: 8, SourceDetectors: &no}},
		{name: "sources only", p: Partitions{Count: 8, Owned: []int{}, SourceDetectors: &yes}},
		{name: "no count", p: Partitions{Owned: []int{0}}, err: "event-partitions must be between 1"},
		{name: "out of range", p: Partitions{Count: 4, Owned: []int{4}}, err: "detect-partitions: partition 4 is out of range 0-3"},
		{name: "twice", p: Partitions{Count: 4, Owned: []int{1, 1}}, err: "partition 1 is out of range 0-3 or listed twice"},
		{name: "nothing", p: Partitions{Count: 4, Owned: []int{}, SourceDetectors: &no}, err: "at least one partition or the source role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.validate()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestNewUnits(t *testing.T) {
	t.Parallel()
	no := false
	cfg := DefaultServiceConfig()
	units, err := newUnits(cfg, DefaultConfig(), nil)
	require.NoError(t, err)
	require.Len(t, units, 1)
	require.Equal(t, "sessionmon-detect", units[0].durable)
	require.Len(t, units[0].dets, len(DetectorNames()))

	cfg.Partitions = Partitions{Count: 8, Owned: []int{5, 6}}
	units, err = newUnits(cfg, DefaultConfig(), nil)
	require.NoError(t, err)
	var names []string
	for _, u := range units {
		names = append(names, u.durable+" "+u.filter)
		for _, d := range u.dets {
			require.Equal(t, u.name == "sources", IsSourceDetector(d.Name()), "%s runs %s", u.name, d.Name())
		}
	}
	require.Equal(t, []string{"sessionmon-detect-p5 sessionmon.events.5.*.*", "sessionmon-detect-p6 sessionmon.events.6.*.*"}, names,
		"owning some partitions does not give the source role by default")
	require.NotSame(t, units[0].dets[0], units[1].dets[0], "each partition has its own detectors' state")

	cfg.Partitions = Partitions{Count: 3, SourceDetectors: &no}
	units, err = newUnits(cfg, DefaultConfig(), nil)
	require.NoError(t, err)
	require.Len(t, units, 3, "every partition, no sources")
}

// subjectIn returns a subject pseudonym with prefix that the stream puts in
// partition p of n.
func subjectIn(t testing.TB, prefix string, p, n int) string {
	t.Helper()
	for i := range 10000 {
		s := fmt.Sprintf("k1:%s-%d-AbCdEfGh", prefix, i)
		if schemas.EventPartition(s, n) == p {
			return s
		}
	}
	t.Fatalf("no subject in partition %d", p)
	return ""
}

// TestEventPartitionMatchesServer checks that the stream's transform puts
// each event where schemas.EventPartition says, that a stream is
// partitioned by an update, and that events stored before keep their
// subject.
func TestEventPartitionMatchesServer(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cfg := natsconn.DefaultStreamConfig
	cfg.Partitions = 0
	_, err := natsconn.EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)
	publishRaw(t, js, "old", schemas.EventSubject("shop", "k1:old-AbCdEfGh"), []byte("{}"))

	cfg.Partitions = 7
	stream, err := natsconn.EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)
	n, ok := schemas.EventPartitionsOf(stream.CachedInfo().Config.SubjectTransform.Destination)
	require.True(t, ok)
	require.Equal(t, 7, n)
	seen := map[int]bool{}
	for i := range 60 {
		subject := fmt.Sprintf("k1:user-%d-AbCdEfGh", i)
		publishRaw(t, js, fmt.Sprintf("ev-%d", i), schemas.EventSubject("shop", subject), []byte("{}"))
		m, err := stream.GetMsg(t.Context(), uint64(i+2))
		require.NoError(t, err)
		p := schemas.EventPartition(subject, 7)
		seen[p] = true
		require.Equal(t, fmt.Sprintf("sessionmon.events.%d.shop.%s", p, subject), m.Subject)
		require.Equal(t, subject, schemas.EventSubjectToken(m.Subject))
	}
	require.Len(t, seen, 7, "subjects spread over every partition")
	m, err := stream.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, "sessionmon.events.shop.k1:old-AbCdEfGh", m.Subject, "events stored before keep their subject")
	for _, f := range schemas.SubjectEventFilters("k1:old-AbCdEfGh") {
		if strings.Count(f, ".") == 3 {
			last, err := stream.GetLastMsgForSubject(t.Context(), f)
			require.NoError(t, err)
			require.Equal(t, uint64(1), last.Sequence)
		}
	}
}

// TestServicePartitionsShareTheWorkAndMove runs two services that own half
// of the partitions each, one with the source role, then moves the second
// one's partitions to a new service mid-attack: every subject is alerted
// once, the source detectors see failures from every partition, and the
// new owner keeps the state of the partitions it took over.
func TestServicePartitionsShareTheWorkAndMove(t *testing.T) {
	t.Parallel()
	for _, pub := range publishModes {
		t.Run(pub.name, func(t *testing.T) {
			t.Parallel()
			testPartitionsShareTheWorkAndMove(t, pub)
		})
	}
}

func testPartitionsShareTheWorkAndMove(t *testing.T, pub publishMode) {
	const n = 4
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	scfg := natsconn.DefaultStreamConfig
	scfg.Partitions = n
	_, err := natsconn.EnsureEventStream(t.Context(), js, scfg)
	require.NoError(t, err)

	yes, no := true, false
	cfgA, cfgB := svcConfig(), svcConfig()
	cfgA.Partitions = Partitions{Count: n, Owned: []int{0, 1}, SourceDetectors: &yes}
	cfgB.Partitions = Partitions{Count: n, Owned: []int{2, 3}, SourceDetectors: &no}
	_, _ = startService(t, js, closedDSN, cfgA)
	// A created the consumers of every partition: B's wait for it.
	for _, name := range []string{"sessionmon-detect-p2", "sessionmon-detect-p3", "sessionmon-detect-sources"} {
		_, err := js.Consumer(t.Context(), schemas.EventStream, name)
		require.NoError(t, err, name)
	}
	at := time.Now().Add(-3 * time.Minute)
	// Events published before B starts are B's to process.
	victims := make([]string, n)
	for p := range n {
		victims[p] = subjectIn(t, "victim", p, n)
		pub.publish(t, js, failedLogins(fmt.Sprintf("v%d", p), victims[p], at, 1, 12)...)
	}
	_, stopB := startService(t, js, closedDSN, cfgB)
	// Credential stuffing: 20 subjects, spread over every partition,
	// failing from one prefix.
	var stuffed []*schemas.Event
	for i := range 20 {
		e := svcEvent(fmt.Sprintf("cs-%02d", i), schemas.LoginFailed, fmt.Sprintf("k1:stuffed-%d-AbCdEfGh", i), at.Add(time.Duration(i)*time.Second))
		e.Client.IPPrefix = "198.51.100.0/24"
		stuffed = append(stuffed, e)
	}
	// One message each, in time order: these events are late (older than
	// the watermark the victims' events set), so they are judged in
	// arrival order, and credential_stuffing fires on the failure that
	// completes the count in time as well as in arrival.
	for _, e := range stuffed {
		pub.publish(t, js, e)
	}
	// A half attack in partition 3, finished after the move.
	late := subjectIn(t, "late", 3, n)
	pub.publish(t, js, failedLogins("late", late, at.Add(time.Minute), 1, 6)...)
	alerts := waitForSentinels(t, js, "before", n)
	for p, v := range victims {
		require.Equal(t, 1, countAlerts(alerts, "brute_force", v), "partition %d", p)
	}
	require.Zero(t, countAlerts(alerts, "brute_force", late))
	stuffing := 0
	for _, a := range alerts {
		if a.Detector == "credential_stuffing" {
			stuffing++
			require.Len(t, a.Evidence, 20, "the source detector saw the failures of every partition")
		}
	}
	require.Equal(t, 1, stuffing, "alerts: %+v", alerts)
	for _, d := range []string{"sessionmon-detect-p2", "sessionmon-detect-p3"} {
		waitDrained(t, js, d)
	}
	stopB()

	// Move B's partitions: the second half of the attack waits for the
	// new owner, which rebuilds the first half from the stream.
	pub.publish(t, js, failedLogins("late", late, at.Add(2*time.Minute), 7, 4)...)
	m := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfgB, WithMetrics(m))
	after := waitForSentinels(t, js, "after", n)
	require.Equal(t, 1, countAlerts(after, "brute_force", late), "state moved with the partition")
	for _, v := range victims {
		require.Equal(t, 1, countAlerts(after, "brute_force", v), "not alerted again after the move")
	}
	require.Len(t, after, len(victims)+1+1+2*n, "victims, late, stuffing and the sentinels: %+v", after)
}

// waitForSentinels publishes a session_fixation sentinel in each of n
// partitions and waits for their alerts.
func waitForSentinels(t testing.TB, js jetstream.JetStream, name string, n int) []schemas.Alert {
	t.Helper()
	subjects := make([]string, n)
	for p := range n {
		subjects[p] = subjectIn(t, "sentinel-"+name, p, n)
		e := svcEvent(fmt.Sprintf("sentinel-%s-%d", name, p), schemas.SessionStarted, subjects[p], time.Now())
		e.Session = fmt.Sprintf("k1:ses-%s-%d", name, p)
		e.PreviousSession = e.Session
		publishEvents(t, js, e)
	}
	var alerts []schemas.Alert
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		alerts = streamAlerts(t, js)
		for p, s := range subjects {
			if countAlerts(alerts, "session_fixation", s) == 0 {
				return fmt.Errorf("no sentinel alert in partition %d among %d alerts", p, len(alerts))
			}
		}
		return nil
	})
	return alerts
}

// waitDrained waits until a filtered consumer has acknowledged everything
// it was given and has nothing pending.
func waitDrained(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		c, err := js.Consumer(t.Context(), schemas.EventStream, durable)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%s: %d pending, %d unacknowledged", durable, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// TestServicePartitionReplaysEventsStoredBeforePartitioning checks that a
// partition rebuilds its subjects' state from the events stored before the
// stream was partitioned.
func TestServicePartitionReplaysEventsStoredBeforePartitioning(t *testing.T) {
	t.Parallel()
	for _, pub := range publishModes {
		t.Run(pub.name, func(t *testing.T) {
			t.Parallel()
			testPartitionReplaysEventsStoredBeforePartitioning(t, pub)
		})
	}
}

func testPartitionReplaysEventsStoredBeforePartitioning(t *testing.T, pub publishMode) {
	const n = 2
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	scfg := natsconn.DefaultStreamConfig
	scfg.Partitions = 0
	_, err := natsconn.EnsureEventStream(t.Context(), js, scfg)
	require.NoError(t, err)
	victim := subjectIn(t, "legacy", 1, n)
	at := time.Now().Add(-2 * time.Minute)
	pub.publish(t, js, failedLogins("old", victim, at, 1, 6)...)

	scfg.Partitions = n
	_, err = natsconn.EnsureEventStream(t.Context(), js, scfg)
	require.NoError(t, err)
	cfg := svcConfig()
	cfg.Partitions = Partitions{Count: n, Owned: []int{0, 1}}
	cfg.FirstLookback = 0 // the old events are history: state, not alerts
	m := NewMetrics(nil)
	_, _ = startService(t, js, closedDSN, cfg, WithMetrics(m))
	require.Equal(t, 6.0, testutil.ToFloat64(m.replayed), "partition 1 replayed its subject's unpartitioned events, partition 0 none")
	pub.publish(t, js, failedLogins("new", victim, at.Add(time.Minute), 7, 4)...)
	alerts := waitForSentinels(t, js, "legacy", n)
	require.Equal(t, 1, countAlerts(alerts, "brute_force", victim))
}
