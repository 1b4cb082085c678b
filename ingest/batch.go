package ingest

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
)

// batch is what one ClickHouse insert writes and one round of acks
// confirms: the rows of valid events, the dead letters of the others, and
// every message they came from; or, read from the alerts stream, alerts
// and status changes. The reader adds the messages; converters decode,
// check and convert them, each into its own shard, while the reader
// fetches more.
type batch struct {
	msgs     []jetstream.Msg
	shards   []shard
	alerts   []chstore.AlertRow
	statuses []chstore.AlertStatusRow
	started  time.Time

	// converted counts the events the converters have added; pending
	// the messages they have yet to.
	converted atomic.Int64
	pending   sync.WaitGroup
}

// shard is what one converter made of a batch's messages.
type shard struct {
	rows chstore.EventColumns
	row  chstore.EventRow // the row being converted, reused
	dead []DeadLetter
}

// batchPool recycles written batches: a busy worker fills the buffers of
// an earlier batch instead of allocating (and having the garbage collector
// scan) new ones for every batch, and an idle worker holds no more than
// its largest batches so far.
type batchPool struct {
	free   chan *batch
	shards int
}

// newBatchPool holds up to n batches (as many as can be in use at once)
// of shards shards each.
func newBatchPool(n, shards int) *batchPool {
	return &batchPool{free: make(chan *batch, n), shards: shards}
}

// get returns an empty batch, recycled when one is free.
func (p *batchPool) get() *batch {
	select {
	case b := <-p.free:
		return b
	default:
		return &batch{shards: make([]shard, p.shards)}
	}
}

// put empties b, dropping its references to messages and rows, and keeps
// it for get.
func (p *batchPool) put(b *batch) {
	clear(b.msgs)
	clear(b.alerts)
	clear(b.statuses)
	b.msgs, b.alerts, b.statuses, b.started = b.msgs[:0], b.alerts[:0], b.statuses[:0], time.Time{}
	for i := range b.shards {
		sh := &b.shards[i]
		clear(sh.dead)
		sh.dead = sh.dead[:0]
		sh.rows.Reset()
		sh.row = chstore.EventRow{}
	}
	b.converted.Store(0)
	select {
	case p.free <- b:
	default:
	}
}

func (b *batch) len() int { return len(b.msgs) }

// events is how many events (and alerts or status changes) b holds:
// stored or dead-lettered, as far as they are converted.
func (b *batch) events() int {
	return int(b.converted.Load()) + len(b.alerts) + len(b.statuses)
}

// dead returns the dead letters of every shard in stream order.
func (b *batch) dead() []DeadLetter {
	var out []DeadLetter
	for i := range b.shards {
		out = append(out, b.shards[i].dead...)
	}
	slices.SortStableFunc(out, func(x, y DeadLetter) int {
		return cmp.Or(cmp.Compare(x.EventSeq, y.EventSeq), cmp.Compare(x.EventIndex, y.EventIndex))
	})
	return out
}

// rows gathers the rows of every shard into the first and returns them.
func (b *batch) rows() *chstore.EventColumns {
	all := &b.shards[0].rows
	for i := 1; i < len(b.shards); i++ {
		all.Append(&b.shards[i].rows)
		b.shards[i].rows.Reset()
	}
	return all
}

// job is a message for a converter.
type job struct {
	b   *batch
	msg jetstream.Msg
	now time.Time
}

// add adds one message to b: alerts are decoded at once, events are
// handed to a converter.
func (s *Service) add(b *batch, msg jetstream.Msg, jobs chan<- job) {
	if len(b.msgs) == 0 {
		b.started = time.Now()
	}
	b.msgs = append(b.msgs, msg)
	if s.alerts {
		s.countDelivery(msg)
		s.addAlert(b, msg)
		return
	}
	b.pending.Add(1)
	jobs <- job{b: b, msg: msg, now: s.now()}
}

// convertAll converts the messages of jobs into shard i of their batch
// until jobs is closed.
func (s *Service) convertAll(i int, jobs <-chan job) {
	for j := range jobs {
		seq := s.countDelivery(j.msg)
		sh := &j.b.shards[i]
		n := sh.rows.Len() + len(sh.dead)
		s.convert(sh, j.msg.Subject(), j.msg.Headers(), j.msg.Data(), seq, j.now)
		j.b.converted.Add(int64(sh.rows.Len() + len(sh.dead) - n))
		j.b.pending.Done()
	}
}

// countDelivery returns msg's stream sequence, and counts it when it is a
// redelivery.
func (s *Service) countDelivery(msg jetstream.Msg) uint64 {
	md, err := msg.Metadata()
	if err != nil {
		return 0
	}
	if md.NumDelivered > 1 {
		s.metrics.redelivered.Inc()
	}
	return md.Sequence.Stream
}

// convert adds the events of one message, received on the NATS subject
// natsSubject with headers h, to b: a row for each event pii.AdmitMessage
// admits, and a dead letter for each it refuses (not a schema v1 event,
// its app not the app of its subject, what looks like raw personal data),
// or one for the whole message when it is a batch that cannot be read.
// The detectors run the same gate.
func (s *Service) convert(b *shard, natsSubject string, h nats.Header, data []byte, seq uint64, now time.Time) {
	batched := h.Get(schemas.BatchHeader) != ""
	err := pii.AdmitMessage(natsSubject, h, data, now, func(i int, raw []byte, e *schemas.Event, err error) {
		if err != nil {
			d := s.reject(raw, seq, now, err)
			if batched {
				d.EventIndex = i + 1
			}
			b.dead = append(b.dead, d)
			return
		}
		b.row = s.row(e, now)
		b.rows.Add(&b.row)
	})
	if err != nil {
		b.dead = append(b.dead, s.reject(data, seq, now, err))
	}
}

// row converts an admitted event into its row. The enrichment is the
// detectors' (geo.Resolver.Enrich), so the stored row holds what they
// judged.
func (s *Service) row(e *schemas.Event, now time.Time) chstore.EventRow {
	s.geo.Enrich(e.Client)
	row := chstore.NewEventRow(e, now)
	if e.Client != nil && e.Client.UserAgent != "" {
		ua := ReduceUserAgent(e.Client.UserAgent)
		row.UABrowser, row.UAOS, row.UADevice = ua.Browser, ua.OS, ua.Device
	}
	return row
}

// maxDeadLetterBody bounds the body a dead letter keeps: one event, with
// room to spare.
const maxDeadLetterBody = 4 * schemas.MaxEventBytes

// reject builds the dead letter of a refused event: the reason, the field
// paths and a message that quote no values, and the body with every string
// that looks like personal data replaced (pii.RedactRaw), or no body.
func (s *Service) reject(data []byte, seq uint64, now time.Time, err error) DeadLetter {
	d := DeadLetter{EventSeq: seq, Time: now, Reason: pii.ReasonSchema}
	var r *pii.RefusedError
	if errors.As(err, &r) {
		d.Reason, d.Fields, d.Error = r.Reason, r.Fields, r.Error()
	} else {
		d.Error = pii.RedactText(err.Error())
	}
	d.Body, d.Redacted = pii.RedactRaw(data)
	if len(d.Body) > maxDeadLetterBody {
		// An oversized message (a batch that cannot be read): its
		// reason and error say what was wrong; the bytes would not fit.
		d.Body, d.Redacted = nil, true
	}
	if d.Reason == pii.ReasonPII && !d.Redacted {
		// The scan of the raw message must find what Check found; if
		// it ever does not, keep no body rather than the values.
		d.Body, d.Redacted = nil, true
	}
	s.metrics.rejected.WithLabelValues(d.Reason).Inc()
	return d
}
