package detect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

var update = flag.Bool("update", false, "rewrite detect/testdata/*/alerts.golden.json from the current output")

// engNow is the wall clock of the tests: after every scenario event.
var engNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func engClock() time.Time { return engNow }

// TestScenarios runs every detect/testdata/<case>/events.ndjson through
// RunOffline with the default configuration, or the case's config.yaml,
// and compares the alerts (all but detected_at) with alerts.golden.json.
func TestScenarios(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		cfg := scenarioConfig(t, dir)
		in, err := os.ReadFile(path)
		require.NoError(t, err)
		var out bytes.Buffer
		stats, err := RunOffline(t.Context(), bytes.NewReader(in), &out, cfg, engClock, scenarioOptions(t, dir)...)
		require.NoError(t, err)
		require.Zero(t, stats.Invalid, "invalid lines: %+v", stats.InvalidLines)
		require.Zero(t, stats.Engine.Late, "scenario events must be within the lateness window")
		got := goldenForm(t, out.Bytes())
		if strings.HasSuffix(filepath.Base(dir), "_benign") {
			require.JSONEq(t, "[]", string(got), "a benign scenario raises no alert")
		}

		golden := filepath.Join(dir, "alerts.golden.json")
		if *update {
			require.NoError(t, os.WriteFile(golden, got, 0o644))
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err, "no golden file: run go test ./detect -run TestScenarios -update")
		require.JSONEq(t, string(want), string(got))
	})
}

// TestScenariosShuffled delivers every scenario's events out of order, each
// late by less than the lateness window, and expects the same alerts as in
// order: the reorder buffer hides the disorder.
func TestScenariosShuffled(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		cfg := scenarioConfig(t, dir)
		events := loadEvents(t, path)
		sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time.Time) })
		opts := scenarioOptions(t, dir)
		want := runEngine(t, cfg, events, opts...)
		for seed := range uint64(5) {
			got := runEngine(t, cfg, shuffleWithin(events, cfg.Lateness.D()*9/10, seed), opts...)
			require.Equal(t, alertIDs(want), alertIDs(got), "seed %d", seed)
			require.Equal(t, want, got, "seed %d", seed)
		}
	})
}

// forEachScenario runs fn, in a parallel subtest named after the folder,
// for every scenario folder detect/testdata/<case>/ (its events.ndjson is
// path).
func forEachScenario(t *testing.T, fn func(t *testing.T, dir, path string)) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*", "events.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			fn(t, dir, path)
		})
	}
}

func scenarioConfig(t *testing.T, dir string) Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if os.IsNotExist(err) {
		return DefaultConfig()
	}
	require.NoError(t, err)
	cfg, err := ParseConfig(b)
	require.NoError(t, err)
	return cfg
}

// goldenForm turns NDJSON alerts into the golden file's form: an indented
// JSON array without detected_at.
func goldenForm(t *testing.T, ndjson []byte) []byte {
	t.Helper()
	alerts := []map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	for sc.Scan() {
		var a map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &a))
		require.Contains(t, a, "detected_at")
		delete(a, "detected_at")
		alerts = append(alerts, a)
	}
	require.NoError(t, sc.Err())
	b, err := json.MarshalIndent(alerts, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
}

