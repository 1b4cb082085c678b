package retention_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

func TestRetentionFailureRaisesAnAlert(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	_, err := natsconn.EnsureAlertStream(t.Context(), js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)
	a := retention.FailedAlert("", time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC), errors.New("mutation failed"))
	require.Equal(t, "retention-20261125T033000", a.Evidence[0])
	for range 2 { // a retry of the same failure is stored once
		require.NoError(t, alertbus.PublishAlert(t.Context(), js, a))
	}
	st, err := js.Stream(t.Context(), schemas.AlertStream)
	require.NoError(t, err)
	msg, err := st.GetLastMsgForSubject(t.Context(), "sessionmon.alerts.high.retention_failed")
	require.NoError(t, err)
	require.Equal(t, uint64(1), msg.Sequence)
	require.Contains(t, string(msg.Data), "mutation failed")
	require.Error(t, alertbus.PublishAlert(t.Context(), js, schemas.Alert{Detector: "x"}), "an alert needs an id and a severity")
}

func TestServeResumesErasureRequests(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var rows []chstore.EventRow
	for _, sub := range []string{"sub_0001", "sub_0002"} {
		rows = append(rows, chstore.NewEventRow(&schemas.Event{ID: "ev-" + sub, SchemaVersion: schemas.SchemaVersion,
			Type: schemas.LoginFailed, Time: schemas.At(at), App: "shop", Subject: sub}, at))
	}
	require.NoError(t, store.InsertEvents(ctx, rows))
	// Left running by a process that died.
	for seq, status := range []string{chstore.ErasurePending, chstore.ErasureRunning} {
		require.NoError(t, store.AppendErasureStatus(ctx, chstore.ErasureRequest{ID: "erasure-1", Seq: uint32(seq + 1),
			Subject: "sub_0001", RequestedBy: "alice", Status: status, Requested: at, Updated: at.Add(time.Duration(seq) * time.Second)}))
	}

	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	svc, err := retention.NewService(retention.DefaultConfig(), retention.ServiceDeps{
		DSN: chtest.DSN(t), JS: js, Forget: detect.ForgetVia(nc), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	poll.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		r, _, err := store.ErasureRequest(ctx, "erasure-1")
		if err != nil {
			return err
		}
		if r.Status != chstore.ErasureDone {
			return errors.New("request is " + r.Status)
		}
		return nil
	})
	left, err := store.CountSubjectRows(ctx, "sub_0001")
	require.NoError(t, err)
	require.Zero(t, left.Total())
	other, err := store.CountSubjectRows(ctx, "sub_0002")
	require.NoError(t, err)
	require.Equal(t, uint64(1), other.Total())
}

func TestTTLOnlyServiceAppliesTheBackstopAndReturns(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	svc, err := retention.NewService(retention.DefaultConfig(), retention.ServiceDeps{DSN: chtest.DSN(t)}, retention.WithTTLOnly())
	require.NoError(t, err)
	require.NoError(t, svc.Run(t.Context()))
	exists, err := store.TableExists(t.Context(), chstore.TableEvents)
	require.NoError(t, err)
	require.True(t, exists, "the migrations ran")
}
