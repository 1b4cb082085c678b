package natsconn

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestScanAndSecureDelete scans a stream of more messages than one fetch
// holds, with a gap, finds the messages about a subject (by header, by
// body, not by a longer pseudonym that starts with it), deletes them, and
// leaves the others.
func TestScanAndSecureDelete(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	ctx := t.Context()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SCAN", Subjects: []string{"scan.>"}})
	require.NoError(t, err)
	const subject = "sub_0001"
	want := map[uint64]bool{}
	for i := 1; i <= 3*scanBatch+7; i++ {
		m := &nats.Msg{Subject: "scan.x", Header: nats.Header{}, Data: fmt.Appendf(nil, `{"n":%d,"subject":"sub_%04d"}`, i, i%50)}
		switch {
		case i%50 == 1:
			want[uint64(i)] = true
		case i%97 == 0:
			m.Header.Set(schemas.SubjectHashHeader, schemas.SubjectHash(subject))
			want[uint64(i)] = true
		case i%89 == 0:
			m.Data = []byte(`{"subject":"sub_00012"}`)
		}
		_, err := js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	require.NoError(t, st.DeleteMsg(ctx, 51), "a gap, and a message about the subject gone before the scan")
	delete(want, 51)

	var found []uint64
	require.NoError(t, ScanStream(ctx, js, "SCAN", func(seq uint64, m ScannedMsg) error {
		if Mentions(m, subject) {
			found = append(found, seq)
		}
		return nil
	}))
	require.Len(t, found, len(want))
	for _, seq := range found {
		require.True(t, want[seq], "message %d is not about the subject", seq)
	}

	n, err := SecureDeleteMessages(ctx, js, "SCAN", append(found, 51))
	require.NoError(t, err)
	require.Equal(t, uint64(len(want)), n, "a message already gone is not counted")
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3*scanBatch+7-1-len(want)), info.State.Msgs)

	require.ErrorIs(t, ScanStream(ctx, js, "NOPE", func(uint64, ScannedMsg) error { return nil }), jetstream.ErrStreamNotFound)
}