func loadEvents(t *testing.T, path string) []*schemas.Event {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []*schemas.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, schemas.MaxEventBytes+1)
	for sc.Scan() {
		e, err := schemas.Decode(sc.Bytes(), engNow)
		require.NoError(t, err)
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

func runEngine(t *testing.T, cfg Config, events []*schemas.Event, opts ...Option) []schemas.Alert {
	t.Helper()
	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	eng, err := NewEngine(cfg, dets, append([]Option{WithClock(engClock)}, opts...)...)
	require.NoError(t, err)
	var out []schemas.Alert
	for _, e := range events {
		out = append(out, eng.Process(e)...)
	}
	return append(out, eng.Flush()...)
}

// shuffleWithin reorders events as if each arrived up to maxDelay after
// its event time: no event arrives after one that is maxDelay newer.
func shuffleWithin(events []*schemas.Event, maxDelay time.Duration, seed uint64) []*schemas.Event {
	rnd := rand.New(rand.NewPCG(seed, 42))
	type arrival struct {
		at time.Time
		e  *schemas.Event
	}
	arr := make([]arrival, len(events))
	for i, e := range events {
		var d time.Duration
		if maxDelay > 0 {
			d = time.Duration(rnd.Int64N(int64(maxDelay)))
		}
		arr[i] = arrival{e.Time.Add(d), e}
	}
	sort.SliceStable(arr, func(i, j int) bool { return arr[i].at.Before(arr[j].at) })
	out := make([]*schemas.Event, len(arr))
	for i, a := range arr {
		out[i] = a.e
	}
	return out
}

func alertIDs(alerts []schemas.Alert) []string {
	ids := make([]string, len(alerts))
	for i, a := range alerts {
		ids[i] = a.Detector + "/" + a.ID
	}
	return ids
}

// fakeDetector records what it observes and alerts on every event of type
// on, keyed by the event's subject.
type fakeDetector struct {
	name     string
	on       schemas.Type
	seen     []string
	expired  []time.Time
	forgot   []string
	stateLen int
}

func (f *fakeDetector) Name() string { return f.name }

func (f *fakeDetector) Observe(e *schemas.Event, emit Emit) {
	f.seen = append(f.seen, e.ID)
	if e.Type == f.on {
		emit(schemas.Alert{Time: e.Time, App: e.App, Subject: e.Subject, Title: "t", Summary: "s", Evidence: []string{e.ID}})
	}
}

func (f *fakeDetector) Expire(wm time.Time)   { f.expired = append(f.expired, wm) }
func (f *fakeDetector) Forget(subject string) { f.forgot = append(f.forgot, subject) }
func (f *fakeDetector) StateKeys() int        { return f.stateLen }

func engEv(id string, at time.Duration, opts ...func(*schemas.Event)) *schemas.Event {
	e := &schemas.Event{
		ID: id, SchemaVersion: 1, Type: schemas.SessionActivity,
		Time: schemas.At(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).Add(at)),
		App:  "shop", Subject: "k1:AbCdEfGhIjKlMnOpQrStUv", Session: "k1:ses-Tk5Rf6Sh7Ro8Ta9Te0X",
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func engType(t schemas.Type) func(*schemas.Event) { return func(e *schemas.Event) { e.Type = t } }
func engSubject(s string) func(*schemas.Event)    { return func(e *schemas.Event) { e.Subject = s } }

func TestEngineReorders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		lateness time.Duration
		arrive   []*schemas.Event
		seen     []string // order the detector saw
		late     int64
	}{
		{
			name:     "reorder/disorder within lateness is undone",
			lateness: 5 * time.Second,
			arrive:   []*schemas.Event{engEv("b", 2*time.Second), engEv("a", time.Second), engEv("d", 6*time.Second), engEv("c", 3*time.Second)},
			seen:     []string{"a", "b", "c", "d"},
		},
		{
			name:     "reorder/equal times are released by id",
			lateness: time.Second,
			arrive:   []*schemas.Event{engEv("z", 0), engEv("y", 0), engEv("x", 0)},
			seen:     []string{"x", "y", "z"},
		},
		{
			name:     "reorder/an event later than the window is processed at once and counted",
			lateness: 2 * time.Second,
			arrive:   []*schemas.Event{engEv("a", 0), engEv("b", 10*time.Second), engEv("c", 11*time.Second), engEv("late", time.Second)},
			seen:     []string{"a", "late", "b", "c"},
			late:     1,
		},
		{
			name:     "reorder/zero lateness passes events straight through",
			lateness: 0,
			arrive:   []*schemas.Event{engEv("b", 2*time.Second), engEv("a", time.Second)},
			seen:     []string{"b", "a"},
			late:     1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Lateness = Duration(tc.lateness)
			f := &fakeDetector{name: "fake"}
			eng, err := NewEngine(cfg, []Detector{f}, WithClock(engClock))
			require.NoError(t, err)
			for _, e := range tc.arrive {
				eng.Process(e)
			}
			eng.Flush()
			require.Equal(t, tc.seen, f.seen)
			require.Equal(t, tc.late, eng.Stats().Late)
			require.Equal(t, int64(len(tc.arrive)), eng.Stats().Events)
		})
	}
}

