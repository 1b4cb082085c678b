package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

// Headers of a dead letter.
const (
	hdrReason    = "Sessionmon-Dlq-Reason"
	hdrError     = "Sessionmon-Dlq-Error"
	hdrFields    = "Sessionmon-Dlq-Fields"
	hdrStreamSeq = "Sessionmon-Dlq-Stream-Seq"
	hdrIndex     = "Sessionmon-Dlq-Batch-Index"
	hdrTime      = "Sessionmon-Dlq-Time"
	hdrRedacted  = "Sessionmon-Dlq-Redacted"
)

// DeadLetter is one refused event.
type DeadLetter struct {
	// Seq is the dead letter's sequence in SESSIONMON_DLQ.
	Seq uint64
	// EventSeq is the sequence in SESSIONMON_EVENTS of the message that
	// carried the refused event.
	EventSeq uint64
	// EventIndex is the refused event's place (from 1) in a batched
	// message; 0 for a single-event message or a batch refused whole.
	EventIndex int
	Time       time.Time
	Reason     string
	Error      string
	Fields     []string
	// Redacted reports whether Body differs from the message ingest
	// refused.
	Redacted bool
	// Body is the refused message as pii.RedactRaw keeps it: the original
	// bytes when nothing in them looks like personal data and they read
	// without loss; otherwise the JSON re-encoded with every such value
	// replaced by "[redacted:<kind>]", a bare placeholder, or nothing.
	Body []byte
}

// message builds the dead letter's NATS message. Its id makes a redelivered
// event dead-lettered once.
func (d *DeadLetter) message() *nats.Msg {
	m := nats.NewMsg(schemas.DLQSubjectPrefix + d.Reason)
	id := "dlq-" + strconv.FormatUint(d.EventSeq, 10)
	if d.EventIndex > 0 {
		id += "-" + strconv.Itoa(d.EventIndex)
		m.Header.Set(hdrIndex, strconv.Itoa(d.EventIndex))
	}
	m.Header.Set(nats.MsgIdHdr, id)
	m.Header.Set(hdrReason, d.Reason)
	m.Header.Set(hdrError, d.Error)
	m.Header.Set(hdrFields, strings.Join(d.Fields, ","))
	m.Header.Set(hdrStreamSeq, strconv.FormatUint(d.EventSeq, 10))
	m.Header.Set(hdrTime, d.Time.UTC().Format(time.RFC3339Nano))
	m.Header.Set(hdrRedacted, strconv.FormatBool(d.Redacted))
	// An erasure finds the dead letter by the subject it names.
	for _, h := range deadLetterSubjectHashes(d.Body) {
		m.Header.Add(schemas.SubjectHashHeader, h)
	}
	m.Data = d.Body
	return m
}

func deadLetterFrom(raw *jetstream.RawStreamMsg) DeadLetter {
	h := raw.Header
	d := DeadLetter{
		Seq:      raw.Sequence,
		Reason:   h.Get(hdrReason),
		Error:    h.Get(hdrError),
		Redacted: h.Get(hdrRedacted) == "true",
		Body:     raw.Data,
	}
	d.EventSeq, _ = strconv.ParseUint(h.Get(hdrStreamSeq), 10, 64)
	d.EventIndex, _ = strconv.Atoi(h.Get(hdrIndex))
	d.Time, _ = time.Parse(time.RFC3339Nano, h.Get(hdrTime))
	if f := h.Get(hdrFields); f != "" {
		d.Fields = strings.Split(f, ",")
	}
	return d
}

// ListDeadLetters returns the last n dead letters, newest first.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, n int) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, schemas.DLQStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream info: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < n; seq-- {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		out = append(out, deadLetterFrom(raw))
	}
	return out, nil
}
