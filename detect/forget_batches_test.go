package detect

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// storedEvent is an event message as the events stream stores it.
type storedEvent struct {
	seq     uint64
	subject string
	header  nats.Header
	data    []byte
}

// storedEvents reads every message of the events stream by sequence.
func storedEvents(t *testing.T, js jetstream.JetStream) []storedEvent {
	t.Helper()
	s, err := js.Stream(t.Context(), schemas.EventStream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	var out []storedEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
			continue
		}
		out = append(out, storedEvent{seq: seq, subject: m.Subject, header: m.Header, data: m.Data})
	}
	return out
}

// mentions reports whether m names pseudonym in its subject, a header or
// its body.
func (m storedEvent) mentions(pseudonym string) bool {
	for _, vs := range m.header {
		for _, v := range vs {
			if schemas.MentionsPseudonym([]byte(v), pseudonym) {
				return true
			}
		}
	}
	return schemas.MentionsPseudonym([]byte(m.subject), pseudonym) || schemas.MentionsPseudonym(m.data, pseudonym)
}

// events decodes the events of m, single or batched.
func (m storedEvent) events(t *testing.T) []*schemas.Event {
	t.Helper()
	lines, _, err := schemas.SplitBatch(m.header, m.data)
	require.NoError(t, err)
	out := make([]*schemas.Event, 0, len(lines))
	for _, l := range lines {
		e, err := schemas.Decode(l, time.Now())
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

// publishBatch publishes events, all of one app and of subjects in
// partition p of n, as one batch, and returns its stream sequence.
func publishBatch(t *testing.T, js jetstream.JetStream, p, n int, events ...*schemas.Event) uint64 {
	t.Helper()
	ids := make([]string, len(events))
	lines := make([][]byte, len(events))
	for i, e := range events {
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		ids[i], lines[i] = e.ID, b
	}
	ack, err := js.PublishMsg(t.Context(), schemas.NewBatchMsg(events[0].App, p, n, ids, lines))
	require.NoError(t, err)
	require.False(t, ack.Duplicate)
	return ack.Sequence
}

// publishSingle publishes e as a single event and returns its stream
// sequence.
func publishSingle(t *testing.T, js jetstream.JetStream, e *schemas.Event) uint64 {
	t.Helper()
	b, err := schemas.Encode(e)
	require.NoError(t, err)
	m := nats.NewMsg(schemas.EventSubject(e.App, e.Subject))
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Data = b
	ack, err := js.PublishMsg(t.Context(), m)
	require.NoError(t, err)
	return ack.Sequence
}

// partitionToken returns the partition token of a stored subject, or ""
// when it has none.
func partitionToken(subject string) string {
	tokens := strings.Split(strings.TrimPrefix(subject, schemas.EventSubjectPrefix), ".")
	if len(tokens) != 3 {
		return ""
	}
	return tokens[0]
}

// TestPrepareForgetRewritesBatches: an erasure removes the subject's
// events from batched messages as well as its single events. Each batch
// that held some is replaced, in its partition, by a batch of the other
// events that names the original, and deleted; a batch of only the
// subject's events is deleted; other batches are left as they are. The
// count is of the subject's events, and a second erasure finds nothing.
func TestPrepareForgetRewritesBatches(t *testing.T) {
	t.Parallel()
	for _, partitions := range []int{0, 4} {
		t.Run(fmt.Sprintf("partitions/%d", partitions), func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			_, js := natstest.Connect(t, s)
			cfg := natsconn.DefaultStreamConfig
			cfg.Partitions = partitions
			_, err := natsconn.EnsureEventStream(t.Context(), js, cfg)
			require.NoError(t, err)

			// The three subjects share a partition (the last one), as
			// the events of one batch do.
			p := max(partitions-1, 0)
			subjects := map[string]string{}
			for _, name := range []string{"erased", "kept", "other"} {
				subjects[name] = "k1:" + name + "-AbCdEfGh"
				if partitions > 0 {
					subjects[name] = subjectIn(t, name, p, partitions)
				}
			}
			erased, kept, other := subjects["erased"], subjects["kept"], subjects["other"]
			at := time.Now().Add(-time.Minute)
			ev := func(id, subject string) *schemas.Event {
				return svcEvent(id, schemas.LoginFailed, subject, at)
			}
			bankEv := func(id, subject string) *schemas.Event {
				e := ev(id, subject)
				e.App = "bank"
				return e
			}

			publishSingle(t, js, ev("s-e1", erased))
			publishSingle(t, js, ev("s-k1", kept))
			mixed := publishBatch(t, js, p, partitions, ev("b-e1", erased), ev("b-k1", kept), ev("b-o1", other))
			untouched := publishBatch(t, js, p, partitions, ev("b-k2", kept), ev("b-o2", other))
			onlyErased := publishBatch(t, js, p, partitions, ev("b-e2", erased), ev("b-e3", erased))
			last := publishBatch(t, js, p, partitions, ev("b-o3", other), ev("b-e4", erased))
			publishSingle(t, js, ev("s-o1", other))
			bank := publishBatch(t, js, p, partitions, bankEv("b-e5", erased), bankEv("b-k3", kept))
			const erasedEvents = 6
			before := storedEvents(t, js)
			original := map[uint64]storedEvent{}
			for _, m := range before {
				original[m.seq] = m
			}

			n, err := PrepareForget(t.Context(), js, erased)
			require.NoError(t, err)
			require.Equal(t, uint64(erasedEvents), n, "the count is of the subject's events, single and batched")

			after := storedEvents(t, js)
			ids := map[string]int{}
			replaced := map[uint64]bool{}
			for _, m := range after {
				require.False(t, m.mentions(erased), "message %d (%s) still names the erased subject", m.seq, m.subject)
				events := m.events(t)
				for _, e := range events {
					ids[e.ID]++
				}
				r := m.header.Get(schemas.ReplacesHeader)
				if r == "" {
					require.Contains(t, original, m.seq, "only replacements are new")
					continue
				}
				seq, err := strconv.ParseUint(r, 10, 64)
				require.NoError(t, err)
				orig, ok := original[seq]
				require.True(t, ok, "a replacement names a batch that was stored")
				require.False(t, replaced[seq], "one replacement per batch")
				replaced[seq] = true
				require.Equal(t, schemas.BatchVersion, m.header.Get(schemas.BatchHeader))
				require.Equal(t, schemas.BatchMsgID(func() []string {
					var out []string
					for _, e := range events {
						out = append(out, e.ID)
					}
					return out
				}())+"-r"+r, m.header.Get(jetstream.MsgIDHeader))
				app, _, ok := schemas.EventSubjectTokens(orig.subject)
				require.True(t, ok)
				p := 0
				if partitions > 0 {
					p = mustAtoi(t, partitionToken(orig.subject))
				}
				require.Equal(t, partitionedSubject(p, app, schemas.ReplacementToken), m.subject, "same app and partition, on the replacement subject")
				if partitions > 0 {
					require.Equal(t, strconv.Itoa(p), partitionToken(m.subject))
				}
			}
			require.Equal(t, map[string]int{"s-k1": 1, "s-o1": 1, "b-k1": 1, "b-o1": 1, "b-k2": 1, "b-o2": 1, "b-o3": 1, "b-k3": 1}, ids,
				"every other event is kept exactly once, and none of the erased subject's")
			require.Equal(t, map[uint64]bool{mixed: true, last: true, bank: true}, replaced, "the batches with other events are replaced")
			seqs := map[uint64]bool{}
			for _, m := range after {
				seqs[m.seq] = true
			}
			require.True(t, seqs[untouched], "a batch without the subject's events stays")
			for _, seq := range []uint64{mixed, onlyErased, last, bank} {
				require.False(t, seqs[seq], "batch %d is deleted", seq)
			}

			n, err = PrepareForget(t.Context(), js, erased)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Len(t, storedEvents(t, js), len(after), "a second erasure changes nothing")
		})
	}
}

// TestPrepareForgetRewritesBatchStoredBeforePartitioning: a batch stored
// before the stream was partitioned is replaced by a batch in each
// partition its other events belong to now.
func TestPrepareForgetRewritesBatchStoredBeforePartitioning(t *testing.T) {
	t.Parallel()
	const n = 4
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	cfg := natsconn.DefaultStreamConfig
	cfg.Partitions = 0
	_, err := natsconn.EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)
	erased, inOne, inTwo := subjectIn(t, "erased", 0, n), subjectIn(t, "one", 1, n), subjectIn(t, "two", 2, n)
	at := time.Now().Add(-time.Minute)
	seq := publishBatch(t, js, 0, 0,
		svcEvent("e1", schemas.LoginFailed, erased, at), svcEvent("o1", schemas.LoginFailed, inOne, at),
		svcEvent("t1", schemas.LoginFailed, inTwo, at), svcEvent("o2", schemas.LoginFailed, inOne, at))
	cfg.Partitions = n
	_, err = natsconn.EnsureEventStream(t.Context(), js, cfg)
	require.NoError(t, err)

	purged, err := PrepareForget(t.Context(), js, erased)
	require.NoError(t, err)
	require.Equal(t, uint64(1), purged)
	byPartition := map[string][]string{}
	for _, m := range storedEvents(t, js) {
		require.NotEqual(t, seq, m.seq, "the original is deleted")
		require.Equal(t, strconv.FormatUint(seq, 10), m.header.Get(schemas.ReplacesHeader))
		require.False(t, m.mentions(erased))
		p := partitionToken(m.subject)
		pn, err := strconv.Atoi(p)
		require.NoError(t, err)
		require.Equal(t, partitionedSubject(pn, "shop", schemas.ReplacementToken), m.subject)
		for _, e := range m.events(t) {
			require.Equal(t, pn, schemas.EventPartition(e.Subject, n), "each event is in its partition")
			byPartition[p] = append(byPartition[p], e.ID)
		}
	}
	require.Equal(t, map[string][]string{"1": {"o1", "o2"}, "2": {"t1"}}, byPartition)
}