func TestEngineHoldsEventsForTheLatenessWindow(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Lateness = Duration(5 * time.Second)
	f := &fakeDetector{name: "fake"}
	eng, err := NewEngine(cfg, []Detector{f}, WithClock(engClock))
	require.NoError(t, err)
	eng.Process(engEv("a", 0))
	eng.Process(engEv("b", 4*time.Second))
	require.Empty(t, f.seen, "nothing is older than the newest time minus lateness yet")
	require.Equal(t, 2, eng.Stats().Pending)
	eng.Process(engEv("c", 5*time.Second))
	require.Equal(t, []string{"a"}, f.seen)
	eng.Process(engEv("d", 20*time.Second))
	require.Equal(t, []string{"a", "b", "c"}, f.seen)
	require.Equal(t, time.Date(2026, 11, 20, 9, 0, 15, 0, time.UTC), eng.Watermark())
}

func TestEngineMaxPendingReleasesEarly(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Lateness = Duration(time.Minute)
	cfg.MaxPending = 2
	f := &fakeDetector{name: "fake"}
	eng, err := NewEngine(cfg, []Detector{f}, WithClock(engClock))
	require.NoError(t, err)
	for i, id := range []string{"a", "b", "c", "d"} {
		eng.Process(engEv(id, time.Duration(i)*time.Second))
	}
	require.Equal(t, []string{"a", "b"}, f.seen)
	require.Equal(t, 2, eng.Stats().Pending)
}

func TestEngineDedup(t *testing.T) {
	t.Parallel()
	// brute_force's default dedup window is 1h: use its name so the
	// engine finds those settings.
	const other = "k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L"
	for _, tc := range []struct {
		name   string
		events []*schemas.Event
		want   []string // triggering event of each alert
		dups   int64
	}{
		{
			name:   "dedup/repeat within the window is dropped",
			events: []*schemas.Event{engEv("a", 0), engEv("b", 30*time.Minute)},
			want:   []string{"a"},
			dups:   1,
		},
		{
			name:   "dedup/repeat after the window alerts again",
			events: []*schemas.Event{engEv("a", 0), engEv("b", 30*time.Minute), engEv("c", 61*time.Minute)},
			want:   []string{"a", "c"},
			dups:   1,
		},
		{
			name:   "dedup/other keys are separate findings",
			events: []*schemas.Event{engEv("a", 0), engEv("b", time.Minute, engSubject(other))},
			want:   []string{"a", "b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeDetector{name: "brute_force", on: schemas.SessionActivity}
			eng, err := NewEngine(DefaultConfig(), []Detector{f}, WithClock(engClock))
			require.NoError(t, err)
			var got []schemas.Alert
			for _, e := range tc.events {
				got = append(got, eng.Process(e)...)
			}
			got = append(got, eng.Flush()...)
			var triggers []string
			for _, a := range got {
				triggers = append(triggers, a.Evidence[0])
				require.Equal(t, schemas.AlertID("brute_force", a.Subject, a.Evidence[0]), a.ID)
				require.Equal(t, schemas.SeverityMedium, a.Severity, "filled from the detector's settings")
				require.Equal(t, "brute_force", a.Detector)
				require.Equal(t, engNow, a.DetectedAt.Time)
			}
			require.Equal(t, tc.want, triggers)
			require.Equal(t, tc.dups, eng.Stats().Duplicates)
			require.Equal(t, int64(len(tc.want)), eng.Stats().Alerts)
		})
	}
}

