package drill

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/internal/testutil/repo"
	"github.com/sessionmon/sessionmon/schemas"
)

// EnvBinary names a prebuilt sessionmon binary to drill instead of
// building one.
const EnvBinary = "DRILL_SESSIONMON_BIN"

// binary is the sessionmon binary under test, built by TestMain.
var binary string

// results are the rows of this run, printed by TestMain.
var (
	resultsMu sync.Mutex
	results   []Result
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run() // every drill skips itself
		}
		bin, cleanup, err := buildBinary()
		if err != nil {
			fmt.Fprintln(os.Stderr, "drill:", err)
			return 1
		}
		defer cleanup()
		binary = bin
		code := m.Run()
		if len(results) > 0 {
			fmt.Println()
			_ = TextTable(os.Stdout, results)
		}
		return code
	}()
	os.Exit(code)
}

// buildBinary builds cmd/sessionmon into a temporary directory, or returns
// the binary named by EnvBinary.
func buildBinary() (string, func(), error) {
	if bin := os.Getenv(EnvBinary); bin != "" {
		return bin, func() {}, nil
	}
	root, err := repo.Root()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "sessionmon-drill-")
	if err != nil {
		return "", nil, fmt.Errorf("temp dir: %w", err)
	}
	bin := filepath.Join(dir, "sessionmon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sessionmon")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build ./cmd/sessionmon: %w\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// skipShort skips a drill under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault drill: runs the real binary for tens of seconds; not in -short")
	}
}

// drill is one scenario's world: a restartable NATS server, a ClickHouse
// database, webhook receivers and the pipeline processes.
type drill struct {
	t     *testing.T
	start time.Time
	dir   string
	nats  *NATS
	nc    *nats.Conn
	js    jetstream.JetStream
	dsn   string
	store *chstore.Store
	pipe  *Pipeline
	hooks []Webhook
}

// drillOptions vary a scenario's world.
type drillOptions struct {
	// dsn is a ClickHouse database of the test's own; empty: chtest's.
	dsn string
	// streamMaxBytes limits the events stream (0: unlimited).
	streamMaxBytes int64
	// webhooks default to one healthy receiver named "siem".
	webhooks []Webhook
}

func newDrill(t *testing.T, o drillOptions) *drill {
	t.Helper()
	d := &drill{t: t, start: time.Now(), dir: t.TempDir()}
	n, err := StartNATS(filepath.Join(d.dir, "nats"))
	require.NoError(t, err)
	t.Cleanup(n.Stop)
	d.nats = n
	d.nc, err = nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(d.nc.Close)
	d.js, err = jetstream.New(d.nc)
	require.NoError(t, err)
	sc := natsconn.DefaultStreamConfig
	sc.MaxBytes = o.streamMaxBytes
	_, err = natsconn.EnsureEventStream(t.Context(), d.js, sc)
	require.NoError(t, err)

	if o.dsn == "" {
		d.store, d.dsn = chtest.New(t), chtest.DSN(t)
	} else {
		d.dsn = o.dsn
	}
	if o.webhooks == nil {
		o.webhooks = []Webhook{{Name: "siem", Receiver: d.receiver()}}
	}
	d.hooks = o.webhooks
	d.pipe, err = NewPipeline(PipelineConfig{Bin: binary, Dir: d.dir, NATSURL: n.URL(), DSN: d.dsn, Webhooks: o.webhooks})
	require.NoError(t, err)
	require.NoError(t, d.pipe.Start())
	t.Cleanup(func() {
		if err := d.pipe.Stop(); err != nil {
			t.Errorf("stop pipeline: %v", err)
		}
	})
	if d.store == nil {
		// The pipeline made and migrated the database.
		poll.CheckFor(t, time.Minute, 200*time.Millisecond, func() error { return d.pipe.Ready(t.Context()) })
		d.store = chtest.Open(t, d.dsn)
	}
	d.waitReady(time.Minute)
	return d
}

// receiver starts a webhook receiver for the test.
func (d *drill) receiver() *Receiver {
	d.t.Helper()
	r, err := NewReceiver()
	require.NoError(d.t, err)
	d.t.Cleanup(r.Close)
	return r
}

func (d *drill) waitReady(total time.Duration) {
	d.t.Helper()
	poll.CheckFor(d.t, total, 200*time.Millisecond, func() error { return d.pipe.Ready(d.t.Context()) })
}

