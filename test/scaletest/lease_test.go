package scaletest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestLeasesKeepOnePartitionInOneProcess starts two real detect processes
// for overlapping partitions: the second waits while the first holds the
// leases and processes nothing; when the first is paused (SIGSTOP) past the
// lease TTL, the second takes over; and when the first resumes, it
// processes nothing more and hands back what it had been given.
func TestLeasesKeepOnePartitionInOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	chtest.New(t)
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	sc := natsconn.DefaultStreamConfig
	sc.Partitions = partitions
	_, err := natsconn.EnsureEventStream(t.Context(), js, sc)
	require.NoError(t, err)
	c := &cluster{t: t, dir: t.TempDir(), natsURL: srv.ClientURL(), dsn: chtest.DSN(t)}

	const ttl = 2 * time.Second
	owns := func(p string) map[string]string {
		return map[string]string{
			"SESSIONMON_DETECT_PARTITIONS":       p,
			"SESSIONMON_DETECT_SOURCE_DETECTORS": "false",
			"SESSIONMON_DETECT_LEASE_TTL":        ttl.String(),
		}
	}
	// Events of partition 2, which both processes are started for.
	n := 0
	publish := func(count int) {
		for published := 0; published < count; n++ {
			subject := fmt.Sprintf("k1:lease-%06d-AbCdEfGh", n)
			if schemas.EventPartition(subject, partitions) != 2 {
				continue
			}
			publishEvent(t, js, &schemas.Event{ID: fmt.Sprintf("lease-%d", n), SchemaVersion: schemas.SchemaVersion,
				Type: schemas.SessionStarted, Time: schemas.At(time.Now().UTC().Truncate(time.Millisecond)),
				App: "shop", Subject: subject, Session: fmt.Sprintf("k1:ses-lease-%06d-Xy", n)})
			published++
		}
	}
	events := func(p *proc) float64 { return p.metric(t, "sessionmon_detect_events_total") }
	eventsReach := func(p *proc, want float64) {
		t.Helper()
		// Deliveries a process buffered when it lost its lease come
		// back after the ack wait (30s); the others at once.
		poll.CheckFor(t, 45*time.Second, 50*time.Millisecond, func() error {
			if got := events(p); got != want {
				return fmt.Errorf("%s processed %v events, want %v", p.name, got, want)
			}
			return nil
		})
	}

	first := c.start("detect-first", owns("0-3"), "detect")
	first.waitReady(t)
	second := c.start("detect-second", owns("2-5"), "detect")
	// The second waits for the first's lease on partition 2, holding none.
	poll.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		reason := second.readyz(t)
		if !strings.Contains(reason, "waiting for the lease "+schemas.DetectDurable+".p2, held by") {
			return fmt.Errorf("second not waiting for partition 2: %q", reason)
		}
		return nil
	})
	publish(20)
	eventsReach(first, 20)
	// Several TTLs later it still waits and has processed nothing.
	time.Sleep(3 * ttl)
	require.Contains(t, second.readyz(t), "waiting for the lease "+schemas.DetectDurable+".p2")
	require.Zero(t, second.metric(t, "sessionmon_detect_leases_held"))
	require.Zero(t, events(second), "a waiting process processes nothing")
	require.Equal(t, 20.0, events(first))

	// The first stops renewing; once its lease has expired the second
	// holds every lease it asked for and processes partition 2.
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGSTOP))
	paused := time.Now()
	second.waitReady(t)
	// The first renewed at most a quarter of the TTL before the pause.
	require.GreaterOrEqual(t, time.Since(paused), ttl*3/4, "the lease was taken over only after it expired")
	require.Equal(t, 4.0, second.metric(t, "sessionmon_detect_leases_held"))
	publish(20)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGCONT))
	// Whatever the first had been handed before or after its pause, it
	// processes nothing more: the second processes all 20 new events.
	eventsReach(second, 20)
	poll.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if got := first.metric(t, "sessionmon_detect_lease_losses_total"); got != 1 {
			return fmt.Errorf("first lost its leases %v times", got)
		}
		return nil
	})
	require.Equal(t, 20.0, events(first), "the first processed nothing after losing its lease")
	require.Contains(t, first.readyz(t), "held by", "the first waits for the leases the second holds")
	b, err := os.ReadFile(first.log)
	require.NoError(t, err)
	require.Contains(t, string(b), "detect lease lost")
	waitDrained(t, js, schemas.DetectDurable+"-p2")
}

// readyz returns the body of the process's /readyz ("" when ready), or
// why it could not be read.
func (p *proc) readyz(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/readyz")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	return string(b)
}