func TestEngineReplayDoesNotReAlert(t *testing.T) {
	t.Parallel()
	evs := loadEvents(t, filepath.Join("testdata", "out_of_order", "events.ndjson"))
	first := runEngine(t, DefaultConfig(), evs)
	require.NotEmpty(t, first)
	sent := map[string]bool{}
	for _, a := range first {
		sent[a.ID] = true
	}

	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{name: "replay/already alerted ids", opt: WithAlreadyAlerted(func(id string) bool { return sent[id] })},
		{name: "replay/cut-off after the last alert", opt: WithAlertCutoff(first[len(first)-1].Time.Add(time.Millisecond))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dets, err := NewDetectors(DefaultConfig())
			require.NoError(t, err)
			eng, err := NewEngine(DefaultConfig(), dets, WithClock(engClock), tc.opt)
			require.NoError(t, err)
			var again []schemas.Alert
			for _, e := range evs {
				again = append(again, eng.Process(e)...)
			}
			again = append(again, eng.Flush()...)
			require.Empty(t, again)
			require.Equal(t, int64(len(first)), eng.Stats().Suppressed)

			// The rebuilt state still knows the subject's location and
			// the dedup table its findings: a repeat within the dedup
			// window stays quiet, a new finding alerts.
			repeat := engEv("new-1", 9*time.Second, engType(schemas.LoginSucceeded), func(e *schemas.Event) {
				// A third device, in Sydney 1 s after the first was in Berlin.
				lat, lon := -33.8688, 151.2093
				e.Session = ""
				e.Client = &schemas.Client{Device: "k1:dev-Wq2Er3Ty4Ui5Op6As7D", Lat: &lat, Lon: &lon, AccuracyKM: 20}
			})
			dups := eng.Stats().Duplicates
			require.Empty(t, append(eng.Process(repeat), eng.Flush()...))
			require.Equal(t, dups+1, eng.Stats().Duplicates)
		})
	}
}

func TestEngineForget(t *testing.T) {
	t.Parallel()
	const other = "k1:Zx9Yw8Vu7Ts6Rq5Po4Nm3L"
	f := &fakeDetector{name: "brute_force", on: schemas.SessionActivity}
	eng, err := NewEngine(DefaultConfig(), []Detector{f}, WithClock(engClock))
	require.NoError(t, err)
	eng.Process(engEv("a", 0))
	require.Len(t, eng.Flush(), 1)
	eng.Process(engEv("b", time.Second))
	eng.Process(engEv("c", 2*time.Second, engSubject(other)))
	eng.Forget("k1:AbCdEfGhIjKlMnOpQrStUv")
	require.Equal(t, []string{"k1:AbCdEfGhIjKlMnOpQrStUv"}, f.forgot)
	require.Equal(t, 1, eng.Stats().Pending, "the subject's pending event is dropped")
	// The dedup entry is gone too: the subject alerts again at once.
	got := append(eng.Process(engEv("d", 3*time.Second)), eng.Flush()...)
	require.Equal(t, []string{"a", "c", "d"}, f.seen)
	require.Len(t, got, 2)
}

func TestEngineExpiresInEventTime(t *testing.T) {
	t.Parallel()
	f := &fakeDetector{name: "fake", stateLen: 3}
	eng, err := NewEngine(DefaultConfig(), []Detector{f}, WithClock(engClock))
	require.NoError(t, err)
	for i := range 10 {
		eng.Process(engEv("e"+string(rune('a'+i)), time.Duration(i)*2*time.Minute))
	}
	require.NotEmpty(t, f.expired)
	require.True(t, slices.IsSortedFunc(f.expired, func(a, b time.Time) int { return a.Compare(b) }))
	for _, wm := range f.expired {
		require.False(t, wm.After(eng.Watermark()))
	}
	require.Equal(t, 3, eng.Stats().StateKeys)
}

