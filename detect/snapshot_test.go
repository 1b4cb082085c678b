package detect

import (
	"crypto/sha256"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// fillValue sets every field of the struct v points to, recursively, to a
// random non-zero value, so that a field a codec forgets comes back zero
// and differs. Slices get three elements; small integers (enums, classes)
// stay between 1 and 4.
func fillValue(t *testing.T, rnd *rand.Rand, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillValue(t, rnd, v.Field(i))
		}
		return
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 3, 3)
		for i := range 3 {
			fillValue(t, rnd, s.Index(i))
		}
		setUnexported(v, s)
		return
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				fillValue(t, rnd, v.Index(i))
			}
			return
		}
		for i := range v.Len() {
			setUnexported(v.Index(i), reflect.ValueOf(byte('A'+rnd.IntN(26))).Convert(v.Type().Elem()))
		}
		return
	}
	var x reflect.Value
	switch v.Kind() {
	case reflect.Int64:
		x = reflect.ValueOf(rnd.Int64N(1<<45) + 1)
	case reflect.Int32:
		x = reflect.ValueOf(rnd.Int32N(1<<30) + 1)
	case reflect.Uint64:
		x = reflect.ValueOf(rnd.Uint64() | 1)
	case reflect.Uint32:
		x = reflect.ValueOf(rnd.Uint32() | 1)
	case reflect.Uint16:
		x = reflect.ValueOf(uint16(1 + rnd.IntN(1<<15)))
	case reflect.Uint8:
		x = reflect.ValueOf(uint8(1 + rnd.IntN(4)))
	case reflect.Float32:
		x = reflect.ValueOf(rnd.Float32() + 0.5)
	case reflect.Bool:
		x = reflect.ValueOf(true)
	case reflect.String:
		x = reflect.ValueOf(string(rune('a'+rnd.IntN(26))) + "-value")
	default:
		t.Fatalf("fillValue: add kind %s (%s) to the test", v.Kind(), v.Type())
	}
	setUnexported(v, x.Convert(v.Type()))
}

// setUnexported sets v, an unexported field reached through reflection.
func setUnexported(v, x reflect.Value) {
	reflect.NewAt(v.Type(), v.Addr().UnsafePointer()).Elem().Set(x)
}

// codecCase round-trips one state struct through its codec.
type codecCase struct {
	name      string
	roundTrip func(t *testing.T, rnd *rand.Rand)
}

func valueCase[V any](name string, write func(*stateWriter, V), read func(*stateReader) V) codecCase {
	return codecCase{name: name, roundTrip: func(t *testing.T, rnd *rand.Rand) {
		var v V
		fillValue(t, rnd, reflect.ValueOf(&v).Elem())
		w := &stateWriter{}
		write(w, v)
		r := &stateReader{b: w.b}
		got := read(r)
		require.NoError(t, r.err)
		require.Empty(t, r.b, "every byte is read")
		require.Equal(t, v, got, "a field of %s is not encoded (snapshot_codec.go)", name)
	}}
}

// TestSnapshotValueCodecsKeepEveryField fills every field of every state
// struct and expects it back: a field added to a detector's state without
// adding it to its codec fails here.
func TestSnapshotValueCodecsKeepEveryField(t *testing.T) {
	t.Parallel()
	cases := []codecCase{
		valueCase("dedupEntry", writeDedupEntry, readDedupEntry),
		valueCase("travelRef", writeTravelRef, readTravelRef),
		valueCase("travelState", writeTravelState, func(r *stateReader) travelState { return readTravelState(r, 4) }),
		valueCase("egress", writeEgress, readEgress),
		valueCase("rotation", writeRotation, readRotation),
		valueCase("tokenUse", writeTokenUse, readTokenUse),
		valueCase("sessionLife", writeSessionLife, readSessionLife),
		valueCase("logoutMark", writeLogoutMark, readLogoutMark),
		valueCase("failures", writeFailures, func(r *stateReader) failures { return readFailures(r, 3, 3) }),
		valueCase("stuffing", writeStuffing, func(r *stateReader) stuffing { return readStuffing(r, 3) }),
		valueCase("sessionOrigin", writeSessionOrigin, readSessionOrigin),
		valueCase("idleSession", writeIdleSession, readIdleSession),
		valueCase("absoluteSession", writeAbsoluteSession, readAbsoluteSession),
		valueCase("reauthSession", writeReauthSession, readReauthSession),
		valueCase("retiredKey", writeRetiredKey, readRetiredKey),
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 20 {
				tc.roundTrip(t, rnd)
			}
		})
	}
}

