package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Client publishes an app's events to sessionmon's JetStream stream. Create
// it once at startup with Connect (or NewClient to reuse a connection),
// share it, and Close it at shutdown. All methods are safe for concurrent
// use.
//
// Every event is validated against schema v1 before anything is sent, is
// published on EventSubject(app, subject) with its ID as the
// Nats-Msg-Id header (so the stream stores it once, however often it is
// retried), or by PublishAsync in a batched message (WithBatching) whose
// message id is made of its events' IDs, and counts as published only once
// the stream acknowledged it.
type Client struct {
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	opts    options
	log     *slog.Logger

	// asyncOpts are the options of every async publish: retries are the
	// SDK's (with backoff), and a full window stalls the sender for at most
	// maxStall at a time, so that it notices Close promptly.
	asyncOpts []jetstream.PublishOpt

	// queue is the async buffer (capacity opts.asyncBuffer), filled by
	// PublishAsync and drained by the sender goroutine.
	queue chan *outMsg
	// inflight holds sent events awaiting their acknowledgement, in send
	// order (capacity opts.asyncWindow), from the sender to the acker.
	inflight chan flight
	// retryMu guards retryList: events to send again, at most the window
	// plus one since only sent events fail. retryReady (capacity 1) wakes
	// the sender.
	retryMu    sync.Mutex
	retryList  []*outMsg
	retryReady chan struct{}

	// closing is closed when Close starts, so PublishAsync calls blocked on
	// a full buffer give up; stop is closed when the drain ends, to end the
	// sender and the acker (counted by wg).
	closing chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	// sendMu is read-held by every push into queue and write-held by Close
	// once the goroutines ended, so no event can be pushed after Close
	// took what was left in the buffer.
	sendMu  sync.RWMutex
	stopped bool

	// mu guards closed and track.
	mu     sync.Mutex
	closed bool
	track  tracker

	accepted   atomic.Uint64
	published  atomic.Uint64
	duplicates atomic.Uint64
	failed     atomic.Uint64
	pending    atomic.Int64

	// partitions is the events stream's partition count from the last
	// layout answer that allowed batching, or noBatching.
	partitions atomic.Int64
}

// maxStall is the longest the sender waits at once for room in the window.
const maxStall = 100 * time.Millisecond

// outMsg is one accepted event on its way to the stream, or a batched
// message of several (events set). A batched message is retried as a
// whole, with the same body and message id.
type outMsg struct {
	id      string // the event's ID, or the batch's message id
	subject string // the event's subject (pseudonym); empty for a batch
	data    []byte // the event's JSON; nil for a batch
	// msg is the NATS message: a batch's, or an event's once it is sent
	// alone (natsMsg); an event sent in a batch never needs its own.
	msg       *nats.Msg
	gen       uint64 // tracker generation; unused for a batch
	attempts  int    // retries so far
	notBefore time.Time
	events    []*outMsg // the events of a batched message, nil for one event
}

// natsMsg returns m's NATS message, making an event's on first use.
func (c *Client) natsMsg(m *outMsg) *nats.Msg {
	if m.msg == nil {
		m.msg = &nats.Msg{
			Subject: EventSubject(c.opts.app, m.subject),
			Header:  nats.Header{jetstream.MsgIDHeader: []string{m.id}},
			Data:    m.data,
		}
	}
	return m.msg
}

// flight is a sent async message, its acknowledgement future and the time
// after which the acker stops waiting for it (WithPublishTimeout).
type flight struct {
	m        *outMsg
	paf      jetstream.PubAckFuture
	deadline time.Time
}

// Stats counts the events of a Client since it was created. The counters
// are read one by one, not as one snapshot; Accepted is never below
// Published plus Failed. While PublishAsync waits for room, its event is
// counted in Accepted and Pending, and uncounted if it is refused.
type Stats struct {
	// Accepted counts events taken by Publish, PublishJSON or PublishAsync
	// (valid, and for PublishAsync, buffered).
	Accepted uint64
	// Published counts events the stream acknowledged, including Duplicates.
	Published uint64
	// Duplicates counts acknowledgements for an ID the stream already held
	// (a retry of an event that got through, or an app publishing an ID twice).
	Duplicates uint64
	// Failed counts accepted events that were not stored: errors returned
	// by Publish and PublishJSON, and async failures reported by Flush and Close.
	Failed uint64
	// Pending counts accepted events not yet published or failed:
	// buffered, in flight or waiting to be retried.
	Pending int64
}

