package natsconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

const (
	// LayoutQueue is the queue group of the layout responders: one of
	// them answers each request.
	LayoutQueue = "sessionmon-layout"
	// layoutCacheTTL is how long a responder reuses the events stream's
	// partition count before it reads the stream's configuration again.
	layoutCacheTTL = 5 * time.Second
	// layoutLookupTimeout bounds one read of the stream's configuration.
	layoutLookupTimeout = 2 * time.Second
)

// ServeLayout answers publishers' layout requests on schemas.LayoutSubject
// (queue group LayoutQueue) with the events stream's partition count, read
// from its subject transform at most every 5s, and the batch framing
// versions sessionmon reads: none when the stream's MaxMsgSize is below
// MinBatchMsgSize. It answers nothing while it cannot read the stream, so
// the SDK keeps sending one message per event. A request whose
// reply subject is a JetStream, system or sessionmon subject gets no
// answer: apps may send requests, and an answer must not become a command.
// It serves until stop is called or ctx ends; stop may be called more than
// once.
func ServeLayout(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, logger *slog.Logger) (stop func(), err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &layoutResponder{ctx: ctx, nc: nc, stream: NewEventStreamCache(js, layoutCacheTTL), log: logger.With("component", "layout")}
	sub, err := nc.QueueSubscribe(schemas.LayoutSubject, LayoutQueue, r.answer)
	if err != nil {
		return nil, fmt.Errorf("serve layout: subscribe %s: %w", schemas.LayoutSubject, err)
	}
	var once sync.Once
	unsubscribe := func() {
		once.Do(func() {
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
				r.log.Warn("layout unsubscribe", slog.Any("error", err))
			}
		})
	}
	after := context.AfterFunc(ctx, unsubscribe)
	return func() {
		after()
		unsubscribe()
	}, nil
}

// layoutResponder answers layout requests; NATS calls answer from one
// goroutine per subscription.
type layoutResponder struct {
	ctx    context.Context
	nc     *nats.Conn
	stream *EventStreamCache
	log    *slog.Logger

	mu     sync.Mutex
	info   *jetstream.StreamInfo // what body was made from
	body   []byte                // the last answer
	warned bool                  // the stream's message size was logged
}

// MinBatchMsgSize is the smallest MaxMsgSize of the events stream that
// holds every batched message: the largest body and room for its headers.
// ServeLayout offers batching only when the stream's limit (or the
// server's maximum payload, when the stream sets none) is at least this.
const MinBatchMsgSize = schemas.MaxBatchBytes + 1<<10

// holdsBatches reports whether a stream whose MaxMsgSize is limit, on a
// server whose maximum payload is payload, stores the largest batched
// message.
func holdsBatches(limit int32, payload int64) bool {
	if limit <= 0 {
		return payload >= MinBatchMsgSize
	}
	return int(limit) >= MinBatchMsgSize && payload >= MinBatchMsgSize
}

func (r *layoutResponder) answer(m *nats.Msg) {
	if !replyAllowed(m.Reply) {
		r.log.Debug("layout request refused: reply subject not an inbox")
		return
	}
	body, err := r.layout()
	if err != nil {
		r.log.Warn("layout request unanswered", slog.Any("error", err))
		return
	}
	if err := m.Respond(body); err != nil {
		r.log.Debug("layout answer", slog.Any("error", err))
	}
}

// layout returns the JSON answer, made again when the cached stream
// information changed.
func (r *layoutResponder) layout() ([]byte, error) {
	ctx, cancel := context.WithTimeout(r.ctx, layoutLookupTimeout)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if info == r.info {
		return r.body, nil
	}
	l := schemas.Layout{Partitions: StreamPartitions(info), Batch: []string{}}
	if holdsBatches(info.Config.MaxMsgSize, r.nc.MaxPayload()) {
		l.Batch = append(l.Batch, schemas.BatchVersion)
	} else if !r.warned {
		r.warned = true
		r.log.Warn("events stream too small for batched messages: publishers send one message per event",
			slog.Int("max_msg_size", int(info.Config.MaxMsgSize)), slog.Int("needed", MinBatchMsgSize))
	}
	body, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("layout: encode: %w", err)
	}
	r.info, r.body = info, body
	return body, nil
}

// replyAllowed reports whether a layout request's reply subject may be
// answered: a literal inbox subject (NATS's _INBOX., the apps' _APPS_INBOX.
// and _INBOX_<app>.), never the JetStream or system API ($...) or
// sessionmon's own subjects.
func replyAllowed(reply string) bool {
	if !strings.HasPrefix(reply, "_INBOX") && !strings.HasPrefix(reply, "_APPS_INBOX") {
		return false
	}
	for _, tok := range strings.Split(reply, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
	}
	return !strings.ContainsAny(reply, " \t\r\n")
}
