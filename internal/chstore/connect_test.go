package chstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/backoff"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

func TestConnect(t *testing.T) {
	t.Parallel()
	wait := func() *backoff.Backoff { return &backoff.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond} }

	t.Run("connect/invalid dsn fails at once", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := chstore.Connect(ctx, "clickhouse://127.0.0.1:1/not-a-database-name", nil, chstore.ConnectConfig{Wait: wait(),
			Waiting: func(error, time.Duration) { t.Error("an invalid DSN is not retried") }})
		require.ErrorIs(t, err, chstore.ErrInvalidDSN)
	})

	t.Run("connect/waits for the server until ctx ends", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		failures := 0
		_, err := chstore.Connect(ctx, "clickhouse://127.0.0.1:1/x?dial_timeout=100ms", nil, chstore.ConnectConfig{Wait: wait(),
			Waiting: func(err error, _ time.Duration) {
				require.Error(t, err)
				if failures++; failures == 3 {
					cancel()
				}
			}})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 3, failures)
	})

	t.Run("connect/migrates", func(t *testing.T) {
		t.Parallel()
		store, err := chstore.Connect(t.Context(), chtest.DSN(t), nil, chstore.ConnectConfig{Migrate: true})
		require.NoError(t, err)
		t.Cleanup(func() { store.Close() })
		exists, err := store.TableExists(t.Context(), chstore.TableEvents)
		require.NoError(t, err)
		require.True(t, exists)
	})
}
