package natsconn

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// setMaxMsgSize changes the events stream's message size limit.
func setMaxMsgSize(t *testing.T, js jetstream.JetStream, size int32) {
	t.Helper()
	s, err := js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = size
	_, err = js.UpdateStream(t.Context(), cfg)
	require.NoError(t, err)
}

func askLayout(t *testing.T, nc *nats.Conn) schemas.Layout {
	t.Helper()
	m, err := nc.Request(schemas.LayoutSubject, nil, 5*time.Second)
	require.NoError(t, err)
	var l schemas.Layout
	require.NoError(t, json.Unmarshal(m.Data, &l))
	return l
}

func TestServeLayout(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	ctx := t.Context()

	// No stream yet: no answer, so publishers send one event per message.
	stop, err := ServeLayout(ctx, nc, js, nil)
	require.NoError(t, err)
	_, err = nc.Request(schemas.LayoutSubject, nil, 500*time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout)
	stop()
	stop()
	_, err = nc.Request(schemas.LayoutSubject, nil, time.Second)
	require.ErrorIs(t, err, nats.ErrNoResponders, "stop unsubscribes")

	stream, err := EnsureEventStream(ctx, js, StreamConfig{Duplicates: time.Minute, Replicas: 1, Partitions: 4})
	require.NoError(t, err)
	setMaxMsgSize(t, js, MinBatchMsgSize)
	stop, err = ServeLayout(ctx, nc, js, nil)
	require.NoError(t, err)
	require.Equal(t, schemas.Layout{Partitions: 4, Batch: []string{schemas.BatchVersion}}, askLayout(t, nc))

	// A request whose reply subject is an API subject gets no answer: the
	// answer would purge the stream.
	_, err = js.Publish(ctx, schemas.EventSubject("shop", "k1:s"), []byte(`{}`))
	require.NoError(t, err)
	require.NoError(t, nc.PublishRequest(schemas.LayoutSubject, "$JS.API.STREAM.PURGE."+schemas.EventStream, nil))
	require.NoError(t, nc.PublishRequest(schemas.LayoutSubject, "sessionmon.control.forget", nil))
	askLayout(t, nc) // answered after the two above
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
	stop()

	// A stream that cannot hold a full batch: no batching.
	setMaxMsgSize(t, js, schemas.MaxEventBytes)
	stop, err = ServeLayout(ctx, nc, js, nil)
	require.NoError(t, err)
	require.Equal(t, schemas.Layout{Partitions: 4, Batch: []string{}}, askLayout(t, nc))
	stop()
}

func TestServeLayoutEndsWithContext(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	_, err := EnsureEventStream(t.Context(), js, StreamConfig{Duplicates: time.Minute, Replicas: 1})
	require.NoError(t, err)
	setMaxMsgSize(t, js, -1)
	ctx, cancel := context.WithCancel(t.Context())
	stop, err := ServeLayout(ctx, nc, js, nil)
	require.NoError(t, err)
	defer stop()
	require.Equal(t, schemas.Layout{Partitions: 0, Batch: []string{schemas.BatchVersion}}, askLayout(t, nc))
	cancel()
	require.Eventually(t, func() bool {
		_, err := nc.Request(schemas.LayoutSubject, nil, time.Second)
		return err == nats.ErrNoResponders
	}, 5*time.Second, 50*time.Millisecond)
}

func TestReplyAllowed(t *testing.T) {
	t.Parallel()
	for reply, want := range map[string]bool{
		"_INBOX.abc.def":             true,
		"_APPS_INBOX.abc.def":        true,
		"_INBOX_shop.abc.def":        true,
		"":                           false,
		"$JS.API.STREAM.PURGE.X":     false,
		"$KV.bucket.key":             false,
		"$SYS.REQ.SERVER.PING":       false,
		"sessionmon.control.forget":  false,
		"sessionmon.events.shop.k1s": false,
		"alerts.feed":                false,
		"_INBOX.*":                   false,
		"_INBOX.>":                   false,
		"_INBOX..x":                  false,
		"_INBOX.a b":                 false,
	} {
		require.Equal(t, want, replyAllowed(reply), reply)
	}
}

func TestHoldsBatches(t *testing.T) {
	t.Parallel()
	require.True(t, holdsBatches(-1, 1<<20))
	require.True(t, holdsBatches(0, 1<<20))
	require.False(t, holdsBatches(-1, 512<<10), "the server's payload limit")
	require.True(t, holdsBatches(MinBatchMsgSize, 1<<20))
	require.False(t, holdsBatches(MinBatchMsgSize-1, 1<<20))
	require.False(t, holdsBatches(schemas.MaxEventBytes, 1<<20))
}
