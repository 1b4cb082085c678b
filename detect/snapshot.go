package detect

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Snapshots. A restart must not forget what the detectors learnt over
// windows far longer than the replay at start (a refresh token rotated a
// week ago, a key retired a month ago), so the live service saves each
// engine's whole state (the detectors', the dedup table, the reorder
// buffer, the watermark) as a snapshot in JetStream (snapshot_store.go),
// and a start restores it and replays only the events stored after it.
// This file holds the format, the engine's part and the tables';
// snapshot_codec.go holds each detector's.
//
// Format, version 2 (integers are varints unless a size is given; version
// 2 changed token_reuse's state: logouts per subject, each with its expiry):
//
//	"SMDS" version
//	header    unit, configuration hash (32 bytes), events stream creation
//	          time (ns), last stream sequence included, creation time
//	          (ns), erasure mark, alerts in flight (count, each as JSON)
//	engine    started, newest event time, watermark, last sweep; pending
//	          events (count; each as schema v1 JSON plus its enrichment);
//	          the dedup table
//	detectors count; each its name, its size (8 bytes) and its state
//	SHA-256 of everything before (32 bytes)
//
// A snapshot that is truncated, fails its checksum, has another version,
// or was made for another unit or with another detector configuration is
// refused (errBadSnapshot); the service then falls back to replaying the
// recent window. Decoding bounds every count and length by the bytes left,
// so a damaged or forged snapshot cannot make it allocate without limit,
// and it checks the invariants the detectors rely on (a brute_force entry
// has at least one failure, a table no more keys than its limit).

// Snapshot format constants.
const (
	snapshotMagic   = "SMDS"
	snapshotVersion = 3
	// snapshotSumSize is the size of the trailing SHA-256.
	snapshotSumSize = sha256.Size
)

// errBadSnapshot is what every decoding failure wraps.
var errBadSnapshot = errors.New("unusable detector state snapshot")

// stateCodec is implemented by every detector (snapshot_codec.go): it
// writes its state into a snapshot and reads it back into a detector built
// with the same configuration.
type stateCodec interface {
	// stateConfig is the configuration the state depends on; it is part
	// of the snapshot's configuration hash.
	stateConfig() any
	// encodeState writes the detector's state.
	encodeState(w *stateWriter)
	// decodeState reads what encodeState wrote into a detector that holds
	// no state yet; problems are left in r.
	decodeState(r *stateReader)
}

// snapshotHeader says what a snapshot holds the state of, and up to where.
type snapshotHeader struct {
	// unit is the durable consumer name of the engine's unit.
	unit string
	// config is configHash of the unit when the snapshot was made.
	config [sha256.Size]byte
	// stream is the events stream's creation time (Unix ns): a stream
	// created again numbers its events from 1 again.
	stream int64
	// seq is the last events stream sequence whose event the state
	// includes: every event of the unit at or before it was given to the
	// engine, none after it.
	seq uint64
	// created is when the state was encoded (wall clock).
	created time.Time
	// erasure is the erasure mark the state is clean of (see
	// snapshot_store.go).
	erasure string
	// inflight are alerts the engine had raised whose publication was
	// not confirmed yet: a crash may have lost them.
	inflight []schemas.Alert
}

// encodeSnapshot returns h and eng's state in the snapshot format. It
// must run on the goroutine that owns eng, between two calls of Process,
// AdvanceTo or Flush. sizeHint is the size expected (the previous
// snapshot's), so that the buffer is allocated once.
func encodeSnapshot(h *snapshotHeader, eng *Engine, sizeHint int) ([]byte, error) {
	w := &stateWriter{b: make([]byte, 0, max(sizeHint+sizeHint/8, 1<<16))}
	w.b = append(w.b, snapshotMagic...)
	w.uvarint(snapshotVersion)
	w.str(h.unit)
	w.b = append(w.b, h.config[:]...)
	w.varint(h.stream)
	w.uvarint(h.seq)
	w.varint(h.created.UnixNano())
	w.str(h.erasure)
	w.uvarint(uint64(len(h.inflight)))
	for i := range h.inflight {
		b, err := json.Marshal(&h.inflight[i])
		if err != nil {
			return nil, fmt.Errorf("encode snapshot: alert %s: %w", h.inflight[i].ID, err)
		}
		w.bytes(b)
	}
	if err := eng.encodeState(w); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	sum := sha256.Sum256(w.b)
	return append(w.b, sum[:]...), nil
}