// TestPrepareForgetBatchEdges: events of other subjects that name the
// erased one elsewhere keep their batch as it is; a batch that cannot be
// split is deleted whole when it names the subject; a batch of a framing
// version this build does not read is kept and reported.
func TestPrepareForgetBatchEdges(t *testing.T) {
	t.Parallel()
	const erased = "k1:erased-AbCdEfGh"
	for _, tc := range []struct {
		name    string
		version string
		body    string
		count   string
		// kept says whether the batch stays; purged is the count;
		// fails whether PrepareForget returns an error.
		kept   bool
		purged uint64
		fails  bool
	}{
		{name: "named elsewhere", version: schemas.BatchVersion, count: "1",
			body: `{"id":"x1","app":"shop","subject":"k1:other-AbCdEfGh","reason":"k1:erased-AbCdEfGh"}` + "\n", kept: true},
		{name: "unreadable framing", version: schemas.BatchVersion, count: "2",
			body: `{"id":"x1","app":"shop","subject":"k1:erased-AbCdEfGh"}` + "\n", purged: 1},
		{name: "unreadable framing, not naming the subject", version: schemas.BatchVersion, count: "2",
			body: `{"id":"x1","app":"shop","subject":"k1:other-AbCdEfGh"}` + "\n", kept: true},
		{name: "line not an event", version: schemas.BatchVersion, count: "2",
			body: `{"id":"x1","app":"shop","subject":"k1:other-AbCdEfGh"}` + "\n" + `not json k1:erased-AbCdEfGh` + "\n", purged: 1},
		{name: "unknown version", version: "2", count: "1",
			body: `{"id":"x1","app":"shop","subject":"k1:erased-AbCdEfGh"}` + "\n", kept: true, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			_, js := natstest.Connect(t, s)
			_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
			require.NoError(t, err)
			m := nats.NewMsg(schemas.EventSubject("shop", schemas.BatchToken(0, 0)))
			m.Header.Set(schemas.BatchHeader, tc.version)
			m.Header.Set(schemas.BatchCountHeader, tc.count)
			m.Data = []byte(tc.body)
			ack, err := js.PublishMsg(t.Context(), m)
			require.NoError(t, err)

			purged, err := PrepareForget(t.Context(), js, erased)
			if tc.fails {
				require.ErrorContains(t, err, "framing version")
				require.NotContains(t, err.Error(), erased, "the error does not name the subject")
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.purged, purged)
			stored := storedEvents(t, js)
			if tc.kept {
				require.Len(t, stored, 1)
				require.Equal(t, ack.Sequence, stored[0].seq)
				return
			}
			require.False(t, slices.ContainsFunc(stored, func(m storedEvent) bool { return m.mentions(erased) }))
			require.False(t, slices.ContainsFunc(stored, func(m storedEvent) bool { return m.seq == ack.Sequence }))
			for _, m := range stored {
				require.Equal(t, strconv.FormatUint(ack.Sequence, 10), m.header.Get(schemas.ReplacesHeader))
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
