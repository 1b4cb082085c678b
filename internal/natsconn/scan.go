package natsconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

// scanBatch is how many messages one fetch of a scan asks for.
const scanBatch = 256

// ScannedMsg is one message a scan read: its stream sequence, NATS
// subject, headers and body.
type ScannedMsg = jetstream.Msg

// ScanOption narrows or tunes a ScanStream.
type ScanOption func(*scanConfig)

type scanConfig struct {
	filters []string
	fetch   int
}

// ScanFilter limits a scan to the messages whose NATS subject matches one
// of filters.
func ScanFilter(filters ...string) ScanOption {
	return func(c *scanConfig) { c.filters = filters }
}

// ScanFetch sets how many messages one fetch of a scan asks for (256 by
// default): lower it for a stream of large messages, so that a fetch holds
// at most n of them in memory.
func ScanFetch(n int) ScanOption {
	return func(c *scanConfig) {
		if n > 0 {
			c.fetch = n
		}
	}
}

// ScanStream reads every message stored in stream when it starts, oldest
// first, and calls fn with each; an error of fn ends the scan and is
// returned. It reads through an ephemeral consumer without
// acknowledgements, which it deletes at the end, so it changes nothing
// itself and can run while the stream is written, by fn too (which may
// publish to stream, or delete the message it was given). Messages stored
// after the scan started may or may not be read. A missing stream returns
// an error wrapping jetstream.ErrStreamNotFound.
func ScanStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(seq uint64, m ScannedMsg) error, opts ...ScanOption) error {
	cfg := scanConfig{fetch: scanBatch}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("scan stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("scan stream %s: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "sessionmon: scan for an erasure",
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
		FilterSubjects:    cfg.filters,
	})
	if err != nil {
		return fmt.Errorf("scan stream %s: create consumer: %w", stream, err)
	}
	defer func() {
		// The consumer also goes by itself after InactiveThreshold.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(dctx, c.CachedInfo().Name)
	}()
	for {
		// Without waiting: when nothing is left to read, the messages up
		// to the stream's last one are gone (aged out or deleted while
		// the scan ran).
		batch, err := c.FetchNoWait(cfg.fetch)
		if err != nil {
			return fmt.Errorf("scan stream %s: fetch: %w", stream, err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("scan stream %s: %w", stream, err)
			}
			if md.Sequence.Stream > last {
				done = true
				continue
			}
			if err := fn(md.Sequence.Stream, m); err != nil {
				return err
			}
			if md.Sequence.Stream == last || md.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("scan stream %s: fetch: %w", stream, err)
		}
		if done || n == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("scan stream %s: %w", stream, err)
		}
	}
}

// SecureDeleteMessages deletes the messages seqs of stream, overwriting
// their stored bytes (JetStream's secure delete), and returns how many it
// deleted; a message already gone (aged out, or deleted before) is not
// counted.
func SecureDeleteMessages(ctx context.Context, js jetstream.JetStream, stream string, seqs []uint64) (uint64, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("delete messages of %s: %w", stream, err)
	}
	var n uint64
	for _, seq := range seqs {
		err := s.SecureDeleteMsg(ctx, seq)
		switch {
		case err == nil:
			n++
		case gone(ctx, s, seq):
			// Aged out or deleted before: the server answers with a
			// failure that names no error type.
		default:
			return n, fmt.Errorf("delete message %d of %s: %w", seq, stream, err)
		}
	}
	return n, nil
}

// gone reports whether message seq is no longer in s.
func gone(ctx context.Context, s jetstream.Stream, seq uint64) bool {
	_, err := s.GetMsg(ctx, seq)
	return errors.Is(err, jetstream.ErrMsgNotFound)
}

// Mentions reports whether m is about the data subject pseudonym: it
// carries the subject's schemas.SubjectHashHeader, or the pseudonym appears
// as a whole token in its NATS subject, a header value or its body.
func Mentions(m ScannedMsg, pseudonym string) bool {
	hash := schemas.SubjectHash(pseudonym)
	for k, vs := range m.Headers() {
		for _, v := range vs {
			if (k == schemas.SubjectHashHeader && v == hash) || schemas.MentionsPseudonym([]byte(v), pseudonym) {
				return true
			}
		}
	}
	return schemas.MentionsPseudonym([]byte(m.Subject()), pseudonym) || schemas.MentionsPseudonym(m.Data(), pseudonym)
}