// TestSnapshotDetectorFieldsAreKnown lists every field of every detector
// as state (in the snapshot) or configuration (rebuilt from the
// configuration, part of its hash). A new field fails the test until it is
// classified here, and encoded in snapshot_codec.go if it is state.
func TestSnapshotDetectorFieldsAreKnown(t *testing.T) {
	t.Parallel()
	known := map[string][]string{
		"ImpossibleTravel": {"sharedKeys", "cfg", "nets", "horizon", "state:refs", "state:egress"},
		"TokenReuse": {"sharedKeys", "cfg", "refresh", "concurrent", "after", "raceGrace", "refreshGrace", "appGrace", "horizon",
			"state:rotated", "state:access", "state:sessions", "state:logouts"},
		"BruteForce":         {"cfg", "windows", "horizon", "keep", "state:subjects"},
		"CredentialStuffing": {"cfg", "nets", "windows", "horizon", "keep", "state:prefixes", "state:asns"},
		"SessionHijack":      {"sharedKeys", "cfg", "state:sessions", "suspect"},
		"IdleTimeout":        {"sharedKeys", "cfg", "policy", "state:sessions"},
		"AbsoluteTimeout":    {"sharedKeys", "cfg", "policy", "state:sessions"},
		"MissingReauth":      {"sharedKeys", "cfg", "policy", "state:sessions"},
		"SessionFixation":    {"cfg"},
		"InsecureCookie":     {"cfg"},
		"LongLivedToken":     {"cfg"},
		"TokenPIIClaims":     {"cfg", "claims"},
		"RetiredSigningKey":  {"cfg", "state:retired"},
	}
	dets, err := NewDetectors(DefaultConfig())
	require.NoError(t, err)
	require.Len(t, dets, len(known), "every detector is listed")
	for _, d := range dets {
		typ := reflect.TypeOf(d).Elem()
		want, ok := known[typ.Name()]
		require.True(t, ok, "detector type %s is not listed", typ.Name())
		var got []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := f.Name
			if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct &&
				(len(f.Type.Elem().Name()) > 6 && f.Type.Elem().Name()[:6] == "table[" || f.Type.Elem().Name() == "markTable" || f.Type.Elem().Name() == "egresses") {
				name = "state:" + name
			}
			got = append(got, name)
		}
		require.ElementsMatch(t, want, got,
			"fields of %s changed: classify each as state or configuration here, and encode state in snapshot_codec.go", typ.Name())
	}

	// The engine's own: state in snapshot.go (encodeState), the rest
	// set by NewEngine and its options, or used within one call.
	var got []string
	for i := range reflect.TypeFor[Engine]().NumField() {
		got = append(got, reflect.TypeFor[Engine]().Field(i).Name)
	}
	require.ElementsMatch(t, []string{
		"dets", "settings", "emits", "lateness", "maxPending", "clock", "suppress", "geo", // configuration
		"pending", "maxSeen", "watermark", "started", "lastSweep", "dedup", // state
		"cur", "keys", "out", "stats", "offline", // within a call; counters (offline: RunOffline's progress)
	}, got, "fields of Engine changed: classify each here, and encode state in Engine.encodeState")
}

