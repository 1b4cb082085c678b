// Package scaletest runs real sessionmon processes side by side against one
// NATS server and one ClickHouse: the acceptance test of horizontal scale.
// It is long, so it is skipped by go test -short.
package scaletest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/internal/testutil/repo"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// partitions is the events stream's partition count in the test.
const partitions = 8

// binary is the sessionmon binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "sessionmon-scaletest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaletest: temp dir:", err)
		os.Exit(1)
	}
	root, err := repo.Root()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaletest: repository root:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sessionmon")
	build := exec.Command("go", "build", "-o", binary, "./cmd/sessionmon")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "scaletest: go build ./cmd/sessionmon: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running sessionmon process.
type proc struct {
	name string
	cmd  *exec.Cmd
	http string
	log  string
	done chan error
}

// cluster is what the processes share.
type cluster struct {
	t       *testing.T
	dir     string
	natsURL string
	dsn     string
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// start runs `sessionmon <args>` with env added to the cluster's settings.
// The process is killed when the test ends; its log is printed when the
// test fails.
func (c *cluster) start(name string, env map[string]string, args ...string) *proc {
	t := c.t
	t.Helper()
	p := &proc{name: name, http: freeAddr(t), log: filepath.Join(c.dir, name+".log"), done: make(chan error, 1)}
	logFile, err := os.Create(p.log)
	require.NoError(t, err)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = append(os.Environ(),
		"SESSIONMON_NATS_URL="+c.natsURL,
		"SESSIONMON_CLICKHOUSE_DSN="+c.dsn,
		"SESSIONMON_METRICS_ADDR="+p.http,
		"SESSIONMON_DATA_DIR="+filepath.Join(c.dir, name),
		"SESSIONMON_LOG_FORMAT=json",
		fmt.Sprintf("SESSIONMON_EVENT_PARTITIONS=%d", partitions),
	)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	require.NoError(t, p.cmd.Start(), name)
	go func() {
		p.done <- p.cmd.Wait()
		_ = logFile.Close()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("--- log of %s ---\n%s", name, tail(b, 4000))
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitReady waits until the process answers /readyz with 200.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited: %v", p.name, err)
		default:
		}
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			return fmt.Errorf("%s not ready: %s", p.name, b.String())
		}
		return nil
	})
}

// kill stops the process at once (SIGKILL): nothing is flushed.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
	p.done <- nil
}

// TestScaleOut runs two ingest and two detect processes, each detect owning
// half of the partitions and one of them the source detectors, publishes
// the demo traffic (every attack and policy violation the detectors look
// for) through the SDK, kills one detect process mid-traffic and starts a
// replacement for its partitions. Every event is stored once, and the
// alerts are exactly those one process finds offline reading the stream in
// its order.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	t.Run("single", func(t *testing.T) { testScaleOut(t, false) })
	t.Run("batched", func(t *testing.T) { testScaleOut(t, true) })
}