// publisher returns a drill publisher on the test's connection.
func (d *drill) publisher(fixEvery int) *Publisher {
	d.t.Helper()
	p, err := NewPublisher(d.nc, strings.ReplaceAll(d.t.Name(), "/", "_"), fixEvery)
	require.NoError(d.t, err)
	return p
}

// after runs fn after delay, in the background; the returned wait returns
// fn's error.
func after(delay time.Duration, fn func() error) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		time.Sleep(delay)
		done <- fn()
	}()
	return func() error { return <-done }
}

// counts is what the pipeline holds at one moment.
type counts struct {
	stored, rows, dead int
}

func (d *drill) counts(ctx context.Context) (counts, error) {
	rows, distinct, err := d.store.CountEventsByID(ctx)
	if err != nil {
		return counts{}, err
	}
	c := counts{stored: int(distinct), rows: int(rows)}
	s, err := d.js.Stream(ctx, schemas.DLQStream)
	if err != nil {
		return c, fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return c, fmt.Errorf("dead-letter stream info: %w", err)
	}
	c.dead = int(info.State.Msgs)
	return c, nil
}

// undeliverable counts the alerts webhook gave up on.
func (d *drill) undeliverable(ctx context.Context, webhook string) (int, error) {
	kv, err := d.js.KeyValue(ctx, schemas.UndeliverableBucket)
	if err != nil {
		return 0, fmt.Errorf("bucket %s: %w", schemas.UndeliverableBucket, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("bucket %s keys: %w", schemas.UndeliverableBucket, err)
	}
	n := 0
	for k := range keys.Keys() {
		if strings.HasPrefix(k, webhook+".") {
			n++
		}
	}
	return n, nil
}

// expect is what a scenario must end with.
type expect struct {
	published, dead, alerts int
	// receivers must each deliver alerts distinct alerts.
	receivers []*Receiver
}

// reconcile waits (up to total) until the stored events, dead letters and
// delivered alerts reach what was published, then records the scenario's
// row and fails the test on any mismatch: a count short (lost), over
// (doubled), a row counted twice, or a forged signature.
func (d *drill) reconcile(scenario string, refused int, e expect, total time.Duration, note string) Result {
	d.t.Helper()
	ctx := d.t.Context()
	r := Result{Scenario: scenario, Published: e.published, Refused: refused, AlertsExpected: e.alerts, Note: note}
	check := func() error {
		c, err := d.counts(ctx)
		if err != nil {
			return err
		}
		r.Stored, r.DeadLettered = c.stored, c.dead
		var errs []error
		// Every acknowledged event is either stored once or dead-lettered.
		if c.stored != e.published-e.dead {
			errs = append(errs, fmt.Errorf("stored %d of %d published events (%d to the dead-letter stream)", c.stored, e.published, e.dead))
		}
		if c.rows != c.stored {
			errs = append(errs, fmt.Errorf("queries see %d rows for %d event ids", c.rows, c.stored))
		}
		if c.dead != e.dead {
			errs = append(errs, fmt.Errorf("dead letters: %d, want %d", c.dead, e.dead))
		}
		r.AlertsDelivered = e.alerts
		for i, rc := range e.receivers {
			st := rc.Stats()
			r.AlertsDelivered = min(r.AlertsDelivered, st.Distinct)
			if st.Distinct != e.alerts {
				errs = append(errs, fmt.Errorf("receiver %d: %d of %d alerts delivered", i+1, st.Distinct, e.alerts))
			}
			if st.BadSignatures > 0 {
				errs = append(errs, fmt.Errorf("receiver %d: %d deliveries with a bad signature", i+1, st.BadSignatures))
			}
		}
		return errors.Join(errs...)
	}
	deadline := time.Now().Add(total)
	err := check()
	for err != nil && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		err = check()
	}
	if err == nil {
		// Nothing more may arrive: a late duplicate would show here.
		time.Sleep(2 * time.Second)
		err = check()
	}
	r.Duration = time.Since(d.start)
	r.Outcome = "pass"
	if err != nil {
		r.Outcome = "FAIL: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	resultsMu.Lock()
	results = append(results, r)
	resultsMu.Unlock()
	require.NoError(d.t, Record(r))
	d.t.Logf("%s: published %d, refused %d, stored %d, dead-lettered %d, alerts %d/%d: %s",
		scenario, r.Published, r.Refused, r.Stored, r.DeadLettered, r.AlertsDelivered, r.AlertsExpected, r.Outcome)
	require.NoError(d.t, err, scenario)
	return r
}

// receivers returns the receivers of the webhooks, in order.
func (d *drill) receivers() []*Receiver {
	out := make([]*Receiver, len(d.hooks))
	for i, h := range d.hooks {
		out[i] = h.Receiver
	}
	return out
}

// checkLogs fails the test when a process log holds a pseudonym in clear
// or a webhook secret.
func (d *drill) checkLogs(p *Publisher) {
	d.t.Helper()
	secrets := p.Pseudonyms(50)
	for _, h := range d.hooks {
		secrets = append(secrets, h.Receiver.Secret())
	}
	require.NoError(d.t, d.pipe.CheckLogs(secrets...))
}

// describeErrors summarizes a publisher's failures for a note.
func describeErrors(errs map[string]int) string {
	var parts []string
	for kind, n := range errs {
		parts = append(parts, fmt.Sprintf("%d× %q", n, kind))
	}
	return strings.Join(parts, ", ")
}

// TestDrillKill9 kills -9 every sessionmon process during steady load,
// restarts them, then kills the ingest worker alone: nothing is lost,
// nothing is counted twice, every alert reaches the webhook.
func TestDrillKill9(t *testing.T) {
	skipShort(t)
	d := newDrill(t, drillOptions{})
	hook := d.pipe.Notify
	require.NotNil(t, hook)
	p := d.publisher(400)
	const rate, run = 2000, 25 * time.Second

	chaos := after(6*time.Second, func() error {
		if err := d.pipe.Kill(); err != nil {
			return err
		}
		// Apps keep publishing while sessionmon is down: NATS holds it.
		time.Sleep(4 * time.Second)
		if err := d.pipe.Start(); err != nil {
			return err
		}
		time.Sleep(6 * time.Second)
		if err := d.pipe.Ingest.Kill(); err != nil {
			return err
		}
		return d.pipe.Ingest.Start()
	})
	require.NoError(t, p.Run(t.Context(), rate, run))
	require.NoError(t, chaos())
	require.NoError(t, p.Close(t.Context()))
	c := p.Counts()
	require.Zero(t, c.Failed, "NATS stayed up: every publish is acknowledged (%s)", describeErrors(c.Errors))
	d.waitReady(time.Minute)

	redelivered, err := d.pipe.Ingest.Metric(t.Context(), "sessionmon_ingest_redelivered_total")
	require.NoError(t, err)
	d.reconcile("kill -9 of ingest+detect+notify, then of ingest", c.Failed,
		expect{published: c.Published, alerts: c.AlertsExpected, receivers: d.receivers()}, 2*time.Minute,
		fmt.Sprintf("%d ev/s for %s; the restarted ingest got %.0f events again", rate, run, redelivered))
	d.checkLogs(p)
}

// TestDrillWebhookHang delivers alerts to three webhooks: one healthy, one
// that hangs (never answers) and then recovers, one that hangs for good.
// The healthy one gets every alert while the others hang; the recovered
// one gets every alert after; the dead one's alerts are all recorded as
// undeliverable once give_up_after has passed.
func TestDrillWebhookHang(t *testing.T) {
	skipShort(t)
	healthy, hung, dead := newReceiver(t), newReceiver(t), newReceiver(t)
	hung.Hang()
	dead.Hang()
	const giveUp = 15 * time.Second
	d := newDrill(t, drillOptions{webhooks: []Webhook{
		{Name: "siem", Receiver: healthy},
		{Name: "hung", Receiver: hung, Timeout: time.Second},
		{Name: "dead", Receiver: dead, Timeout: time.Second, GiveUpAfter: giveUp},
	}})
	p := d.publisher(100)
	const rate, run = 1000, 10 * time.Second
	require.NoError(t, p.Run(t.Context(), rate, run))
	require.NoError(t, p.Close(t.Context()))
	c := p.Counts()
	require.Zero(t, c.Failed, describeErrors(c.Errors))

	// The healthy webhook is not held up by the hanging ones.
	poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		if n := healthy.Stats().Distinct; n != c.AlertsExpected {
			return fmt.Errorf("healthy webhook: %d of %d alerts while the others hang", n, c.AlertsExpected)
		}
		return nil
	})
	require.Positive(t, hung.Stats().Hung, "the hung webhook was tried")
	require.Zero(t, hung.Stats().Distinct)
	hung.Recover()

	var undeliverable int
	poll.CheckFor(t, giveUp+time.Minute, 500*time.Millisecond, func() error {
		n, err := d.undeliverable(t.Context(), "dead")
		undeliverable = n
		if err != nil {
			return err
		}
		if n != c.AlertsExpected {
			return fmt.Errorf("dead webhook: %d of %d alerts recorded undeliverable", n, c.AlertsExpected)
		}
		return nil
	})
	require.Zero(t, dead.Stats().Distinct)
	d.reconcile("webhook hangs (one recovers, one never does)", c.Failed,
		expect{published: c.Published, alerts: c.AlertsExpected, receivers: []*Receiver{healthy, hung}}, time.Minute,
		fmt.Sprintf("healthy and recovered webhooks got every alert; the dead one's %d alerts were recorded undeliverable after give_up_after %s; %d requests hung",
			undeliverable, giveUp, hung.Stats().Hung+dead.Stats().Hung))
	d.checkLogs(p)
}

