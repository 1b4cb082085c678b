package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestErasureFindsDeadLetters runs ingest on refused events of three
// subjects: the dead letters name the subject by the hash header (never
// the hash of a subject field that looked like a phone number), and
// natsconn.PurgeSubjectDeadLetters deletes one subject's dead letters, and only
// those.
func TestErasureFindsDeadLetters(t *testing.T) {
	st := newStack(t)
	chtest.New(t)
	const (
		erased = "k1:ERASEERASEERASEERASE"
		kept   = "k1:KEEPKEEPKEEPKEEPKEEP"
		phone  = "004915112345678"
	)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	ev := func(id, subject, extra string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"schema_version":1,"type":"login.failed","time":%q,"app":"shop","subject":%q%s}`,
			id, now, subject, extra)
	}
	for _, m := range []struct {
		subject string
		body    []byte
	}{
		{erased, ev("bad-1", erased, `,"client":{"ip_prefix":"203.0.113.77/32"}`)},
		{erased, ev("bad-2", erased, `,"attrs":{"note":"from 203.0.113.77"}`)},
		{kept, ev("bad-3", kept, `,"attrs":{"note":"from 203.0.113.78"}`)},
		{phone, ev("bad-4", phone, "")},
	} {
		_, err := st.js.Publish(t.Context(), schemas.EventSubject("shop", m.subject), m.body)
		require.NoError(t, err)
	}
	svc, err := New(st.js, chtest.DSN(t), testConfig(), WithMetrics(NewMetrics(nil)))
	require.NoError(t, err)
	runService(t, svc)
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		dead, err := ListDeadLetters(t.Context(), st.js, 100)
		if err != nil {
			return err
		}
		if len(dead) != 4 {
			return fmt.Errorf("%d dead letters", len(dead))
		}
		return nil
	})

	s, err := st.js.Stream(t.Context(), schemas.DLQStream)
	require.NoError(t, err)
	hashes := map[string]int{}
	for seq := uint64(1); seq <= 4; seq++ {
		raw, err := s.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		for _, h := range raw.Header.Values(schemas.SubjectHashHeader) {
			hashes[h]++
		}
	}
	require.Equal(t, map[string]int{schemas.SubjectHash(erased): 2, schemas.SubjectHash(kept): 1}, hashes,
		"the phone number's dead letter carries no hash of it")

	n, err := natsconn.PurgeSubjectDeadLetters(t.Context(), st.js, erased)
	require.NoError(t, err)
	require.Equal(t, uint64(2), n)
	dead, err := ListDeadLetters(t.Context(), st.js, 100)
	require.NoError(t, err)
	require.Len(t, dead, 2)
	for _, d := range dead {
		require.NotContains(t, string(d.Body), erased)
	}
	require.Contains(t, string(dead[0].Body)+string(dead[1].Body), kept)

	n, err = natsconn.PurgeSubjectDeadLetters(t.Context(), st.js, erased)
	require.NoError(t, err)
	require.Zero(t, n, "erasing again finds nothing")
	_, err = natsconn.PurgeSubjectDeadLetters(t.Context(), st.js, "k1:*")
	require.ErrorContains(t, err, "not a valid pseudonym")
}
