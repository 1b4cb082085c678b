package scaletest

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// stop ends the process with SIGTERM, as an orchestrator does, and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "%s exit", p.name)
		p.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30 s", p.name)
	}
}

// metric returns the value of the sample of /metrics written exactly as
// series (name and labels).
func (p *proc) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("%s: no metric %s", p.name, series)
	return 0
}

// publishEvent publishes e as an app does.
func publishEvent(t *testing.T, js jetstream.JetStream, e *schemas.Event) {
	t.Helper()
	b, err := schemas.Encode(e)
	require.NoError(t, err)
	m := nats.NewMsg(schemas.EventSubject(e.App, e.Subject))
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Data = b
	_, err = js.PublishMsg(t.Context(), m)
	require.NoError(t, err)
}

// waitAlert waits until SESSIONMON_ALERTS holds an alert of detector
// triggered by event triggerID.
func waitAlert(t *testing.T, js jetstream.JetStream, detector, key, triggerID string) {
	t.Helper()
	id := schemas.AlertID(detector, key, triggerID)
	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, got := range streamAlertIDs(t, js) {
			if got == id {
				return nil
			}
		}
		return fmt.Errorf("no %s alert %s yet", detector, id)
	})
}

// TestDetectRestartKeepsStateOfDaysAgo runs the real `sessionmon detect`:
// a refresh token rotated three days (event time) before a stop is
// presented again after the restart, which restores the snapshot the stop
// wrote instead of replaying history, and token_reuse fires.
func TestDetectRestartKeepsStateOfDaysAgo(t *testing.T) {
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

	const subject, session = "k1:AbCdEfGhIjKlMnOpQrStUv", "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X"
	const family, parent = "k1:fam-Fa1Mi2Ly3To4Ke5N6x", "k1:tok-Rf1Aa2Bb3Cc4Dd5Ee"
	refreshed := func(id, child, device string, at time.Time) *schemas.Event {
		issued := schemas.At(at.UTC().Truncate(time.Millisecond))
		expires := schemas.At(issued.Add(14 * 24 * time.Hour))
		return &schemas.Event{ID: id, SchemaVersion: schemas.SchemaVersion, Type: schemas.TokenRefreshed, Time: issued,
			App: "shop", Subject: subject, Session: session,
			Client: &schemas.Client{Device: device, IPPrefix: "198.18.7.0/24", ASN: 3320, Country: "DE"},
			Token: &schemas.Token{ID: child, Kind: schemas.TokenRefresh, Family: family, Parent: parent,
				IssuedAt: &issued, ExpiresAt: &expires}}
	}
	fixation := func(id string) *schemas.Event {
		return &schemas.Event{ID: id, SchemaVersion: schemas.SchemaVersion, Type: schemas.SessionStarted,
			Time: schemas.At(time.Now().UTC().Truncate(time.Millisecond)), App: "shop", Subject: "k1:sentinel-AbCdEfGh",
			Session: "k1:ses-" + id, PreviousSession: "k1:ses-" + id}
	}

	first := c.start("detect-1", nil, "detect")
	first.waitReady(t)
	publishEvent(t, js, refreshed("rot-1", "k1:tok-Rf2Ff3Gg4Hh5Ii6Jj", "k1:dev-Lp0Ok9Ij8Uh7Yg6Tf5R", time.Now().Add(-72*time.Hour)))
	publishEvent(t, js, fixation("sentinel-1"))
	waitAlert(t, js, "session_fixation", "k1:ses-sentinel-1", "sentinel-1")
	first.stop(t)

	second := c.start("detect-2", nil, "detect")
	second.waitReady(t)
	require.Equal(t, 1.0, second.metric(t, `sessionmon_detect_snapshot_seconds_count{step="restore"}`), "the stop's snapshot is restored")
	require.Zero(t, second.metric(t, "sessionmon_detect_replayed_events_total"), "no history is replayed")
	publishEvent(t, js, refreshed("reuse-1", "k1:tok-Rf3Kk4Ll5Mm6Nn7Oo", "k1:dev-Mn8Bv7Cx6Zl5Kj4Hg3F", time.Now()))
	waitAlert(t, js, "token_reuse", "refresh_reuse:"+family, "reuse-1")
	second.stop(t)
}
