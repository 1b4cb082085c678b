package ingest

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// batch is what one ClickHouse insert writes and one round of acks
// confirms: the rows of valid events, the dead letters of the others, and
// every message they came from.
type batch struct {
	msgs    []jetstream.Msg
	rows    []chstore.EventRow
	dead    []DeadLetter
	started time.Time
}

func newBatch(size int) *batch {
	return &batch{
		msgs: make([]jetstream.Msg, 0, size),
		rows: make([]chstore.EventRow, 0, size),
	}
}

func (b *batch) len() int { return len(b.msgs) }

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
	row, dead := s.convert(msg.Data(), seq, now)
	if dead != nil {
		b.dead = append(b.dead, *dead)
		return
	}
	b.rows = append(b.rows, row)
}

// convert turns one message body into a row, or into a dead letter when it
// is not a schema v1 event or carries what looks like raw personal data.
func (s *Service) convert(data []byte, seq uint64, now time.Time) (chstore.EventRow, *DeadLetter) {
	e, err := schemas.Decode(data, now)
	if err != nil {
		d := s.rejectInvalid(data, seq, now, err)
		return chstore.EventRow{}, &d
	}
	if findings := CheckPII(e); len(findings) > 0 {
		d := s.rejectPII(e, seq, now, findings)
		return chstore.EventRow{}, &d
	}
	// The same enrichment as the detectors' (geo.Resolver.Enrich), so the
	// stored row holds what they judged.
	s.geo.Enrich(e.Client)
	row := chstore.NewEventRow(e, now)
	if e.Client != nil && e.Client.UserAgent != "" {
		ua := ReduceUserAgent(e.Client.UserAgent)
		row.UABrowser, row.UAOS, row.UADevice = ua.Browser, ua.OS, ua.Device
	}
	return row, nil
}

// rejectInvalid builds the dead letter of an event that is not schema v1.
// The body is kept, minus anything in it that looks like personal data.
func (s *Service) rejectInvalid(data []byte, seq uint64, now time.Time, err error) DeadLetter {
	// Error texts and field paths can quote an unknown field name or an
	// attrs key, so they are redacted too.
	d := DeadLetter{EventSeq: seq, Time: now, Reason: reasonSchema}
	d.Fields, d.Error = RedactSchemaError(err)
	var ve *schemas.ValidationError
	if errors.As(err, &ve) {
		if len(ve.Errors) == 1 && ve.Errors[0].Field == "(event)" {
			d.Reason = reasonInvalidJSON
		}
	}
	d.Body, d.Redacted = RedactRaw(data)
	s.metrics.rejected.WithLabelValues(d.Reason).Inc()
	return d
}

// rejectPII builds the dead letter of an event that carries what looks like
// raw personal data: the reason and field paths, never the values.
func (s *Service) rejectPII(e *schemas.Event, seq uint64, now time.Time, findings []Finding) DeadLetter {
	d := DeadLetter{EventSeq: seq, Time: now, Reason: reasonPII, Redacted: true,
		Error: (&PIIError{Findings: findings}).Error()}
	for _, f := range findings {
		d.Fields = append(d.Fields, f.Field)
	}
	if body, err := schemas.Encode(Redact(e, findings)); err == nil {
		d.Body = body
	}
	s.metrics.rejected.WithLabelValues(reasonPII).Inc()
	return d
}
