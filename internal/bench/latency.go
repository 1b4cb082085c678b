package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// LatencyConfig shapes a MeasureLatency run.
type LatencyConfig struct {
	// Rate is the total events per second published, background and
	// attacks together (for example 10000).
	Rate int
	// Duration is how long events are published.
	Duration time.Duration
	// AttackRate is how many attack events per second are among them,
	// each of which must raise one alert (default 20).
	AttackRate int
	// Settle is how long to wait for the last alerts after publishing
	// stopped (default 5s).
	Settle time.Duration
	// Seed varies the pseudonyms, so that runs against one stream do not
	// see each other's traffic as repeats (0: from the clock).
	Seed int64
}

// LatencyReport is what MeasureLatency measured. Latencies run from just
// before the SDK publishes an attack event to the arrival of its alert on
// SESSIONMON_ALERTS at a subscriber.
type LatencyReport struct {
	// Events were published and acknowledged by the stream, attacks
	// included, at EventsPerSecond on average.
	Events          int64   `json:"events"`
	EventsPerSecond float64 `json:"events_per_second"`
	// Attacks were published; Alerts of them arrived; Missing did not
	// within Settle.
	Attacks int `json:"attacks"`
	Alerts  int `json:"alerts"`
	Missing int `json:"missing"`
	// OtherAlerts arrived for the background traffic (demo attacks).
	OtherAlerts int `json:"other_alerts"`
	// Latency percentiles over the attacks' alerts.
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// String summarises r in one line.
func (r LatencyReport) String() string {
	return fmt.Sprintf("%d events at %.0f/s; %d of %d attack alerts (%d missing); publish-to-alert p50 %s, p95 %s, p99 %s, max %s; %d other alerts",
		r.Events, r.EventsPerSecond, r.Alerts, r.Attacks, r.Missing,
		r.P50.Round(time.Millisecond/10), r.P95.Round(time.Millisecond/10), r.P99.Round(time.Millisecond/10),
		r.Max.Round(time.Millisecond/10), r.OtherAlerts)
}

// sessionFixation is the detector the attack events of MeasureLatency
// trigger (detect's session_fixation).
const sessionFixation = "session_fixation"

// latencyTick is how often the background publisher tops its count up to
// the rate.
const latencyTick = 5 * time.Millisecond

// MeasureLatency measures publish-to-alert latency of a running
// detect.Service under steady load. It publishes, through the SDK on js's
// connection, demo traffic (internal/demo: logins, token rotations,
// activity, logouts and a few attacks, each event re-dated to the moment it
// is published, so that event time follows wall time as in production) at
// cfg.Rate events per second for cfg.Duration, and among it cfg.AttackRate
// session_fixation events per second, each for a fresh session, each of
// which raises exactly one alert. It subscribes to the alerts subjects and
// reports the latency percentiles of those alerts. It needs the
// SESSIONMON_EVENTS stream and a Service consuming it; it neither starts
// nor stops one.
func MeasureLatency(ctx context.Context, js jetstream.JetStream, cfg LatencyConfig) (LatencyReport, error) {
	if cfg.AttackRate <= 0 {
		cfg.AttackRate = 20
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 5 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if cfg.Rate <= cfg.AttackRate || cfg.Duration <= 0 {
		return LatencyReport{}, fmt.Errorf("measure latency: rate (%d) must exceed the attack rate (%d) and the duration must be positive", cfg.Rate, cfg.AttackRate)
	}
	nc := js.Conn()
	rec := &latencyRecorder{sent: map[string]time.Time{}, got: map[string]time.Duration{}}
	sub, err := nc.Subscribe(schemas.AlertSubjects, rec.alert)
	if err != nil {
		return LatencyReport{}, fmt.Errorf("subscribe to alerts: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		return LatencyReport{}, fmt.Errorf("subscribe to alerts: %w", err)
	}

	background, err := sdk.NewClient(nc, sdk.WithApp(demo.App), sdk.WithAsyncBuffer(65536), sdk.WithAsyncWindow(4096),
		sdk.WithBlockOnFull(time.Minute))
	if err != nil {
		return LatencyReport{}, err
	}
	attacker, err := sdk.NewClient(nc, sdk.WithApp(demo.App))
	if err != nil {
		return LatencyReport{}, err
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	pctx, stop := context.WithDeadline(gctx, start.Add(cfg.Duration))
	defer stop()
	chunks := make(chan []sdk.Event, 1)
	g.Go(func() error { return generateTraffic(pctx, cfg, chunks) })
	g.Go(func() error {
		return publishBackground(pctx, background, float64(cfg.Rate-cfg.AttackRate), chunks)
	})
	g.Go(func() error { return publishAttacks(pctx, attacker, cfg, rec) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return LatencyReport{}, err
	}
	if err := ctx.Err(); err != nil {
		return LatencyReport{}, err
	}
	closeCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := background.Close(closeCtx); err != nil {
		return LatencyReport{}, fmt.Errorf("close background publisher: %w", err)
	}
	if err := attacker.Close(closeCtx); err != nil {
		return LatencyReport{}, fmt.Errorf("close attack publisher: %w", err)
	}
	elapsed := time.Since(start)
	published := int64(background.Stats().Published + attacker.Stats().Published)

	if err := rec.wait(ctx, cfg.Settle); err != nil {
		return LatencyReport{}, err
	}
	r := rec.report()
	r.Events = published
	r.EventsPerSecond = float64(published) / elapsed.Seconds()
	return r, nil
}

// generateTraffic sends passes of demo traffic, each about five seconds of
// it at cfg.Rate, each with its own pseudonymization key so that its
// sessions and tokens are new. It stops when ctx ends.
func generateTraffic(ctx context.Context, cfg LatencyConfig, out chan<- []sdk.Event) error {
	users := max(cfg.Rate/5, 50) // about 25 events a user: 5 s a pass
	for pass := int64(0); ; pass++ {
		p, err := sdk.NewPseudonymizer(demo.KeyID, fmt.Appendf(nil, "%s/latency/%d/%d", demo.Key, cfg.Seed, pass))
		if err != nil {
			return fmt.Errorf("latency pseudonymizer: %w", err)
		}
		events := demo.Generate(p, demo.Options{Users: users, Seed: cfg.Seed + pass, End: time.Now()})
		select {
		case out <- events:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publishBackground publishes the generated traffic at rate events per
// second, each event re-dated to now (its token and authentication times
// moved with it).
func publishBackground(ctx context.Context, c *sdk.Client, rate float64, chunks <-chan []sdk.Event) error {
	t := time.NewTicker(latencyTick)
	defer t.Stop()
	start := time.Now()
	var (
		sent   int64
		events []sdk.Event
	)
	for {
		due := int64(rate * time.Since(start).Seconds())
		for ; sent < due; sent++ {
			if len(events) == 0 {
				select {
				case events = <-chunks:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			e := &events[0]
			events = events[1:]
			redate(e, time.Now())
			if err := c.PublishAsync(ctx, e); err != nil {
				return fmt.Errorf("publish background event: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// redate moves e and the times it carries to now, keeping their offsets.
func redate(e *sdk.Event, now time.Time) {
	d := now.Sub(e.Time)
	e.Time = now
	if e.Token != nil {
		tok := *e.Token
		if !tok.IssuedAt.IsZero() {
			tok.IssuedAt = tok.IssuedAt.Add(d)
		}
		if !tok.ExpiresAt.IsZero() {
			tok.ExpiresAt = tok.ExpiresAt.Add(d)
		}
		e.Token = &tok
	}
	if e.Auth != nil && !e.Auth.LastAuthAt.IsZero() {
		a := *e.Auth
		a.LastAuthAt = a.LastAuthAt.Add(d)
		e.Auth = &a
	}
}

// publishAttacks publishes cfg.AttackRate session_fixation events a second,
// synchronously, and records when each was sent.
func publishAttacks(ctx context.Context, c *sdk.Client, cfg LatencyConfig, rec *latencyRecorder) error {
	p, err := sdk.NewPseudonymizer(demo.KeyID, fmt.Appendf(nil, "%s/latency-attacks/%d", demo.Key, cfg.Seed))
	if err != nil {
		return fmt.Errorf("latency pseudonymizer: %w", err)
	}
	t := time.NewTicker(time.Second / time.Duration(cfg.AttackRate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		session := p.Session(fmt.Sprintf("latency-attack-%d", i))
		e := sdk.Event{Type: schemas.SessionStarted, Subject: p.Subject(fmt.Sprintf("latency-victim-%d", i)),
			Session: session, PreviousSession: session}
		rec.send(e.Subject.String())
		e.Time = time.Now()
		if err := c.Publish(ctx, &e); err != nil {
			if ctx.Err() != nil {
				rec.unsend(e.Subject.String())
				return ctx.Err()
			}
			return fmt.Errorf("publish attack event: %w", err)
		}
	}
}

// latencyRecorder matches attack events with their alerts.
type latencyRecorder struct {
	mu    sync.Mutex
	sent  map[string]time.Time     // attack subject: when it was published
	got   map[string]time.Duration // attack subject: latency
	other int
}

func (r *latencyRecorder) send(subject string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[subject] = time.Now()
}

func (r *latencyRecorder) unsend(subject string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sent, subject)
}

// alert is the alerts subscription's handler (run by the NATS client).
func (r *latencyRecorder) alert(m *nats.Msg) {
	now := time.Now()
	var a struct {
		Detector string `json:"detector"`
		Subject  string `json:"subject"`
	}
	if json.Unmarshal(m.Data, &a) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sent, ok := r.sent[a.Subject]
	if !ok || a.Detector != sessionFixation {
		r.other++
		return
	}
	if _, dup := r.got[a.Subject]; !dup {
		r.got[a.Subject] = now.Sub(sent)
	}
}

func (r *latencyRecorder) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got) == len(r.sent)
}

// wait returns once every attack's alert arrived or settle has passed.
func (r *latencyRecorder) wait(ctx context.Context, settle time.Duration) error {
	deadline := time.NewTimer(settle)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for !r.complete() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return nil
		case <-poll.C:
		}
	}
	return nil
}

func (r *latencyRecorder) report() LatencyReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := make([]time.Duration, 0, len(r.got))
	for _, d := range r.got {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	rep := LatencyReport{Attacks: len(r.sent), Alerts: len(lat), Missing: len(r.sent) - len(lat), OtherAlerts: r.other}
	if len(lat) > 0 {
		pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		rep.P50, rep.P95, rep.P99, rep.Max = pct(0.50), pct(0.95), pct(0.99), lat[len(lat)-1]
	}
	return rep
}