// snapshotEngine returns an engine of cfg's detectors on the test clock.
func snapshotEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	dets, err := NewDetectors(cfg)
	require.NoError(t, err)
	eng, err := NewEngine(cfg, dets, WithClock(engClock))
	require.NoError(t, err)
	return eng
}

// snapshotOf encodes eng with a test header.
func snapshotOf(t testing.TB, eng *Engine) []byte {
	t.Helper()
	b, err := encodeSnapshot(&snapshotHeader{unit: "test", seq: 7, created: engNow}, eng, 0)
	require.NoError(t, err)
	return b
}

// restoredEngine decodes b into a new engine of cfg's detectors.
func restoredEngine(t testing.TB, cfg Config, b []byte) *Engine {
	t.Helper()
	h, r, err := readSnapshotHeader(b)
	require.NoError(t, err)
	require.Equal(t, "test", h.unit)
	require.Equal(t, uint64(7), h.seq)
	eng := snapshotEngine(t, cfg)
	require.NoError(t, eng.restoreState(r))
	return eng
}

// runSplit runs events through one engine up to split, snapshots it, and
// runs the rest through a second engine restored from the snapshot.
func runSplit(t *testing.T, cfg Config, events []*schemas.Event, split int) []schemas.Alert {
	t.Helper()
	first := snapshotEngine(t, cfg)
	var out []schemas.Alert
	for _, e := range events[:split] {
		out = append(out, first.Process(e)...)
	}
	second := restoredEngine(t, cfg, snapshotOf(t, first))
	require.Equal(t, first.Stats().StateKeys, second.Stats().StateKeys)
	require.Equal(t, first.Stats().Pending, second.Stats().Pending)
	for _, e := range events[split:] {
		out = append(out, second.Process(e)...)
	}
	return append(out, second.Flush()...)
}

// TestSnapshotRestoreContinuesLikeAnUninterruptedRun: an engine restored
// from a snapshot taken anywhere in a stream of events, the reorder buffer
// full or not, raises exactly the alerts of one engine that ran over the
// whole stream: every scenario, delivered in order and out of order, and
// mixed traffic of many subjects.
func TestSnapshotRestoreContinuesLikeAnUninterruptedRun(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		cfg := scenarioConfig(t, dir)
		events := loadEvents(t, path)
		sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time.Time) })
		for seed, evs := range [][]*schemas.Event{events, shuffleWithin(events, cfg.Lateness.D()*9/10, 3)} {
			want := runEngine(t, cfg, evs)
			for split := range len(evs) + 1 {
				got := runSplit(t, cfg, evs, split)
				require.Equal(t, alertIDs(want), alertIDs(got), "order %d, snapshot after %d events", seed, split)
				require.Equal(t, want, got, "order %d, snapshot after %d events", seed, split)
			}
		}
	})
	t.Run("mixed traffic", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		events := benchEvents(3000, 20*time.Minute, false)
		// Attacks among the traffic, so that state mid-attack is saved.
		at := events[len(events)/2].Time.Time
		for i := range 12 {
			e := svcEvent("mix-bf-"+string(rune('a'+i)), schemas.LoginFailed, "k1:s000000000000000000001", at.Add(time.Duration(i)*time.Second))
			events = slices.Insert(events, len(events)/2+i*7, e)
		}
		want := runEngine(t, cfg, events)
		require.NotEmpty(t, want)
		for _, split := range []int{1, len(events) / 3, len(events)/2 + 30, len(events) - 1} {
			got := runSplit(t, cfg, events, split)
			require.Equal(t, alertIDs(want), alertIDs(got), "snapshot after %d events", split)
			require.Equal(t, want, got, "snapshot after %d events", split)
		}
	})
}

