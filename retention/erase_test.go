package retention_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// seedSubjects stores, for sub_0001 and sub_0002, two events, an alert
// with a status change and a webhook delivery.
func seedSubjects(t *testing.T, s *chstore.Store) {
	t.Helper()
	ctx := t.Context()
	at := now.Add(-day)
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{
		event(1, schemas.LoginFailed, at), event(1, schemas.LoginSucceeded, at.Add(time.Minute)),
		event(2, schemas.LoginFailed, at), event(2, schemas.LoginSucceeded, at.Add(time.Minute)),
	}))
	for _, sub := range []string{"sub_0001", "sub_0002"} {
		id := "alert-" + sub
		require.NoError(t, s.InsertAlerts(ctx, []chstore.AlertRow{{ID: id, Detector: "brute_force", Severity: "medium",
			SeverityRank: 2, Time: at, DetectedAt: at, App: "shop", Subject: sub, Title: "t", Summary: "s"}}))
		require.NoError(t, s.AppendAlertStatus(ctx, chstore.AlertStatusRow{ID: "st-" + sub, AlertID: id,
			Status: string(schemas.StatusAcknowledged), Actor: "soc", Time: at.Add(time.Hour)}))
		require.NoError(t, s.InsertWebhookDeliveries(ctx, []chstore.WebhookDeliveryRow{{Webhook: "chat", AlertID: id,
			Attempt: 1, Status: chstore.DeliveryDelivered, HTTPStatus: 200, Time: at.Add(time.Second)}}))
	}
}

func TestEraseSubject(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	seedSubjects(t, s)
	all := chstore.SubjectRows{chstore.TableEvents: 2, chstore.TableAlerts: 1, chstore.TableAlertStatus: 1, chstore.TableWebhookDeliveries: 1}

	before, err := retention.Erase(ctx, s, "sub_0001")
	require.NoError(t, err)
	require.Equal(t, all, before)
	left, err := s.CountSubjectRows(ctx, "sub_0001")
	require.NoError(t, err)
	require.Zero(t, left.Total())
	other, err := s.CountSubjectRows(ctx, "sub_0002")
	require.NoError(t, err)
	require.Equal(t, all, other, "other subjects are untouched")

	log, err := s.DeletionLog(ctx, 100)
	require.NoError(t, err)
	require.Len(t, log, 4)
	sum := sha256.Sum256([]byte("sub_0001"))
	for _, r := range log {
		require.Equal(t, retention.ActionEraseSubject, r.Action)
		require.Equal(t, "subject sha256:"+hex.EncodeToString(sum[:]), r.Target)
		require.Equal(t, all[r.DataSet], r.RowsBefore, r.DataSet)
		require.Zero(t, r.RowsAfter)
		require.Equal(t, chstore.OutcomeOK, r.Outcome)
	}

	// Idempotent: nothing left to erase.
	before, err = retention.Erase(ctx, s, "sub_0001")
	require.NoError(t, err)
	require.Zero(t, before.Total())

	_, err = retention.Erase(ctx, s, "x' OR 1")
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

func TestSubjectData(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	seedSubjects(t, s)
	d, err := s.SubjectData(t.Context(), "sub_0002")
	require.NoError(t, err)
	require.Len(t, d.Events, 2)
	require.Equal(t, string(schemas.LoginFailed), d.Events[0].Type, "oldest first")
	require.Len(t, d.Alerts, 1)
	require.Equal(t, "alert-sub_0002", d.Alerts[0].ID)
	require.Len(t, d.AlertStatus, 1)
	require.Len(t, d.WebhookDeliveries, 1)

	empty, err := s.SubjectData(t.Context(), "sub_9999")
	require.NoError(t, err)
	require.Empty(t, empty.Events)
	require.Empty(t, empty.Alerts)
}
