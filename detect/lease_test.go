package detect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestLeaseHandedOverAtStop runs two services for everything on one
// server: the second waits, says why in its readiness, and starts as soon
// as the first stops (it gives its lease back), long before the TTL.
func TestLeaseHandedOverAtStop(t *testing.T) {
	js := svcStack(t)
	cfg := svcConfig()
	cfg.LeaseTTL = time.Minute
	_, stopFirst := startService(t, js, closedDSN, cfg)

	second, err := NewService(js, cfg, DefaultConfig())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		err := second.Ready(t.Context())
		if err == nil || !strings.Contains(err.Error(), "waiting for the lease "+schemas.DetectDurable+", held by") {
			return fmt.Errorf("second not waiting for the lease: %v", err)
		}
		return nil
	})
	time.Sleep(time.Second)
	require.ErrorContains(t, second.Ready(t.Context()), "waiting for the lease")
	// An erasure does not wait for a process that holds no state.
	fctx, fcancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer fcancel()
	require.NoError(t, second.Forget(fctx, "k1:erased-AbCdEfGhIjKl"))

	stopped := time.Now()
	stopFirst()
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error { return second.Ready(t.Context()) })
	require.Less(t, time.Since(stopped), cfg.LeaseTTL/2, "the stopped service gave its lease back")

	kv, ttl, err := natsconn.EnsureLeaseBucket(t.Context(), js, time.Second, 1)
	require.NoError(t, err)
	require.Equal(t, time.Minute, ttl, "an existing bucket keeps its TTL")
	e, err := kv.Get(t.Context(), schemas.DetectDurable)
	require.NoError(t, err)
	require.Contains(t, string(e.Value()), "pid", "the lease names its holder")
}

// TestLeaseKeysOrder: every process takes its leases in one global order,
// and a process that runs everything holds the partitions' leases too.
func TestLeaseKeysOrder(t *testing.T) {
	units := func(p Partitions) []*unit {
		us, err := newUnits(ServiceConfig{Durable: "d", Partitions: p}, DefaultConfig(), nil)
		require.NoError(t, err)
		return us
	}
	yes, no := true, false
	require.Equal(t, []string{"d", "d.p0", "d.p1", "d.p2", "d.sources"}, leaseKeys("d", 3, units(Partitions{Count: 3})))
	require.Equal(t, []string{"d"}, leaseKeys("d", 0, units(Partitions{})))
	require.Equal(t, []string{"d.p1", "d.p2", "d.sources"}, leaseKeys("d", 3, units(Partitions{Count: 3, Owned: []int{1, 2}, SourceDetectors: &yes})))
	require.Equal(t, []string{"d.p0"}, leaseKeys("d", 3, units(Partitions{Count: 3, Owned: []int{0}, SourceDetectors: &no})))
}

// TestTransientNATS: what a NATS cluster gets over by itself restarts the
// units; anything else still ends the service.
func TestTransientNATS(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("detect: list consumers of %s: %w", schemas.EventStream, context.DeadlineExceeded),
		fmt.Errorf("lease: %w", jetstream.ErrNoStreamResponse),
		fmt.Errorf("pull: %w", nats.ErrNoResponders),
		&jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"},
	} {
		require.True(t, transientNATS(err), "%v", err)
	}
	for _, err := range []error{
		errors.New("detect: event-partitions is 8 but stream SESSIONMON_EVENTS has 16 partitions"),
		fmt.Errorf("detect consumer: %w", jetstream.ErrConsumerNotFound),
		&jetstream.APIError{Code: 400, ErrorCode: 10071, Description: "wrong last sequence"},
	} {
		require.False(t, transientNATS(err), "%v", err)
	}
}