func newReceiver(t *testing.T) *Receiver {
	t.Helper()
	r, err := NewReceiver()
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r
}

// TestDrillClockSkew sends events dated in the past and the future. The
// SDK refuses events more than schemas.MaxFutureSkew ahead before they
// leave the app; a publisher that bypasses the SDK gets them acknowledged
// by JetStream and ingest sends them to the dead-letter stream. Events up
// to 30 days old and up to 23 h ahead are stored. Alerts of past events
// come at once; those of future events wait in the detectors' reorder
// buffer until their time (detect.Stats.Future), so they are not expected
// within the drill.
func TestDrillClockSkew(t *testing.T) {
	skipShort(t)
	d := newDrill(t, drillOptions{})
	p := d.publisher(1)
	ctx := t.Context()
	now := time.Now()
	past := []time.Duration{-30 * 24 * time.Hour, -25 * time.Hour, -2 * time.Hour, -time.Minute}
	future := []time.Duration{10 * time.Minute, 23 * time.Hour}
	const perSkew = 20
	alerts := 0
	for _, skew := range append(past, future...) {
		for range perSkew {
			ev, fix := p.Event(now.Add(skew))
			require.True(t, fix)
			require.NoError(t, p.PublishAsync(ctx, ev, skew < 0))
			if skew < 0 {
				alerts++
			}
		}
	}
	// The SDK refuses what is too far ahead, before sending.
	ev, _ := p.Event(now.Add(48 * time.Hour))
	err := p.client.PublishAsync(ctx, ev)
	require.ErrorContains(t, err, "time: must not be more than")
	require.NoError(t, p.Close(ctx))
	c := p.Counts()
	require.Zero(t, c.Failed, describeErrors(c.Errors))

	// An app that bypasses the SDK: JetStream acknowledges, ingest refuses.
	const raw = 15
	for i := range raw {
		data := fmt.Sprintf(`{"id":"%s-raw-%d","schema_version":1,"type":"session.activity","time":%q,"app":%q,"subject":"drill:raw%d","session":"drill:rawsession%d"}`,
			strings.ReplaceAll(t.Name(), "/", "_"), i, now.Add(48*time.Hour).UTC().Format(time.RFC3339Nano), App, i, i)
		_, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: schemas.EventSubject(App, fmt.Sprintf("drill:raw%d", i)),
			Header: nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprintf("raw-%d", i)}}, Data: []byte(data)})
		require.NoError(t, err)
	}
	d.reconcile("clock skew: -30d … +23h via SDK, +48h raw", 1,
		expect{published: c.Published + raw, dead: raw, alerts: alerts, receivers: d.receivers()}, time.Minute,
		fmt.Sprintf("%d events per skew %v; +48h: refused by the SDK (1) and dead-lettered when sent raw (%d); the %d future-dated session_fixation alerts wait for their time",
			perSkew, append(past, future...), raw, perSkew*len(future)))
	d.checkLogs(p)
}
