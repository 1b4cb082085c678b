package natsconn

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// clusterJS stands for a JetStream cluster in which the named streams
// exist with replicas copies; everything else goes to the real server.
type clusterJS struct {
	jetstream.JetStream
	replicas map[string]int
}

func (c clusterJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if n, ok := c.replicas[name]; ok {
		return replicatedStream{info: &jetstream.StreamInfo{Config: jetstream.StreamConfig{Name: name, Replicas: n}}}, nil
	}
	return c.JetStream.Stream(ctx, name)
}

type replicatedStream struct {
	jetstream.Stream
	info *jetstream.StreamInfo
}

func (s replicatedStream) CachedInfo() *jetstream.StreamInfo { return s.info }

func TestReplicasFor(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	_, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}})
	require.NoError(t, err)
	cluster := clusterJS{JetStream: js, replicas: map[string]int{"THREE": 3}}
	for _, tc := range []struct {
		name   string
		stream string
		want   int
		got    int
	}{
		{name: "replicas/missing stream gets what is asked", stream: "MISSING", want: 3, got: 3},
		{name: "replicas/at least one", stream: "MISSING", want: 0, got: 1},
		{name: "replicas/raised", stream: "ONE", want: 3, got: 3},
		{name: "replicas/kept when asked for fewer", stream: "THREE", want: 1, got: 3},
		{name: "replicas/kept when asked for none", stream: "THREE", want: 0, got: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReplicasFor(t.Context(), cluster, tc.stream, tc.want)
			require.NoError(t, err)
			require.Equal(t, tc.got, got)
		})
	}
}

// TestDeclarationsKeepReplicas: a process that declares the lock bucket or
// the events stream with 1 replica asks a cluster for the 3 they have (a
// single server refuses, which shows what was asked).
func TestDeclarationsKeepReplicas(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cluster := clusterJS{JetStream: js, replicas: map[string]int{BucketStream(schemas.LockBucket): 3, "SESSIONMON_EVENTS": 3}}
	_, err := TryLock(t.Context(), cluster, "job", time.Hour)
	require.ErrorContains(t, err, "replicas > 1 not supported in non-clustered mode")
	cfg := DefaultStreamConfig
	_, err = EnsureEventStream(t.Context(), cluster, cfg)
	require.ErrorContains(t, err, "replicas > 1 not supported in non-clustered mode")

	_, err = TryLock(t.Context(), js, "job", time.Hour)
	require.NoError(t, err, "without the cluster stand-in the bucket is created with 1 replica")
	_, err = EnsureLockBucket(t.Context(), js, time.Hour, 3)
	require.ErrorContains(t, err, "lock bucket SESSIONMON_LOCKS")
	require.ErrorContains(t, err, "replicas > 1 not supported in non-clustered mode")
}
