package natsconn

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

func TestEnsureEventStreamIsIdempotentAndUpdates(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)

	_, err := EnsureEventStream(t.Context(), js, DefaultStreamConfig)
	require.NoError(t, err)
	_, err = EnsureEventStream(t.Context(), js, DefaultStreamConfig)
	require.NoError(t, err, "a second start must find the stream as it is")

	cfg := DefaultStreamConfig
	cfg.MaxAge = 30 * 24 * time.Hour
	cfg.Duplicates = time.Hour
	st, err := EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, cfg.MaxAge, info.Config.MaxAge)
	require.Equal(t, time.Hour, info.Config.Duplicates)
	require.Equal(t, []string{schemas.EventSubjects}, info.Config.Subjects)
}

func TestEventStreamDropsDuplicateIDs(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	st, err := EnsureEventStream(t.Context(), js, DefaultStreamConfig)
	require.NoError(t, err)

	for range 3 {
		m := nats.NewMsg(schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"))
		m.Header.Set(nats.MsgIdHdr, "event-1")
		m.Data = []byte(`{}`)
		_, err := js.PublishMsg(t.Context(), m)
		require.NoError(t, err)
	}
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
}

func TestEventStreamFullIsBackpressureNotLoss(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cfg := DefaultStreamConfig
	cfg.MaxBytes = 64 << 10
	st, err := EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)

	payload := make([]byte, 1024)
	var refused error
	for i := 0; i < 200 && refused == nil; i++ {
		_, refused = js.Publish(t.Context(), schemas.EventSubject("shop", "k1:AAAAAAAAAAAAAAAAAAAAAA"), payload)
	}
	require.Error(t, refused, "a full stream must refuse new events")
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.FirstSeq, "old events must not be discarded to make room")
}

// streamUpdates starts a server and subscribes to its stream-update
// advisories, which every stream and bucket update sends.
func streamUpdates(t *testing.T) (jetstream.JetStream, *nats.Subscription) {
	t.Helper()
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	require.NoError(t, err)
	return js, updates
}

// TestEnsureLeavesUpToDateStreamsAlone: declaring a stream that is already
// as wanted sends no update (an update racing a consumer's creation is a
// data race inside nats-server); a changed setting does.
func TestEnsureLeavesUpToDateStreamsAlone(t *testing.T) {
	t.Parallel()
	js, updates := streamUpdates(t)
	var err error

	cfg := DefaultStreamConfig
	cfg.Partitions = 4
	for range 3 { // created, then declared twice more as they are
		_, err = EnsureEventStream(t.Context(), js, cfg)
		require.NoError(t, err)
		_, err = EnsureAlertStream(t.Context(), js, DefaultAlertStreamConfig)
		require.NoError(t, err)
		_, err = EnsureDLQStream(t.Context(), js, 7*24*time.Hour, 1)
		require.NoError(t, err)
	}
	_, err = updates.NextMsg(300 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "no stream was updated")

	cfg.MaxAge = 3 * 24 * time.Hour
	_, err = EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)
	m, err := updates.NextMsg(5 * time.Second)
	require.NoError(t, err, "a changed max age updates the stream")
	require.Equal(t, "$JS.EVENT.ADVISORY.STREAM.UPDATED."+schemas.EventStream, m.Subject)
}

// TestEnsureLeavesUpToDateBucketsAlone: the same for key-value buckets.
func TestEnsureLeavesUpToDateBucketsAlone(t *testing.T) {
	t.Parallel()
	js, updates := streamUpdates(t)
	var err error
	for range 3 {
		_, err = EnsureSuppressionBucket(t.Context(), js, 1)
		require.NoError(t, err)
		_, err = EnsureLockBucket(t.Context(), js, time.Minute, 1)
		require.NoError(t, err)
	}
	_, err = updates.NextMsg(300 * time.Millisecond)
	require.ErrorIs(t, err, nats.ErrTimeout, "no bucket was updated")
	_, err = EnsureLockBucket(t.Context(), js, 2*time.Minute, 1)
	require.NoError(t, err)
	m, err := updates.NextMsg(5 * time.Second)
	require.NoError(t, err, "a changed TTL updates the bucket")
	require.Equal(t, "$JS.EVENT.ADVISORY.STREAM.UPDATED."+BucketStream(schemas.LockBucket), m.Subject)
}