func TestAlertIDIsDeterministic(t *testing.T) {
	t.Parallel()
	a := schemas.AlertID("impossible_travel", "k1:AbCdEfGhIjKlMnOpQrStUv", "ev-1")
	require.Len(t, a, 32)
	require.Equal(t, a, schemas.AlertID("impossible_travel", "k1:AbCdEfGhIjKlMnOpQrStUv", "ev-1"))
	require.NotEqual(t, a, schemas.AlertID("impossible_travel", "k1:AbCdEfGhIjKlMnOpQrStUv", "ev-2"))
	require.NotEqual(t, schemas.AlertID("a", "bc", "d"), schemas.AlertID("ab", "c", "d"))
}

func TestEngineRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Lateness = Duration(-time.Second)
	_, err := NewEngine(cfg, nil)
	require.ErrorContains(t, err, "lateness")
}

// Synthetic traffic for the benchmarks: many subjects, each logging in
// (one in eight after a typo), starting a session, getting tokens, working
// for a while with one refresh-token rotation, and, unless active, logging
// out. Every event has a client block with a location.

// benchCities are the homes of benchmark subjects.
var benchCities = []struct {
	country  string
	city     string
	lat, lon float64
	asn      uint32
	prefix   int // second octet of 100.<prefix>.x.0/24
}{
	{"DE", "Berlin", 52.52, 13.405, 3320, 64},
	{"FR", "Paris", 48.8566, 2.3522, 3215, 65},
	{"GB", "London", 51.5072, -0.1276, 2856, 66},
	{"ES", "Madrid", 40.4168, -3.7038, 3352, 67},
	{"US", "New York", 40.7128, -74.006, 7922, 68},
	{"BR", "Sao Paulo", -23.5505, -46.6333, 28573, 69},
	{"AU", "Sydney", -33.8688, 151.2093, 1221, 70},
	{"JP", "Tokyo", 35.6762, 139.6503, 2516, 71},
	{"NG", "Lagos", 6.5244, 3.3792, 29465, 72},
	{"IN", "Mumbai", 19.076, 72.8777, 55836, 73},
}

// benchStep is one event of the synthetic traffic, before it is built.
type benchStep struct {
	at   int64 // Unix ms
	subj int32
	kind uint8
	n    uint8 // rotation or activity number
}

// Step kinds.
const (
	stepFailed uint8 = iota
	stepLogin
	stepStarted
	stepAccess
	stepRefresh
	stepActivity
	stepUsed
	stepRefreshed
	stepRevoked
	stepEnded
)

var benchBase = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC).UnixMilli()

// benchPlan returns the steps of subjects subjects whose logins spread over
// span, in arrival order: event time plus up to two seconds of delivery
// delay.
func benchPlan(subjects int, span time.Duration, active bool, seed uint64) []benchStep {
	rnd := rand.New(rand.NewPCG(seed, 7))
	var steps []benchStep
	for i := range int32(subjects) {
		t := benchBase + rnd.Int64N(span.Milliseconds())
		add := func(at int64, kind, n uint8) { steps = append(steps, benchStep{at: at, subj: i, kind: kind, n: n}) }
		if i%8 == 0 {
			add(t-20_000, stepFailed, 0)
		}
		add(t, stepLogin, 0)
		add(t+20, stepStarted, 0)
		add(t+40, stepAccess, 0)
		add(t+41, stepRefresh, 0)
		work := 4 + rnd.IntN(8)
		rot := uint8(0)
		for j := range work {
			t += 30_000 + rnd.Int64N(90_000)
			if j == work/2 {
				rot++
				add(t, stepRefreshed, rot)
				add(t+1, stepAccess, rot)
				t += 1000
			}
			add(t, stepActivity, uint8(j))
			add(t+5, stepUsed, rot)
		}
		if !active {
			add(t+60_000, stepRevoked, rot)
			add(t+60_001, stepEnded, 0)
		}
	}
	delay := make([]int64, len(steps))
	for i := range delay {
		delay[i] = steps[i].at + rnd.Int64N(2000)
	}
	idx := make([]int, len(steps))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return delay[idx[a]] < delay[idx[b]] })
	out := make([]benchStep, len(steps))
	for i, j := range idx {
		out[i] = steps[j]
	}
	return out
}

