package ndjson

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestPublishFromPipe: lines read from a pipe are published as they come,
// not once a block of them has arrived.
func TestPublishFromPipe(t *testing.T) {
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s)
	stream, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	pub := NewPublisher(nc, nil)
	type result struct {
		n   Counts
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := pub.Publish(t.Context(), r, io.Discard)
		done <- result{n, err}
	}()
	line := func(i int) string {
		e := schemas.Event{ID: fmt.Sprintf("pipe-%d", i), SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginFailed,
			Time: schemas.At(time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)), App: "shop",
			Subject: fmt.Sprintf("k1:pipe%015d", i), Reason: "bad_password"}
		b, err := schemas.Encode(&e)
		require.NoError(t, err)
		return string(b) + "\n"
	}
	for i := range 3 {
		_, err := io.WriteString(w, line(i))
		require.NoError(t, err)
	}
	// The pipe stays open: the three events are stored all the same.
	poll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info, err := stream.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != 3 {
			return fmt.Errorf("%d events stored while the pipe is open", info.State.Msgs)
		}
		return nil
	})
	require.NoError(t, w.Close())
	res := <-done
	require.NoError(t, res.err)
	require.Equal(t, Counts{Lines: 3, Published: 3}, res.n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, pub.Close(ctx))
}
