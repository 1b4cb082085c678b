package ingest

import (
	"errors"
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
// and status changes.
type batch struct {
	msgs     []jetstream.Msg
	rows     []chstore.EventRow
	dead     []DeadLetter
	alerts   []chstore.AlertRow
	statuses []chstore.AlertStatusRow
	started  time.Time
}

// batchPool recycles written batches: a busy worker fills the arrays of
// an earlier batch instead of allocating (and having the garbage collector
// scan) arrays of up to BatchSize rows for every batch, and an idle worker
// holds no more than its largest batches so far.
type batchPool chan *batch

// newBatchPool holds up to n batches: as many as can be in use at once.
func newBatchPool(n int) batchPool { return make(batchPool, n) }

// get returns an empty batch, recycled when one is free.
func (p batchPool) get() *batch {
	select {
	case b := <-p:
		return b
	default:
		return &batch{}
	}
}

// put empties b, dropping its references to messages and rows, and keeps
// it for get.
func (p batchPool) put(b *batch) {
	clear(b.msgs)
	clear(b.rows)
	clear(b.dead)
	clear(b.alerts)
	clear(b.statuses)
	*b = batch{msgs: b.msgs[:0], rows: b.rows[:0], dead: b.dead[:0], alerts: b.alerts[:0], statuses: b.statuses[:0]}
	select {
	case p <- b:
	default:
	}
}

func (b *batch) len() int { return len(b.msgs) }

// events is how many events (and alerts or status changes) b holds:
// stored or dead-lettered.
func (b *batch) events() int {
	return len(b.rows) + len(b.dead) + len(b.alerts) + len(b.statuses)
}

// add decodes, checks and converts one message into b.
func (s *Service) add(b *batch, msg jetstream.Msg) {
	if len(b.msgs) == 0 {
		b.started = time.Now()
	}
	b.msgs = append(b.msgs, msg)
	now := s.now()
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
		if md.NumDelivered > 1 {
			s.metrics.redelivered.Inc()
		}
	}
	if s.alerts {
		s.addAlert(b, msg)
		return
	}
	s.convert(b, msg.Subject(), msg.Headers(), msg.Data(), seq, now)
}

// convert adds the events of one message, received on the NATS subject
// natsSubject with headers h, to b: a row for each event pii.AdmitMessage
// admits, and a dead letter for each it refuses (not a schema v1 event,
// its app not the app of its subject, what looks like raw personal data),
// or one for the whole message when it is a batch that cannot be read.
// The detectors run the same gate.
func (s *Service) convert(b *batch, natsSubject string, h nats.Header, data []byte, seq uint64, now time.Time) {
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
		b.rows = append(b.rows, s.row(e, now))
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