// Connect connects to the NATS server(s) at url (comma-separated for a
// cluster) and returns a Client that owns the connection: Close closes it.
// WithApp is required. The connection reconnects forever; events published
// while it is down are retried per WithRetry.
func Connect(url string, opts ...Option) (*Client, error) {
	o, err := build(opts, true)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	log := o.logger
	natsOpts := []nats.Option{
		nats.Name("sessionmon-sdk " + o.app),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", slog.String("server", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats async error", slog.Any("error", err))
		}),
	}
	nc, err := nats.Connect(url, append(natsOpts, o.natsOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	c, err := newClient(nc, o, true)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// NewClient returns a Client that publishes over nc, a connection the
// caller owns and closes after Close. Connection options (WithToken,
// WithTLS, ...) are rejected here. WithApp is required.
func NewClient(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, fmt.Errorf("new client: %w: nil *nats.Conn", ErrInvalidOption)
	}
	o, err := build(opts, false)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	return newClient(nc, o, false)
}

func newClient(nc *nats.Conn, o options, own bool) (*Client, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(o.asyncWindow),
	)
	if err != nil {
		return nil, fmt.Errorf("new client: jetstream: %w", err)
	}
	c := &Client{
		nc:      nc,
		ownConn: own,
		js:      js,
		opts:    o,
		log:     o.logger,
		asyncOpts: []jetstream.PublishOpt{
			jetstream.WithRetryAttempts(0),
			jetstream.WithStallWait(min(o.publishTimeout, maxStall)),
		},
		queue:      make(chan *outMsg, o.asyncBuffer),
		inflight:   make(chan flight, o.asyncWindow),
		retryReady: make(chan struct{}, 1),
		closing:    make(chan struct{}),
		stop:       make(chan struct{}),
		track:      newTracker(),
	}
	c.partitions.Store(noBatching)
	c.wg.Add(2)
	go c.runSender()
	go c.runAcker()
	if o.batch {
		c.wg.Add(1)
		go c.runLayout()
	}
	return c, nil
}

// App returns the app name the Client writes into every event.
func (c *Client) App() string { return c.opts.app }

// Flush waits until every event accepted before the call is published or
// failed for good, or ctx ends. It returns a *PublishError counting the
// async events that failed since the previous Flush or Close reported
// failures, nil when none did, or ctx's error (failures then stay for the
// next report).
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	done := c.track.barrier()
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		c.mu.Lock()
		c.track.forget(done)
		c.mu.Unlock()
		return fmt.Errorf("flush: %w", ctx.Err())
	}
	return c.report()
}

// Close stops accepting events (every later call returns ErrClosed, and
// PublishAsync calls waiting for room give up with ErrClosed), waits until
// every accepted event is published or failed for good, ends the SDK's
// goroutines and closes the connection if Connect opened it. If ctx ends
// first, the events still held are counted as failed with ErrNotConfirmed.
// It returns the failures not yet reported as a *PublishError, joined with
// ctx's error if the drain was cut short. A second Close returns ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	done := c.track.barrier()
	c.mu.Unlock()
	close(c.closing)

	var drainErr error
	select {
	case <-done:
	case <-ctx.Done():
		drainErr = fmt.Errorf("close: drain: %w", ctx.Err())
	}
	close(c.stop)
	c.wg.Wait()
	c.sendMu.Lock()
	c.stopped = true
	c.sendMu.Unlock()
	c.failLeftovers()

	if c.ownConn {
		c.nc.Close()
	} else {
		c.js.CleanupPublisher()
	}
	return errors.Join(drainErr, c.report())
}

// Stats returns the Client's counters.
func (c *Client) Stats() Stats {
	// Read the outcomes before Accepted: an event is accepted before it is
	// resolved, so Accepted is never below Published+Failed.
	s := Stats{
		Pending:    c.pending.Load(),
		Published:  c.published.Load(),
		Duplicates: c.duplicates.Load(),
		Failed:     c.failed.Load(),
	}
	s.Accepted = c.accepted.Load()
	return s
}

// begin counts a publishing call in the tracker, or refuses it once closed.
func (c *Client) begin() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	return c.track.add(), nil
}

// end uncounts what begin counted.
func (c *Client) end(gen uint64) {
	c.mu.Lock()
	c.track.done(gen)
	c.mu.Unlock()
}

func (c *Client) report() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.track.report()
}
