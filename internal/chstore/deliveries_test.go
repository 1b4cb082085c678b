package chstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := baseTime.Add(123 * time.Millisecond)
	rows := []chstore.WebhookDeliveryRow{
		{Webhook: "ops", AlertID: "a1", Attempt: 1, Status: chstore.DeliveryRetry, HTTPStatus: 503, Error: "status 503", Latency: 12 * time.Millisecond, Time: at},
		{Webhook: "ops", AlertID: "a1", Attempt: 2, Status: chstore.DeliveryDelivered, HTTPStatus: 200, Latency: 8 * time.Millisecond, Time: at.Add(time.Second)},
		{Webhook: "slack", AlertID: "a1", Attempt: 1, Status: chstore.DeliveryFailed, HTTPStatus: 410, Error: strings.Repeat("x", 600), Time: at.Add(2 * time.Second)},
		{Webhook: "ops", AlertID: "a2", Attempt: 9, Status: chstore.DeliveryUndeliverable, Error: "connection refused", Latency: time.Millisecond, Time: at.Add(time.Hour)},
	}
	require.NoError(t, s.InsertWebhookDeliveries(ctx, rows))
	require.NoError(t, s.InsertWebhookDeliveries(ctx, rows[:2]), "a retried insert collapses")
	require.NoError(t, s.InsertWebhookDeliveries(ctx, nil))

	got, err := s.WebhookDeliveriesOfAlert(ctx, "a1")
	require.NoError(t, err)
	require.Len(t, got, 3)
	want := rows[:3]
	want[2].Error = strings.Repeat("x", 500)
	require.Equal(t, want, got)

	got, err = s.WebhookDeliveriesSince(ctx, at.Add(time.Second), "", 10)
	require.NoError(t, err)
	require.Len(t, got, 3, "since is inclusive")
	require.Equal(t, "a2", got[0].AlertID, "newest first")

	got, err = s.WebhookDeliveriesSince(ctx, baseTime, chstore.DeliveryUndeliverable, 10)
	require.NoError(t, err)
	require.Equal(t, []chstore.WebhookDeliveryRow{rows[3]}, got)

	got, err = s.WebhookDeliveriesOfAlert(ctx, "nope")
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = s.WebhookDeliveriesSince(ctx, baseTime, "", 0)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
}

func TestInsertWebhookDeliveriesInvalid(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	tests := []struct {
		name string
		row  chstore.WebhookDeliveryRow
	}{
		{name: "no webhook", row: chstore.WebhookDeliveryRow{AlertID: "a", Status: chstore.DeliveryRetry, Time: baseTime}},
		{name: "bad status", row: chstore.WebhookDeliveryRow{Webhook: "w", AlertID: "a", Status: "ok", Time: baseTime}},
		{name: "no time", row: chstore.WebhookDeliveryRow{Webhook: "w", AlertID: "a", Status: chstore.DeliveryRetry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.InsertWebhookDeliveries(t.Context(), []chstore.WebhookDeliveryRow{tt.row})
			require.ErrorIs(t, err, chstore.ErrInvalidArgument)
		})
	}
}
