package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
)

// Replay sizes.
const (
	// replayBatch is how many events the replay reader decodes before
	// handing them to the engine.
	replayBatch = 512
	// replayQueue is how many decoded batches may wait for the engine.
	replayQueue = 8
	// replayIdle is how long a replay read waits for the next message
	// before it asks the server whether any are left.
	replayIdle = 2 * time.Second
	// maxReplayAlerts bounds the alerts a replay holds back until it knows
	// which of them were lost by a crash.
	maxReplayAlerts = 10000
)

// readStream reads, in order, the messages of stream selected by cfg whose
// sequence is at most last, and calls fn with each. It returns when it
// reaches last, when the stream has nothing more to deliver, or on the
// first error of fn.
func (s *Service) readStream(ctx context.Context, logger *slog.Logger, stream string, cfg jetstream.OrderedConsumerConfig, last uint64,
	fn func(msg jetstream.Msg, md *jetstream.MsgMetadata) error) error {
	if last == 0 {
		return nil
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(pullBatch, pullBytes))
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(replayIdle))
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, nats.ErrTimeout):
			// Messages can expire (max age) while the read waits.
			info, ierr := cons.Info(ctx)
			if ierr != nil {
				return fmt.Errorf("read %s: %w", stream, ierr)
			}
			if info.NumPending == 0 {
				return nil
			}
			continue
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return fmt.Errorf("read %s: %w", stream, err)
		default:
			logger.Warn("read stream", slog.String("stream", stream), slog.Any("error", err))
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if md.Sequence.Stream > last {
			return nil
		}
		if err := fn(msg, md); err != nil {
			return err
		}
		if md.Sequence.Stream == last || md.NumPending == 0 {
			return nil
		}
	}
}

// alertIDsSince adds to known the id of every alert in SESSIONMON_ALERTS
// stored since from (status changes are skipped). Alerts of events stored
// since from were published after from.
func (s *Service) alertIDsSince(ctx context.Context, from time.Time, known map[string]struct{}) error {
	stream, err := s.js.Stream(ctx, schemas.AlertStream)
	if err != nil {
		return fmt.Errorf("alerts stream: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	return s.readStream(ctx, s.logger, schemas.AlertStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &from,
		HeadersOnly:   true,
	}, last, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) error {
		if strings.HasPrefix(msg.Subject(), schemas.StatusSubjectPrefix) {
			return nil
		}
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
			known[id] = struct{}{}
		}
		return nil
	})
}

// replayEnd is where a replay left the state.
type replayEnd struct {
	// last is the last stream sequence the state includes.
	last uint64
	// base: the replay read nothing at or before it (the restored
	// snapshot holds those messages, or they are history before the
	// window).
	base uint64
	// seen holds the stream sequences the replay read.
	seen seqSet
}

// replayBatchOf is a run of replayed events.
type replayBatchOf struct {
	events []*schemas.Event
	seqs   []uint64
	last   uint64 // the last stream sequence read
}

// replayPlan says where a unit's replay starts.
type replayPlan struct {
	// from: without a snapshot, the events stored since from are replayed.
	from time.Time
	// snap is the snapshot restored: the events stored after its
	// sequence are replayed.
	snap *restoredSnapshot
	// lost are the alerts snap lists in flight that the alerts stream
	// does not have.
	lost []schemas.Alert
}