// testScaleOut is TestScaleOut with the SDK sending one event per message,
// or batched messages (its default).
func testScaleOut(t *testing.T, batched bool) {
	store := chtest.New(t)
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	c := &cluster{t: t, dir: t.TempDir(), natsURL: srv.ClientURL(), dsn: chtest.DSN(t)}

	half := func(owned string, sources bool) map[string]string {
		return map[string]string{
			"SESSIONMON_DETECT_PARTITIONS":       owned,
			"SESSIONMON_DETECT_SOURCE_DETECTORS": fmt.Sprint(sources),
			// The replacement of the killed process waits for its
			// leases to expire.
			"SESSIONMON_DETECT_LEASE_TTL": "3s",
		}
	}
	ingest1 := c.start("ingest-1", nil, "ingest")
	ingest1.waitReady(t)
	ingest2 := c.start("ingest-2", nil, "ingest")
	detectA := c.start("detect-a", half("0-3", true), "detect")
	detectB := c.start("detect-b", half("4-7", false), "detect")
	for _, p := range []*proc{ingest2, detectA, detectB} {
		p.waitReady(t)
	}
	stream, err := js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	n, ok := schemas.EventPartitionsOf(stream.CachedInfo().Config.SubjectTransform.Destination)
	require.True(t, ok, "the stream is partitioned")
	require.Equal(t, partitions, n)

	pz, err := sdk.NewPseudonymizer(demo.KeyID, demo.Key)
	require.NoError(t, err)
	events := demo.Generate(pz, demo.Options{Users: 150, Seed: 8, End: time.Now(), Span: 6 * time.Hour})
	opts := []sdk.Option{sdk.WithApp(demo.App)}
	if !batched {
		opts = append(opts, sdk.WithoutBatching())
	}
	client, err := sdk.NewClient(nc, opts...)
	require.NoError(t, err)
	if batched {
		// The ingest processes tell the SDK the partition count.
		poll.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !client.Batching() {
				return fmt.Errorf("the SDK does not batch yet")
			}
			return nil
		})
	}
	publish := func(evs []sdk.Event) {
		for i := range evs {
			require.NoError(t, client.PublishAsync(t.Context(), &evs[i]))
		}
		require.NoError(t, client.Flush(t.Context()))
	}
	// The first half, then detect-b dies while the second half is
	// published; a replacement takes over its partitions.
	mid := len(events) / 2
	publish(events[:mid])
	detectB.kill(t)
	publish(events[mid : mid+mid/2])
	detectB2 := c.start("detect-b2", half("4-7", false), "detect")
	publish(events[mid+mid/2:])
	detectB2.waitReady(t)
	require.Equal(t, 4.0, detectB2.metric(t, `sessionmon_detect_snapshot_seconds_count{step="restore"}`),
		"the replacement restores the snapshots detect-b wrote for its partitions")
	require.NoError(t, client.Close(t.Context()))

	// Every consumer has processed everything.
	consumers := []string{"sessionmon-ingest", "sessionmon-detect-sources"}
	for p := range partitions {
		consumers = append(consumers, fmt.Sprintf("sessionmon-detect-p%d", p))
	}
	for _, name := range consumers {
		waitDrained(t, js, name)
	}
	_, err = js.Consumer(t.Context(), schemas.EventStream, "sessionmon-detect")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "no single-process consumer in a partitioned deployment")

	// Every event stored exactly once.
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	if batched {
		require.Less(t, info.State.Msgs, uint64(len(events)/2), "events went in batched messages")
	} else {
		require.Equal(t, uint64(len(events)), info.State.Msgs)
	}
	poll.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		total, distinct, err := store.CountEventsByID(t.Context())
		if err != nil {
			return err
		}
		if total != uint64(len(events)) || distinct != total {
			return fmt.Errorf("%d rows, %d distinct ids, %d events published", total, distinct, len(events))
		}
		return nil
	})

	// What one process finds offline on the same events.
	// The traffic holds every attack: one process finds alerts of every
	// detector reading it in event time order. (Read in stream order,
	// batches of six hours published in a second put some events of one
	// partition minutes of event time ahead of another's, and detectors
	// that join partitions, such as a key retired by one subject and used
	// by another, may see them the other way round.)
	detectors := map[string]bool{}
	for _, a := range offlineAlerts(t, c.dir, stream, info.State.LastSeq, true) {
		detectors[a.Detector] = true
	}
	require.Len(t, detectors, len(detect.DetectorNames()), "the traffic raises alerts of every detector: %v", detectors)
	want := offlineAlerts(t, c.dir, stream, info.State.LastSeq, false)
	require.NotEmpty(t, want)

	got := streamAlertIDs(t, js)
	require.Equal(t, sortedIDs(want), got, "the union of the processes' alerts equals what one process finds, with none lost to the kill")

	// And ClickHouse holds each of them once.
	poll.CheckFor(t, 40*time.Second, 200*time.Millisecond, func() error {
		rows, err := store.AlertsSince(t.Context(), time.Now().Add(-7*time.Hour), 100000)
		if err != nil {
			return err
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, got) {
			return fmt.Errorf("%d alerts in clickhouse, %d in the stream", len(ids), len(got))
		}
		return nil
	})
}

// waitDrained waits until a consumer has nothing pending or unacknowledged.
func waitDrained(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()
	poll.CheckFor(t, 40*time.Second, 100*time.Millisecond, func() error {
		cons, err := js.Consumer(t.Context(), schemas.EventStream, durable)
		if err != nil {
			return fmt.Errorf("%s: %w", durable, err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%s: %d pending, %d unacknowledged", durable, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// offlineAlerts writes the stream's events to a file and returns the alerts
// of `sessionmon detect --input` over it. In stream order (a batch's events
// in their order in it) that is what one process finds reading the stream
// as the live processes do; timeOrder sorts the events by their time.
func offlineAlerts(t *testing.T, dir string, stream jetstream.Stream, last uint64, timeOrder bool) []schemas.Alert {
	t.Helper()
	type line struct {
		at   time.Time
		data []byte
	}
	var all []line
	for seq := uint64(1); seq <= last; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		lines, _, err := schemas.SplitBatch(m.Header, m.Data)
		require.NoError(t, err)
		for _, l := range lines {
			var e struct{ Time time.Time }
			require.NoError(t, json.Unmarshal(l, &e))
			all = append(all, line{at: e.Time, data: l})
		}
	}
	if timeOrder {
		slices.SortStableFunc(all, func(a, b line) int { return a.at.Compare(b.at) })
	}
	in := filepath.Join(dir, "events.ndjson")
	f, err := os.Create(in)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	for _, l := range all {
		_, _ = w.Write(l.data)
		_ = w.WriteByte('\n')
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	out := filepath.Join(dir, "alerts.ndjson")
	cmd := exec.CommandContext(t.Context(), binary, "detect", "--input", in, "--output", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var alerts []schemas.Alert
	for line := range strings.Lines(string(data)) {
		var a schemas.Alert
		require.NoError(t, json.Unmarshal([]byte(line), &a))
		alerts = append(alerts, a)
	}
	return alerts
}

// streamAlertIDs returns the sorted ids of the alerts in SESSIONMON_ALERTS,
// failing on a duplicate.
func streamAlertIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, schemas.AlertStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	seen := map[string]bool{}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		if strings.HasPrefix(m.Subject, schemas.StatusSubjectPrefix) {
			continue
		}
		id := m.Header.Get(nats.MsgIdHdr)
		require.False(t, seen[id], "alert %s stored twice in the stream", id)
		seen[id] = true
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(alerts []schemas.Alert) []string {
	ids := make([]string, len(alerts))
	for i, a := range alerts {
		ids[i] = a.ID
	}
	slices.Sort(ids)
	return ids
}
