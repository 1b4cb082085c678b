package drill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// App is the app name of drill traffic.
const App = "drill"

// drillKey pseudonymizes drill traffic. It is public: drill pseudonyms
// protect nothing and identify no one.
var drillKey = []byte("sessionmon-drill-key: public, synthetic traffic only")

// pacingTick is how often the publisher tops up to its target count.
const pacingTick = 10 * time.Millisecond

// Publisher sends steady drill traffic through the SDK and remembers, by
// event id, what JetStream acknowledged and what failed, so that a
// scenario can reconcile them with what was stored. Every fixEvery-th
// event is a session.started that keeps its pre-login session id, which
// raises exactly one session_fixation alert; the rest are
// session.activity events that raise none. A Publisher is safe for
// concurrent use.
type Publisher struct {
	pz       *sdk.Pseudonymizer
	prefix   string
	fixEvery int
	users    int

	// mu guards the fields below.
	mu       sync.Mutex
	client   *sdk.Client
	seq      int
	events   map[string]*sdk.Event // every event handed to the SDK
	fixation map[string]bool       // ids of events that must raise an alert
	failed   map[string]error      // events that failed for good, by id
}

// NewPublisher returns a publisher on nc. prefix makes its event ids and
// pseudonyms unique to a scenario.
func NewPublisher(nc *nats.Conn, prefix string, fixEvery int, opts ...sdk.Option) (*Publisher, error) {
	pz, err := sdk.NewPseudonymizer("drill", drillKey)
	if err != nil {
		return nil, fmt.Errorf("drill pseudonymizer: %w", err)
	}
	if fixEvery < 1 {
		return nil, fmt.Errorf("fixEvery: must be at least 1 (got %d)", fixEvery)
	}
	p := &Publisher{
		pz: pz, prefix: prefix, fixEvery: fixEvery, users: 2000,
		events: map[string]*sdk.Event{}, fixation: map[string]bool{}, failed: map[string]error{},
	}
	opts = append([]sdk.Option{sdk.WithApp(App), sdk.WithAsyncBuffer(8192), sdk.WithBlockOnFull(10 * time.Second),
		sdk.WithOnError(p.onError)}, opts...)
	c, err := sdk.NewClient(nc, opts...)
	if err != nil {
		return nil, fmt.Errorf("drill client: %w", err)
	}
	p.client = c
	return p, nil
}

func (p *Publisher) onError(id string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed[id] = err
}

// Event makes the next drill event at time at, and whether it must raise
// an alert.
func (p *Publisher) Event(at time.Time) (*sdk.Event, bool) {
	p.mu.Lock()
	n := p.seq
	p.seq++
	p.mu.Unlock()
	id := fmt.Sprintf("%s-%07d", p.prefix, n)
	if n%p.fixEvery == p.fixEvery-1 {
		// A session of its own, so no other detector sees it twice.
		sid := p.pz.Session(id)
		return &sdk.Event{ID: id, Type: schemas.SessionStarted, Time: at,
			Subject: p.pz.Subject(fmt.Sprintf("%s-fix-%d", p.prefix, n)), Session: sid, PreviousSession: sid}, true
	}
	u := n % p.users
	return &sdk.Event{ID: id, Type: schemas.SessionActivity, Time: at,
		Subject: p.pz.Subject(fmt.Sprintf("%s-user-%d", p.prefix, u)),
		Session: p.pz.Session(fmt.Sprintf("%s-session-%d", p.prefix, u))}, false
}

// PublishAsync hands ev to the SDK's async buffer and records it; an
// event the SDK refuses at once is recorded as failed.
func (p *Publisher) PublishAsync(ctx context.Context, ev *sdk.Event, alerts bool) error {
	p.mu.Lock()
	p.events[ev.ID] = ev
	if alerts {
		p.fixation[ev.ID] = true
	}
	c := p.client
	p.mu.Unlock()
	err := c.PublishAsync(ctx, ev)
	if err != nil {
		p.onError(ev.ID, err)
	}
	return err
}

// Run publishes at rate events per second for d (or until ctx ends),
// paced against the clock so that a stall is caught up and the rate holds
// on average. A refused event is recorded and does not stop the run,
// unless the context ended.
func (p *Publisher) Run(ctx context.Context, rate int, d time.Duration) error {
	if rate < 1 {
		return fmt.Errorf("rate: must be at least 1 event/s (got %d)", rate)
	}
	start := time.Now()
	t := time.NewTicker(pacingTick)
	defer t.Stop()
	sent := 0
	for {
		elapsed := time.Since(start)
		if elapsed >= d {
			return nil
		}
		target := int(float64(rate) * elapsed.Seconds())
		for ; sent < target; sent++ {
			ev, alerts := p.Event(time.Now())
			if err := p.PublishAsync(ctx, ev, alerts); err != nil && ctx.Err() != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close flushes and closes the SDK client: after it every event is either
// acknowledged or recorded as failed.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	err := c.Close(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Close reports the async failures too, which onError recorded.
	if err != nil && len(p.failed) == 0 {
		return fmt.Errorf("close drill client: %w", err)
	}
	return nil
}

// Republish publishes the failed events again, synchronously, with their
// own ids (so an attempt that did get through is not stored twice), on a
// new client on nc. It stops at the first error.
func (p *Publisher) Republish(ctx context.Context, nc *nats.Conn) (int, error) {
	c, err := sdk.NewClient(nc, sdk.WithApp(App))
	if err != nil {
		return 0, fmt.Errorf("drill client: %w", err)
	}
	defer c.Close(ctx)
	p.mu.Lock()
	var retry []*sdk.Event
	for id := range p.failed {
		retry = append(retry, p.events[id])
	}
	p.mu.Unlock()
	for i, ev := range retry {
		if err := c.Publish(ctx, ev); err != nil {
			return i, fmt.Errorf("republish event %s: %w", ev.ID, err)
		}
		p.mu.Lock()
		delete(p.failed, ev.ID)
		p.mu.Unlock()
	}
	return len(retry), nil
}

// Counts is what a publisher sent.
type Counts struct {
	// Sent counts events handed to the SDK.
	Sent int
	// Published counts events JetStream acknowledged: Sent minus Failed.
	Published int
	// Failed counts events that failed for good.
	Failed int
	// AlertsExpected counts acknowledged events that must raise an alert.
	AlertsExpected int
	// Errors counts the failures by message (at most a few kinds).
	Errors map[string]int
}

// Counts returns the publisher's tallies; call it after Close.
func (p *Publisher) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := Counts{Sent: len(p.events), Failed: len(p.failed), Errors: map[string]int{}}
	c.Published = c.Sent - c.Failed
	for id := range p.fixation {
		if _, failed := p.failed[id]; !failed {
			c.AlertsExpected++
		}
	}
	for _, err := range p.failed {
		c.Errors[errorKind(err)]++
	}
	return c
}

// errorKind shortens an SDK error to its cause, without the event id.
func errorKind(err error) string {
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return err.Error()
}

// Pseudonyms returns the subject pseudonyms of up to n of the events
// sent, to check that no log holds them. (Session pseudonyms are left
// out: detect logs an alert's session_id, as STYLE.md allows.)
func (p *Publisher) Pseudonyms(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, ev := range p.events {
		if len(out) >= n {
			break
		}
		out = append(out, ev.Subject.String())
	}
	return out
}
