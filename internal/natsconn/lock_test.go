package natsconn

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
)

func TestTryLockIsExclusiveUntilReleased(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.RunServer(t))

	release, err := TryLock(t.Context(), js, "retention", time.Hour)
	require.NoError(t, err)
	_, err = TryLock(t.Context(), js, "retention", time.Hour)
	require.ErrorIs(t, err, ErrLocked, "a second process must not run the job at the same time")
	_, err = TryLock(t.Context(), js, "other-job", time.Hour)
	require.NoError(t, err, "locks are per name")

	release()
	again, err := TryLock(t.Context(), js, "retention", time.Hour)
	require.NoError(t, err, "a released lock can be taken again")
	again()
}