// replay feeds eng the events of SESSIONMON_EVENTS stored after the
// restored snapshot (plan.snap) or, without one, since plan.from, up to the
// last one the durable consumer had delivered, in event-time order (no
// MaxHold), and returns the last sequence the state includes: live
// processing skips every event at or before it. Alerts the engine does not
// suppress as already sent are held back; those dated at or after the
// oldest event the consumer had not acknowledged are published at the end
// (a crash lost them), with the snapshot's alerts in flight that were not
// sent; the others are dropped (the history before the window, which the
// replay lacks, would have deduplicated them).
//
// A partition (u) replays its own events and, of the events stored before
// the stream was partitioned, those of its subjects. A batched message is
// replayed event by event, as live; a message that replaces one the state
// already includes (schemas.ReplacesHeader) is skipped.
func (s *Service) replay(ctx, wctx context.Context, u *unit, eng *Engine, plan replayPlan, start resume) (replayEnd, error) {
	from := plan.from
	what := "since " + from.UTC().Format(time.RFC3339)
	ocfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}
	var (
		replayed, last uint64
		maxAt          = int64(math.MinInt64)
		cutoff         = int64(math.MaxInt64) // oldest unacknowledged event's time
		held           []schemas.Alert
		upTo           = start.delivered
		base           uint64
		seen           = newSeqSet(0)
		reading        bool
	)
	if snap := plan.snap; snap != nil {
		what = fmt.Sprintf("after the snapshot of %s (sequence %d)", snap.created.Format(time.RFC3339), snap.seq)
		ocfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: snap.seq + 1}
		last, base = snap.seq, snap.seq
		seen = newSeqSet(snap.seq)
		if snap.seq >= upTo {
			upTo = 0 // nothing to read
		}
		if start.ackFloor < snap.seq {
			// Events in the restored reorder buffer may not have been
			// released, so not acknowledged, before the stop.
			cutoff = snap.pendingMinAt
		}
	}
	u.state.Set("replaying events " + what)
	rcfg, mine := s.replayFilter(u, ocfg)
	began := time.Now()
	batches := make(chan replayBatchOf, replayQueue)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		b := replayBatchOf{}
		send := func() error {
			select {
			case batches <- b:
				b = replayBatchOf{}
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		err := s.readStream(gctx, u.logger, schemas.EventStream, rcfg, upTo, func(msg jetstream.Msg, md *jetstream.MsgMetadata) error {
			seq := md.Sequence.Stream
			if !reading {
				reading = true
				if plan.snap == nil {
					base = seq - 1
				}
			}
			b.last = seq
			seen.add(seq)
			if orig := replacedSeq(msg.Subject(), msg.Headers()); orig != 0 && (orig <= base || seen.has(orig)) {
				// Its events were replayed, or restored, with the
				// message it replaces.
				return nil
			}
			// The gate of live processing and ingest: a refused event
			// (or a whole batch that cannot be read) is skipped here too.
			_ = pii.AdmitMessage(msg.Subject(), msg.Headers(), msg.Data(), md.Timestamp, func(_ int, _ []byte, ev *schemas.Event, err error) {
				if err == nil && mine(msg.Subject(), ev) {
					b.events = append(b.events, ev)
					b.seqs = append(b.seqs, seq)
				}
			})
			if len(b.events) >= replayBatch {
				return send()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return send()
	})

	// Alerts come in stream order; the newest matter most (a crash lost
	// them), so beyond maxReplayAlerts the oldest are dropped, and counted.
	var dropped int
	hold := func(alerts []schemas.Alert) {
		held = append(held, alerts...)
		if len(held) > 2*maxReplayAlerts {
			n := len(held) - maxReplayAlerts
			dropped += n
			held = append(held[:0], held[n:]...)
		}
	}
	g.Go(func() error {
		for b := range batches {
			last = max(last, b.last)
			for i, ev := range b.events {
				at := ev.Time.UnixNano()
				if b.seqs[i] > start.ackFloor {
					cutoff = min(cutoff, at)
				}
				maxAt = max(maxAt, at)
				hold(eng.Process(ev))
			}
			replayed += uint64(len(b.events))
			s.metrics.replayed.Add(float64(len(b.events)))
			u.state.Set(fmt.Sprintf("replaying events %s: %d so far", what, replayed))
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return replayEnd{}, fmt.Errorf("replay: %w", err)
	}
	if !reading && plan.snap == nil {
		// Nothing in the window: what the consumer had delivered is
		// history before it.
		base = upTo
	}
	if snap := plan.snap; snap != nil && snap.pendingMaxAt > math.MinInt64 {
		// The restored buffer's events have waited longer than MaxHold
		// since they arrived; those not dated ahead of the clock go too.
		maxAt = max(maxAt, min(snap.pendingMaxAt, time.Now().UnixNano()))
	}
	if maxAt > math.MinInt64 {
		hold(eng.AdvanceTo(time.Unix(0, maxAt)))
	}
	if n := len(held) - maxReplayAlerts; n > 0 {
		dropped += n
		held = held[n:]
	}
	if dropped > 0 {
		s.metrics.replaySkipped.Add(float64(dropped))
		u.logger.Warn("replay held too many unsent alerts; the oldest were not checked for loss",
			slog.Int("dropped", dropped), slog.Int("kept", len(held)))
	}
	lost := plan.lost
	skipped := 0
	for _, a := range held {
		if a.Time.UnixNano() >= cutoff {
			lost = append(lost, a)
		} else {
			skipped++
			s.metrics.replaySkipped.Inc()
		}
	}
	if err := s.publish(wctx, u, lost, nil); err != nil {
		return replayEnd{}, err
	}
	st := eng.Stats()
	u.logger.Info("replay done", slog.Uint64("events", replayed), slog.Duration("duration", time.Since(began)),
		slog.Int64("suppressed", st.Suppressed+int64(skipped)), slog.Int("published", len(lost)),
		slog.Int("state_keys", st.StateKeys))
	return replayEnd{last: last, base: base, seen: seen}, nil
}