// benchEvent builds the event of step s with fresh strings, as a decoder
// would.
func benchEvent(s benchStep, seq int) *schemas.Event {
	c := benchCities[int(s.subj)%len(benchCities)]
	subj := fmt.Sprintf("k1:s%021d", s.subj)
	// The jitter depends on the network (subj%256 of the city's prefix),
	// so that a GeoIP database can hold every location (BenchmarkOffline).
	lat, lon := c.lat+float64(s.subj%256%97)*0.001, c.lon+float64(s.subj%256%89)*0.001
	e := &schemas.Event{
		ID:            fmt.Sprintf("ev%016x%08x", s.subj, seq),
		SchemaVersion: 1,
		Time:          schemas.At(time.UnixMilli(s.at).UTC()),
		App:           "shop",
		Subject:       subj,
		Client: &schemas.Client{
			Device:     fmt.Sprintf("k1:d%021d", s.subj),
			IPPrefix:   fmt.Sprintf("100.%d.%d.0/24", c.prefix, s.subj%256),
			ASN:        c.asn,
			Country:    c.country,
			City:       c.city,
			Lat:        &lat,
			Lon:        &lon,
			AccuracyKM: 20,
			UserAgent:  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		},
	}
	session := fmt.Sprintf("k1:x%021d", s.subj)
	access := func(n uint8) string { return fmt.Sprintf("k1:a%018d%03d", s.subj, n) }
	refresh := func(n uint8) string { return fmt.Sprintf("k1:r%018d%03d", s.subj, n) }
	family := fmt.Sprintf("k1:f%021d", s.subj)
	exp := func(d time.Duration) *schemas.Time { t := schemas.At(time.UnixMilli(s.at).Add(d).UTC()); return &t }
	switch s.kind {
	case stepFailed:
		e.Type, e.Reason = schemas.LoginFailed, "bad_password"
	case stepLogin:
		e.Type = schemas.LoginSucceeded
	case stepStarted:
		e.Type, e.Session = schemas.SessionStarted, session
		e.PreviousSession = fmt.Sprintf("k1:p%021d", s.subj)
		e.Policy = &schemas.Policy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 28800, ReauthWindowS: 300}
	case stepAccess:
		e.Type, e.Session = schemas.TokenIssued, session
		e.Token = &schemas.Token{ID: access(s.n), Kind: schemas.TokenAccess, IssuedAt: &e.Time, ExpiresAt: exp(time.Hour)}
	case stepRefresh:
		e.Type, e.Session = schemas.TokenIssued, session
		e.Token = &schemas.Token{ID: refresh(s.n), Kind: schemas.TokenRefresh, Family: family, IssuedAt: &e.Time, ExpiresAt: exp(14 * 24 * time.Hour)}
	case stepActivity:
		e.Type, e.Session = schemas.SessionActivity, session
	case stepUsed:
		e.Type, e.Session = schemas.TokenUsed, session
		e.Token = &schemas.Token{ID: access(s.n), Kind: schemas.TokenAccess}
	case stepRefreshed:
		e.Type, e.Session = schemas.TokenRefreshed, session
		e.Token = &schemas.Token{ID: refresh(s.n), Kind: schemas.TokenRefresh, Family: family, Parent: refresh(s.n - 1), IssuedAt: &e.Time, ExpiresAt: exp(14 * 24 * time.Hour)}
	case stepRevoked:
		e.Type, e.Session = schemas.TokenRevoked, session
		e.Token = &schemas.Token{ID: refresh(s.n), Kind: schemas.TokenRefresh, Family: family}
	case stepEnded:
		e.Type, e.Session, e.Reason = schemas.SessionEnded, session, "logout"
	}
	return e
}

