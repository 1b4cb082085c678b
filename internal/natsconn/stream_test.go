package natsconn

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
