package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// notClustered is what a single server answers to more than one replica.
const notClustered = "replicas > 1 not supported in non-clustered mode"

// replicatedStreams are the streams and buckets besides the events stream
// that stream-replicas applies to.
var replicatedStreams = []string{schemas.AlertStream, schemas.DLQStream, schemas.RedeliverStream,
	natsconn.BucketStream(schemas.UndeliverableBucket), natsconn.BucketStream(schemas.LockBucket),
	natsconn.BucketStream(schemas.DashboardSessionBucket), natsconn.BucketStream(schemas.DashboardTokenBucket),
	natsconn.BucketStream(schemas.SuppressionBucket), natsconn.BucketStream(schemas.NetworkBucket), "OBJ_" + schemas.StateBucket}

func TestServeDeclaresEveryStreamWithReplicas(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cfg := config.Default()

	cfg.Stream.Replicas = 3
	err := ensureReplicated(t.Context(), &cfg, js)
	require.ErrorContains(t, err, "stream "+schemas.AlertStream)
	require.ErrorContains(t, err, notClustered)

	cfg.Stream.Replicas = 1
	require.NoError(t, ensureReplicated(t.Context(), &cfg, js))
	for _, name := range replicatedStreams {
		st, err := js.Stream(t.Context(), name)
		require.NoError(t, err, name)
		require.Equal(t, 1, st.CachedInfo().Config.Replicas, name)
	}
}

// TestEachDeclarationCarriesReplicas asks each declaration for 3 replicas:
// a single server refuses each, naming the stream or bucket.
func TestEachDeclarationCarriesReplicas(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cfg := config.Default()
	cfg.Stream.Replicas = 3
	for _, tc := range []struct {
		name    string
		declare func(ctx context.Context) error
		want    string
	}{
		{name: "replicas/dead letters", want: schemas.DLQStream, declare: func(ctx context.Context) error {
			_, err := natsconn.EnsureDLQStream(ctx, js, cfg.DLQ.MaxAge, cfg.Stream.Replicas)
			return err
		}},
		{name: "replicas/alerts", want: schemas.AlertStream, declare: func(ctx context.Context) error {
			ac := natsconn.DefaultAlertStreamConfig
			ac.Replicas = cfg.Stream.Replicas
			_, err := natsconn.EnsureAlertStream(ctx, js, ac)
			return err
		}},
		{name: "replicas/notifier state", want: schemas.UndeliverableBucket, declare: func(ctx context.Context) error {
			_, _, err := natsconn.EnsureNotifyState(ctx, js, cfg.Stream.Replicas)
			return err
		}},
		{name: "replicas/locks", want: schemas.LockBucket, declare: func(ctx context.Context) error {
			_, err := natsconn.EnsureLockBucket(ctx, js, retention.LockTTL, cfg.Stream.Replicas)
			return err
		}},
		{name: "replicas/dashboard buckets", want: schemas.DashboardSessionBucket, declare: func(ctx context.Context) error {
			return natsconn.EnsureDashboardBuckets(ctx, js, dashboard.DefaultAbsoluteTimeout, cfg.Stream.Replicas)
		}},
		{name: "replicas/detector state", want: schemas.StateBucket, declare: func(ctx context.Context) error {
			_, err := natsconn.EnsureStateBucket(ctx, js, cfg.Stream.Replicas)
			return err
		}},
		{name: "replicas/suppression rules", want: schemas.SuppressionBucket, declare: func(ctx context.Context) error {
			_, err := natsconn.EnsureSuppressionBucket(ctx, js, cfg.Stream.Replicas)
			return err
		}},
		{name: "replicas/shared egresses", want: schemas.NetworkBucket, declare: func(ctx context.Context) error {
			_, err := natsconn.EnsureNetworkBucket(ctx, js, cfg.Stream.Replicas)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.declare(t.Context())
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, notClustered)
		})
	}
}

// keptReplicas stands for a cluster where every replicated stream exists
// with 3 copies; declarations go to the real (single) server.
type keptReplicas struct{ jetstream.JetStream }

func (k keptReplicas) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	return threeCopies{name: name}, nil
}

type threeCopies struct {
	jetstream.Stream
	name string
}

func (s threeCopies) CachedInfo() *jetstream.StreamInfo {
	return &jetstream.StreamInfo{Config: jetstream.StreamConfig{Name: s.name, Replicas: 3}}
}

// TestWorkersKeepReplicas: what ingest, detect and the notifier declare
// with their default of 1 replica asks for the 3 the streams have, never
// fewer (a single server refuses, which shows what was asked).
func TestWorkersKeepReplicas(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cluster := keptReplicas{js}
	ctx := t.Context()
	_, err := natsconn.EnsureDLQStream(ctx, cluster, 7*24*time.Hour, 1) // as ingest.Service.Run does
	require.ErrorContains(t, err, notClustered)
	_, err = natsconn.EnsureAlertStream(ctx, cluster, natsconn.DefaultAlertStreamConfig)
	require.ErrorContains(t, err, notClustered)
	_, err = natsconn.TryLock(ctx, cluster, retention.ErasureLock, retention.LockTTL)
	require.ErrorContains(t, err, notClustered)
	_, err = natsconn.EnsureStateBucket(ctx, cluster, detect.DefaultSnapshotConfig().Replicas) // as detect.Service.Run does
	require.ErrorContains(t, err, notClustered)
	_, err = natsconn.EnsureSuppressionBucket(ctx, cluster, 1) // as detect.Service.Run does
	require.ErrorContains(t, err, notClustered)
	_, err = natsconn.EnsureNetworkBucket(ctx, cluster, 1) // as detect's shared egress publisher does
	require.ErrorContains(t, err, notClustered)
}
