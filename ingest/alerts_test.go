package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestAlertsWriter: the writer of the alerts stream stores alerts and
// status changes, with no detect process running (a triage in the
// dashboard is all it takes), each once however often it was published,
// and skips what is neither.
func TestAlertsWriter(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	store := chtest.New(t)
	ctx := t.Context()
	_, err := natsconn.EnsureAlertStream(ctx, st.js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)

	at := time.Now().UTC().Truncate(time.Millisecond)
	a := schemas.Alert{
		ID: schemas.AlertID("retention_failed", "job", "run-1"), Detector: "retention_failed", Severity: schemas.SeverityHigh,
		Time: schemas.At(at), DetectedAt: schemas.At(at), App: "sessionmon", Title: "Retention failed", Summary: "The job failed.",
		Details: map[string]any{"job": "events"},
	}
	for range 2 {
		require.NoError(t, alertbus.PublishAlert(ctx, st.js, a))
	}
	change, err := alertbus.PublishStatusChange(ctx, st.js, schemas.StatusChange{AlertID: a.ID, Status: schemas.StatusResolved, Actor: "anna", Comment: "rerun"})
	require.NoError(t, err)
	_, err = st.js.Publish(ctx, schemas.AlertSubjectPrefix+"high.garbage", []byte("not an alert"))
	require.NoError(t, err)

	m := NewAlertMetrics(nil)
	svc, err := NewAlerts(st.js, chtest.DSN(t), alertTestConfig(), WithMetrics(m))
	require.NoError(t, err)
	runService(t, svc)

	var rows []chstore.AlertRow
	var hist []chstore.AlertStatusRow
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if rows, err = store.AlertsSince(ctx, at.Add(-time.Minute), 10); err != nil {
			return err
		}
		if hist, err = store.AlertStatusHistory(ctx, a.ID); err != nil {
			return err
		}
		if len(rows) != 1 || len(hist) != 1 {
			return fmt.Errorf("%d alerts and %d status changes stored", len(rows), len(hist))
		}
		return svc.Ready(ctx)
	})
	require.Equal(t, a.ID, rows[0].ID)
	require.Equal(t, uint8(schemas.SeverityHigh.Rank()), rows[0].SeverityRank)
	require.JSONEq(t, `{"job":"events"}`, rows[0].Details)
	require.Equal(t, change.ID, hist[0].ID)
	require.Equal(t, string(schemas.StatusResolved), hist[0].Status)
	poll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := testutil.ToFloat64(m.skipped); n != 1 {
			return fmt.Errorf("%v messages skipped", n)
		}
		if n := testutil.ToFloat64(m.ingested); n != 2 {
			return fmt.Errorf("%v alerts and status changes written", n)
		}
		return nil
	})
}