// readSnapshotHeader checks b's format, version and checksum and returns
// its header and a reader of the engine's state that follows.
func readSnapshotHeader(b []byte) (snapshotHeader, *stateReader, error) {
	var h snapshotHeader
	if len(b) < len(snapshotMagic)+1+snapshotSumSize || !bytes.HasPrefix(b, []byte(snapshotMagic)) {
		return h, nil, fmt.Errorf("%w: not a snapshot (%d bytes)", errBadSnapshot, len(b))
	}
	r := &stateReader{b: b[len(snapshotMagic) : len(b)-snapshotSumSize]}
	if v := r.uvarint(); v != snapshotVersion {
		return h, nil, fmt.Errorf("%w: version %d, this build reads version %d", errBadSnapshot, v, snapshotVersion)
	}
	body, sum := b[:len(b)-snapshotSumSize], b[len(b)-snapshotSumSize:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return h, nil, fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	h.unit = r.str()
	copy(h.config[:], r.next(len(h.config)))
	h.stream = r.varint()
	h.seq = r.uvarint()
	h.created = time.Unix(0, r.varint()).UTC()
	h.erasure = r.str()
	for range r.count(1) {
		var a schemas.Alert
		if err := json.Unmarshal(r.view(), &a); err != nil {
			r.fail("alert in flight: " + err.Error())
		}
		if r.err != nil {
			break
		}
		h.inflight = append(h.inflight, a)
	}
	if r.err != nil {
		return snapshotHeader{}, nil, r.err
	}
	return h, r, nil
}

// configHash identifies what the state of a unit running dets depends on:
// the detectors and their configuration, the policy defaults and known
// networks, the unit, and for a partition the number of partitions (the
// subjects it holds depend on it). The engine's lateness and buffer size
// are not part of it: the state is valid under any.
func configHash(cfg Config, dets []Detector, unit string, partitions int) ([sha256.Size]byte, error) {
	type detector struct {
		Name   string `json:"name"`
		Config any    `json:"config"`
	}
	v := struct {
		Version    int        `json:"version"`
		Unit       string     `json:"unit"`
		Partitions int        `json:"partitions"`
		Policy     any        `json:"policy"`
		Networks   []Network  `json:"networks"`
		Detectors  []detector `json:"detectors"`
	}{Version: snapshotVersion, Unit: unit, Partitions: partitions, Policy: cfg.Policy, Networks: cfg.Networks}
	for _, d := range dets {
		c, ok := d.(stateCodec)
		if !ok {
			return [sha256.Size]byte{}, fmt.Errorf("detector %s cannot save its state", d.Name())
		}
		v.Detectors = append(v.Detectors, detector{Name: d.Name(), Config: c.stateConfig()})
	}
	b, err := json.Marshal(v)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("detector configuration hash: %w", err)
	}
	return sha256.Sum256(b), nil
}

// encodeState writes the engine's state: its clocks, the events waiting
// in the reorder buffer, the dedup table and every detector's state.
func (e *Engine) encodeState(w *stateWriter) error {
	w.boolean(e.started)
	w.varint(e.maxSeen)
	w.varint(e.watermark)
	w.varint(e.lastSweep)
	w.uvarint(uint64(len(e.pending)))
	for _, p := range e.pending {
		b, err := schemas.Encode(p.e)
		if err != nil {
			return fmt.Errorf("pending event %s: %w", p.e.ID, err)
		}
		w.bytes(b)
		// Enrichment is not part of an event's JSON.
		var c schemas.Client
		if p.e.Client != nil {
			c = *p.e.Client
		}
		w.str(c.ASOrg)
		w.byte(byte(c.Anonymity))
		w.str(string(c.GeoSource))
	}
	writeKeyTable(w, e.dedup, writeDedupEntry)
	w.uvarint(uint64(len(e.dets)))
	for _, d := range e.dets {
		c, ok := d.(stateCodec)
		if !ok {
			return fmt.Errorf("detector %s cannot save its state", d.Name())
		}
		w.str(d.Name())
		at := len(w.b)
		w.b = binary.LittleEndian.AppendUint64(w.b, 0)
		c.encodeState(w)
		binary.LittleEndian.PutUint64(w.b[at:], uint64(len(w.b)-at-8))
	}
	return nil
}