func benchEvents(subjects int, span time.Duration, active bool) []*schemas.Event {
	plan := benchPlan(subjects, span, active, 1)
	out := make([]*schemas.Event, len(plan))
	for i, s := range plan {
		out[i] = benchEvent(s, i)
	}
	return out
}

// BenchmarkEngine runs every detector with the default configuration over
// mixed traffic of 20000 subjects in one hour (about 560000 events,
// delivered up to two seconds out of order) and reports events per second.
func BenchmarkEngine(b *testing.B) {
	events := benchEvents(20_000, time.Hour, false)
	cfg := DefaultConfig()
	b.ReportAllocs()
	b.ResetTimer()
	var alerts int
	cpu := cpuTime()
	for b.Loop() {
		dets, err := NewDetectors(cfg)
		require.NoError(b, err)
		eng, err := NewEngine(cfg, dets, WithClock(engClock))
		require.NoError(b, err)
		for _, e := range events {
			alerts += len(eng.Process(e))
		}
		alerts += len(eng.Flush())
	}
	reportThroughput(b, int64(len(events))*int64(b.N), cpuTime()-cpu)
	b.ReportMetric(float64(alerts)/float64(b.N), "alerts/op")
}

// reportThroughput reports events per wall second and per CPU second of
// the whole process (all goroutines and the garbage collector): the
// latter is the one-core figure, and holds on a busy machine too.
func reportThroughput(b *testing.B, events int64, cpu time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}

// cpuTime returns the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestStateBytesPerActiveSubject measures the heap the engine and every
// detector hold per active subject (logged in, with a session, tokens and a
// rotation, not logged out), with events built with fresh strings as a
// decoder makes them. The target is under 1 KiB.
func TestStateBytesPerActiveSubject(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 100000 subjects")
	}
	const subjects = 100_000
	plan := benchPlan(subjects, 30*time.Minute, true, 2)
	cfg := DefaultConfig()
	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	eng, err := NewEngine(cfg, dets, WithClock(engClock))
	require.NoError(t, err)
	before := heapAlloc()
	for i, s := range plan {
		eng.Process(benchEvent(s, i))
	}
	eng.Flush()
	after := heapAlloc()
	perSubject := float64(after-before) / subjects
	t.Logf("state: %.0f bytes per active subject (%d subjects, %d events, %d state keys)",
		perSubject, subjects, len(plan), eng.Stats().StateKeys)
	require.Less(t, perSubject, 1024.0)
	runtime.KeepAlive(eng)
	runtime.KeepAlive(plan)
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Helpers for the detector tests: events are built with engEv and options.

// engPlace is a client location for tests.
type engPlace struct {
	device, prefix, country, city string
	asn                           uint32
	lat, lon, acc                 float64
	noGeo                         bool
}

var (
	engBerlin    = engPlace{prefix: "198.18.7.0/24", asn: 3320, country: "DE", city: "Berlin", lat: 52.52, lon: 13.405, acc: 20}
	engPotsdam   = engPlace{prefix: "198.18.9.0/24", asn: 3320, country: "DE", city: "Potsdam", lat: 52.3906, lon: 13.0645, acc: 20}
	engFrankfurt = engPlace{prefix: "198.18.40.0/24", asn: 3320, country: "DE", city: "Frankfurt", lat: 50.1109, lon: 8.6821, acc: 20}
	engNewYork   = engPlace{prefix: "203.0.113.0/24", asn: 7922, country: "US", city: "New York", lat: 40.7128, lon: -74.006, acc: 20}
	engSydney    = engPlace{prefix: "100.65.12.0/24", asn: 1221, country: "AU", city: "Sydney", lat: -33.8688, lon: 151.2093, acc: 20}
	engMobile    = engPlace{prefix: "100.72.3.0/24", asn: 3209, country: "DE", city: "Berlin", lat: 52.5, lon: 13.39, acc: 50}
	engSaoPaulo  = engPlace{prefix: "100.64.5.0/24", asn: 28573, country: "BR", city: "Sao Paulo", lat: -23.5505, lon: -46.6333, acc: 20}
)