// TestSnapshotKeepsEnrichmentOfPendingEvents: events waiting in the
// reorder buffer keep what GeoIP enrichment added, which is not part of
// an event's JSON.
func TestSnapshotKeepsEnrichmentOfPendingEvents(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	eng := snapshotEngine(t, cfg)
	e := svcEvent("enriched", schemas.SessionActivity, "k1:enriched-AbCdEfGh", engNow.Add(-time.Minute))
	e.Session = "k1:ses-enriched-AbCdEf"
	e.Client.ASOrg, e.Client.Anonymity, e.Client.GeoSource = "Example AS", schemas.AnonymousTorExit|schemas.AnonymousVPN, schemas.GeoSourceGeoIP
	require.Empty(t, eng.Process(e))
	require.Equal(t, 1, eng.Stats().Pending)
	restored := restoredEngine(t, cfg, snapshotOf(t, eng))
	require.Len(t, restored.pending, 1)
	require.Equal(t, e, restored.pending[0].e)
	require.Equal(t, eng.watermark, restored.watermark)
	require.Equal(t, eng.maxSeen, restored.maxSeen)
	require.Equal(t, eng.lastSweep, restored.lastSweep)
}

// TestSnapshotRefusesDamage: a snapshot that was cut short, altered, or
// written by another version is refused with errBadSnapshot, never
// half-restored or panicking.
func TestSnapshotRefusesDamage(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	eng := snapshotEngine(t, cfg)
	for _, e := range benchEvents(200, 10*time.Minute, false) {
		eng.Process(e)
	}
	good := snapshotOf(t, eng)
	resum := func(b []byte) []byte {
		b = slices.Clone(b)
		return append(b[:len(b)-snapshotSumSize], sumOf(b[:len(b)-snapshotSumSize])...)
	}
	for _, tc := range []struct {
		name   string
		change func([]byte) []byte
		want   string
	}{
		{name: "damage/empty", change: func([]byte) []byte { return nil }, want: "not a snapshot"},
		{name: "damage/other format", change: func(b []byte) []byte { return append([]byte("JSON"), b[4:]...) }, want: "not a snapshot"},
		{name: "damage/truncated", change: func(b []byte) []byte { return b[:len(b)/2] }, want: "checksum"},
		{name: "damage/one byte flipped", change: func(b []byte) []byte { b = slices.Clone(b); b[len(b)/2] ^= 0x40; return b }, want: "checksum"},
		{name: "damage/other version", change: func(b []byte) []byte { b = slices.Clone(b); b[4] = 9; return resum(b) }, want: "version 9"},
		{name: "damage/trailing bytes", change: func(b []byte) []byte {
			b = slices.Insert(slices.Clone(b), len(b)-snapshotSumSize, 0, 0)
			return resum(b)
		}, want: "bytes after the last detector"},
	} {
		b := tc.change(good)
		_, r, err := readSnapshotHeader(b)
		if err == nil {
			err = snapshotEngine(t, cfg).restoreState(r)
		}
		require.ErrorIs(t, err, errBadSnapshot, tc.name)
		require.ErrorContains(t, err, tc.want, tc.name)
	}

	// Another set of detectors: the state does not fit.
	other, err := ParseConfig([]byte("detectors: {brute_force: {enabled: false}}"))
	require.NoError(t, err)
	_, r, err := readSnapshotHeader(good)
	require.NoError(t, err)
	require.ErrorIs(t, snapshotEngine(t, other).restoreState(r), errBadSnapshot)

	// A used engine is not restored into.
	_, r, err = readSnapshotHeader(good)
	require.NoError(t, err)
	require.Error(t, eng.restoreState(r))
}