// restoreState reads what encodeState wrote into e, which must not have
// processed any event. On error e is unusable: build a new engine.
func (e *Engine) restoreState(r *stateReader) error {
	if e.started || len(e.pending) > 0 || e.dedup.size() > 0 {
		return errors.New("restore detector state: the engine has processed events")
	}
	e.started = r.boolean()
	e.maxSeen = r.varint()
	e.watermark = r.varint()
	e.lastSweep = r.varint()
	now := e.clock()
	for range r.count(4) {
		ev, err := schemas.Decode(r.view(), now)
		if err != nil {
			r.fail("pending event: " + err.Error())
			break
		}
		asOrg, anon, src := r.str(), schemas.Anonymity(r.byte()), schemas.GeoSource(r.str())
		if c := ev.Client; c != nil {
			c.ASOrg, c.Anonymity, c.GeoSource = asOrg, anon, src
		} else if asOrg != "" || anon != 0 || src != "" {
			r.fail("enrichment of an event without a client")
		}
		if r.err != nil {
			break
		}
		e.pending = append(e.pending, pendingEvent{at: ev.Time.UnixNano(), e: ev})
	}
	e.pending.init()
	readKeyTable(r, e.dedup, readDedupEntry)
	if n := r.count(1); r.err == nil && n != len(e.dets) {
		r.fail(fmt.Sprintf("%d detectors, the engine runs %d", n, len(e.dets)))
	}
	for _, d := range e.dets {
		if r.err != nil {
			break
		}
		c, ok := d.(stateCodec)
		if !ok {
			return fmt.Errorf("restore detector state: detector %s cannot restore its state", d.Name())
		}
		if name := r.str(); r.err == nil && name != d.Name() {
			r.fail(fmt.Sprintf("state of detector %q where %q was expected", name, d.Name()))
			break
		}
		sub := &stateReader{b: r.next(int(min(r.fixed64(), uint64(len(r.b)+1))))}
		if r.err != nil {
			break
		}
		c.decodeState(sub)
		if sub.err == nil && len(sub.b) > 0 {
			sub.fail(fmt.Sprintf("%d bytes left", len(sub.b)))
		}
		if sub.err != nil {
			return fmt.Errorf("restore detector %s: %w", d.Name(), sub.err)
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail(fmt.Sprintf("%d bytes after the last detector", len(r.b)))
	}
	if r.err != nil {
		return fmt.Errorf("restore detector state: %w", r.err)
	}
	return nil
}

func writeDedupEntry(w *stateWriter, d dedupEntry) {
	w.varint(d.at)
	w.varint(d.window)
	w.str(d.subject)
}

func readDedupEntry(r *stateReader) dedupEntry {
	return dedupEntry{at: r.varint(), window: r.varint(), subject: r.str()}
}

// writeTable writes t's entries in map order with key and val.
func writeTable[K cmp.Ordered, V any](w *stateWriter, t *table[K, V], key func(*stateWriter, K), val func(*stateWriter, V)) {
	w.uvarint(uint64(len(t.m)))
	for k, v := range t.m {
		key(w, k)
		val(w, v)
	}
}

// readTable reads what writeTable wrote into the empty table t. It refuses
// more keys than t may hold, and a key written twice.
func readTable[K cmp.Ordered, V any](r *stateReader, t *table[K, V], key func(*stateReader) K, val func(*stateReader) V) {
	n := r.count(2)
	if r.err != nil {
		return
	}
	if n > t.max {
		r.fail(fmt.Sprintf("%d keys in a table of at most %d", n, t.max))
		return
	}
	t.m = make(map[K]V, n)
	t.floor = math.MaxInt64
	for range n {
		k := key(r)
		v := val(r)
		if r.err != nil {
			return
		}
		t.m[k] = v
		t.floor = min(t.floor, t.last(v))
	}
	if len(t.m) != n {
		r.fail("a key written twice")
	}
}

// writeHashTable and readHashTable are writeTable and readTable for
// tables keyed by pseudonymHash.
func writeHashTable[V any](w *stateWriter, t *hashTable[V], val func(*stateWriter, V)) {
	writeTable(w, t, (*stateWriter).u64, val)
}

func readHashTable[V any](r *stateReader, t *hashTable[V], val func(*stateReader) V) {
	readTable(r, t, (*stateReader).u64, val)
}

// writeKeyTable and readKeyTable are writeTable and readTable for tables
// keyed by a string.
func writeKeyTable[V any](w *stateWriter, t *keyTable[V], val func(*stateWriter, V)) {
	writeTable(w, t, (*stateWriter).str, val)
}

func readKeyTable[V any](r *stateReader, t *keyTable[V], val func(*stateReader) V) {
	readTable(r, t, (*stateReader).str, val)
}

// stateWriter appends the snapshot format's values to a buffer.
type stateWriter struct{ b []byte }

func (w *stateWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *stateWriter) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *stateWriter) u64(v uint64)     { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *stateWriter) byte(v byte)      { w.b = append(w.b, v) }

func (w *stateWriter) f32(v float32) {
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(v))
}

func (w *stateWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *stateWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *stateWriter) bytes(b []byte) {
	w.uvarint(uint64(len(b)))
	w.b = append(w.b, b...)
}

// stateReader reads the snapshot format's values. The first problem is
// kept in err; after it every read returns zero values, so decoders check
// err once at the end of a run of reads.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errBadSnapshot, what)
	}
	r.b = nil
}

// next returns the next n bytes, shared with the buffer.
func (r *stateReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *stateReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated or overlong number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated or overlong number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) fixed64() uint64 {
	if b := r.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *stateReader) u64() uint64 { return r.fixed64() }

func (r *stateReader) f32() float32 {
	if b := r.next(4); b != nil {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	}
	return 0
}

func (r *stateReader) byte() byte {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *stateReader) boolean() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail("not a boolean")
	return false
}

// count reads a number of items of at least size bytes each, refusing one
// that the bytes left cannot hold (so a forged count allocates nothing).
func (r *stateReader) count(size int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/size) {
		r.fail(fmt.Sprintf("count %d beyond the data left", n))
		return 0
	}
	return int(n)
}

// view reads a length-prefixed byte string, shared with the buffer.
func (r *stateReader) view() []byte { return r.next(r.count(1)) }

// str reads a length-prefixed string into a new string.
func (r *stateReader) str() string { return string(r.view()) }

// int32 reads a varint that must fit an int32.
func (r *stateReader) int32() int32 {
	v := r.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("number out of range")
		return 0
	}
	return int32(v)
}