// Device pseudonyms of tests.
const (
	engDevA = "k1:dev-Lp0Ok9Ij8Uh7Yg6Tf5R"
	engDevB = "k1:dev-Qa1Ws2Ed3Rf4Tg5Yh6U"
	engDevC = "k1:dev-Mn8Bv7Cx6Zl5Kj4Hg3F"
)

func (p engPlace) on(device string) engPlace { p.device = device; return p }

func (p engPlace) withoutGeo() engPlace { p.noGeo = true; return p }

// engFrom sets the event's client to p.
func engFrom(p engPlace) func(*schemas.Event) {
	return func(e *schemas.Event) {
		c := &schemas.Client{Device: p.device, IPPrefix: p.prefix, ASN: p.asn, Country: p.country, City: p.city, AccuracyKM: p.acc}
		if !p.noGeo {
			lat, lon := p.lat, p.lon
			c.Lat, c.Lon = &lat, &lon
		}
		e.Client = c
	}
}

// engToken sets the event's token.
func engToken(id, kind, family, parent string) func(*schemas.Event) {
	return func(e *schemas.Event) { e.Token = &schemas.Token{ID: id, Kind: kind, Family: family, Parent: parent} }
}

func engSession(s string) func(*schemas.Event) { return func(e *schemas.Event) { e.Session = s } }

// engObserve runs d over events directly (no engine) and returns its alerts.
func engObserve(d Detector, events ...*schemas.Event) []schemas.Alert {
	var out []schemas.Alert
	for _, e := range events {
		d.Observe(e, func(a schemas.Alert) { out = append(out, a) })
	}
	return out
}

// engFindings summarises alerts for table tests: the key and evidence.
type engFinding struct {
	Key      string
	Evidence []string
}

func engFindings(alerts []schemas.Alert) []engFinding {
	var out []engFinding
	for _, a := range alerts {
		out = append(out, engFinding{Key: a.Key, Evidence: a.Evidence})
	}
	return out
}

func TestEngineReplayWindow(t *testing.T) {
	t.Parallel()
	dets, err := NewDetectors(DefaultConfig())
	require.NoError(t, err)
	eng, err := NewEngine(DefaultConfig(), dets)
	require.NoError(t, err)
	require.Equal(t, 14*24*time.Hour, eng.ReplayWindow(), "token_reuse's refresh_window is the longest")

	cfg, err := ParseConfig([]byte("detectors: {token_reuse: {enabled: false}, impossible_travel: {shared_egress: {ttl: 24h}}, session_hijack: {dedup_window: 48h}}"))
	require.NoError(t, err)
	dets, err = NewDetectors(cfg)
	require.NoError(t, err)
	eng, err = NewEngine(cfg, dets)
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, eng.ReplayWindow(), "a dedup window counts too")
}

func TestEngineFutureEventsDoNotMoveTheWatermark(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 9, 0, 2, 0, time.UTC)
	f := &fakeDetector{name: "fake"}
	eng, err := NewEngine(DefaultConfig(), []Detector{f}, WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	eng.Process(engEv("a", 0))
	eng.Process(engEv("skewed", 20*time.Hour)) // an app whose clock is 20 hours ahead
	eng.Process(engEv("b", time.Second))
	eng.Process(engEv("c", 2*time.Second))
	require.Equal(t, int64(1), eng.Stats().Future)
	require.Zero(t, eng.Stats().Late, "the skewed event did not make the others late")
	require.Empty(t, f.seen, "the watermark stays behind the clock")
	eng.Flush()
	require.Equal(t, []string{"a", "b", "c", "skewed"}, f.seen)
}