func sumOf(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestSnapshotConfigHash: the hash changes with anything the state
// depends on, and only with that.
func TestSnapshotConfigHash(t *testing.T) {
	t.Parallel()
	hash := func(yaml, unit string, partitions int) [32]byte {
		cfg, err := ParseConfig([]byte(yaml))
		require.NoError(t, err)
		dets, err := NewDetectors(cfg)
		require.NoError(t, err)
		h, err := configHash(cfg, dets, unit, partitions)
		require.NoError(t, err)
		return h
	}
	base := hash("", "sessionmon-detect", 0)
	require.Equal(t, base, hash("", "sessionmon-detect", 0), "deterministic")
	require.Equal(t, base, hash("lateness: 2s\nmax_pending: 1000", "sessionmon-detect", 0), "engine buffering is not state")
	require.Equal(t, base, hash("detectors: {token_reuse: {refresh_window: 14d}}", "sessionmon-detect", 0), "a default written out")
	for _, tc := range []struct {
		name       string
		yaml, unit string
		partitions int
	}{
		{name: "hash/window", yaml: "detectors: {token_reuse: {refresh_window: 7d}}"},
		{name: "hash/severity", yaml: "detectors: {brute_force: {severity: high}}"},
		{name: "hash/disabled detector", yaml: "detectors: {insecure_cookie: {enabled: false}}"},
		{name: "hash/policy", yaml: "policy: {idle_timeout: 10m}"},
		{name: "hash/networks", yaml: "networks: [{asn: 14593, kind: satellite}]"},
		{name: "hash/unit", unit: "sessionmon-detect-p1"},
		{name: "hash/partitions", partitions: 8},
	} {
		unit := tc.unit
		if unit == "" {
			unit = "sessionmon-detect"
		}
		require.NotEqual(t, base, hash(tc.yaml, unit, tc.partitions), tc.name)
	}
}

// FuzzSnapshotRestore: whatever the bytes, restoring never panics, and
// what it accepts runs.
func FuzzSnapshotRestore(f *testing.F) {
	cfg := DefaultConfig()
	dets, err := NewDetectors(cfg)
	require.NoError(f, err)
	eng, err := NewEngine(cfg, dets, WithClock(engClock))
	require.NoError(f, err)
	for _, e := range benchEvents(20, 10*time.Minute, true) {
		eng.Process(e)
	}
	good, err := encodeSnapshot(&snapshotHeader{unit: "test"}, eng, 0)
	require.NoError(f, err)
	f.Add(good[:len(good)-snapshotSumSize])
	f.Add([]byte("SMDS\x01"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append(slices.Clone(body), sumOf(body)...)
		_, r, err := readSnapshotHeader(b)
		if err != nil {
			return
		}
		dets, err := NewDetectors(cfg)
		require.NoError(t, err)
		restored, err := NewEngine(cfg, dets, WithClock(engClock))
		require.NoError(t, err)
		if restored.restoreState(r) != nil {
			return
		}
		for _, e := range benchEvents(5, time.Minute, false) {
			restored.Process(e)
		}
		restored.Flush()
	})
}

// BenchmarkSnapshot measures encoding and restoring the state of 200,000
// active subjects (all 13 detectors, about a million keys).
func BenchmarkSnapshot(b *testing.B) {
	cfg := DefaultConfig()
	eng := snapshotEngine(b, cfg)
	plan := benchPlan(200_000, 30*time.Minute, true, 2)
	for i, s := range plan {
		eng.Process(benchEvent(s, i))
	}
	eng.Flush()
	keys := eng.Stats().StateKeys
	data, err := encodeSnapshot(&snapshotHeader{unit: "bench"}, eng, 0)
	require.NoError(b, err)
	b.Logf("%d state keys, %d events: snapshot of %d bytes (%.1f bytes a key)", keys, len(plan), len(data), float64(len(data))/float64(keys))
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeSnapshot(&snapshotHeader{unit: "bench"}, eng, len(data)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(keys), "keys")
		b.ReportMetric(float64(len(data)), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			fresh := snapshotEngine(b, cfg)
			b.StartTimer()
			_, r, err := readSnapshotHeader(data)
			if err != nil {
				b.Fatal(err)
			}
			if err := fresh.restoreState(r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(keys), "keys")
	})
}
