package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Where snapshots live. Each engine unit of the live service keeps its
// latest snapshot (snapshot.go) as one object of the JetStream object
// store schemas.StateBucket, named by its durable consumer ("sessionmon-detect",
// "sessionmon-detect-p3", "sessionmon-detect-sources"): a partition that
// moves to another process takes its state along, as it takes its
// consumer, and the snapshot of a consumer deleted is deleted at the next
// start of a detect process. A unit writes a snapshot every SnapshotConfig.Interval, after
// its replay at start, after an erasure and on shutdown, recording the
// last events stream sequence its state includes; a start restores it
// and replays only the events stored after that sequence (replay.go). A
// snapshot that is missing, damaged, too big, of another version, made
// with another detector configuration, for another events stream, or
// older than the last erasure is not used: the unit logs why and replays
// the recent window (MaxReplay) as without snapshots.
//
// Erasure. Service.Forget writes a fresh snapshot of every unit before it
// reports success, so a confirmed erasure leaves no snapshot of a running
// engine holding the subject. Before the detectors are asked, PrepareForget
// purges the subject's events from SESSIONMON_EVENTS (so that no replay
// reads them again) and replaces the erasure mark, an object of the
// bucket: every snapshot records the mark its state is clean of, and one
// made before the current mark (by a process that was down during the
// erasure, or failed before it forgot) is not restored. Once every running
// process has forgotten, CompleteForget deletes those older snapshots,
// which would otherwise keep the subject's pseudonym at rest.
//
// Trust. The bucket is sessionmon's own and is read by name only;
// integrity is checked twice (the object store's SHA-256 digest and the
// snapshot's own checksum), its size is bounded before it is read, and
// decoding bounds every count by the bytes left and checks the detectors'
// invariants, so a damaged snapshot is refused, never half-used. Snapshots
// are not authenticated: sessionmon has no secret meant for it that every
// detect process holds (the NATS credentials are what a writer of the
// bucket holds anyway; the ClickHouse password and the dashboard's
// pseudonym key are optional and not every detect process's), and a new
// required one is not worth it. A forged snapshot could plant or remove
// detector state (hide an ongoing attack, or make later events raise
// alerts about any pseudonym), list alerts to publish, and move the point
// replay starts from. But whoever can write the bucket can, with the same
// NATS permissions, already publish events and alerts, and delete
// consumers and streams: it opens no new way in. Protect the bucket with
// NATS accounts or permissions, as the SESSIONMON_* streams.

// erasureMarkObject names the erasure mark in schemas.StateBucket; durable
// consumer names cannot contain a dot, so no unit's snapshot has it.
const erasureMarkObject = "erasure.mark"

// Snapshot bounds.
const (
	// snapshotWriteTimeout bounds writing one snapshot.
	snapshotWriteTimeout = 2 * time.Minute
	// erasureMarkTimeout bounds reading the erasure mark during an
	// erasure (the engine loop waits for it).
	erasureMarkTimeout = 5 * time.Second
	// snapshotAlertMargin is how long before a snapshot's creation the
	// alerts a restart looks up start: the alerts stream's clock may run
	// behind detect's.
	snapshotAlertMargin = time.Minute
)

// SnapshotConfig configures the snapshots of the engines' state.
type SnapshotConfig struct {
	// Interval is how often each engine saves its state (default 5m);
	// it also does after its replay at start, after an erasure and on
	// shutdown. 0 turns snapshots off: every start replays MaxReplay.
	Interval time.Duration
	// MaxBytes bounds one snapshot, written or read (default 1 GiB).
	MaxBytes int64
	// Replicas is the bucket's number of copies in a NATS cluster
	// (stream-replicas); an existing bucket with more keeps them.
	Replicas int
}

// DefaultSnapshotConfig is the snapshots' configuration out of the box.
func DefaultSnapshotConfig() SnapshotConfig {
	return SnapshotConfig{Interval: 5 * time.Minute, MaxBytes: 1 << 30, Replicas: 1}
}

func (c SnapshotConfig) validate() error {
	var errs []error
	if c.Interval != 0 && c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("detect snapshot interval must be 0 (off) or at least 1s (got %s)", c.Interval))
	}
	if c.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("detect snapshot max bytes must be at least 1 MiB (got %d)", c.MaxBytes))
	}
	if c.Replicas < 0 {
		errs = append(errs, fmt.Errorf("detect snapshot replicas must not be negative (got %d)", c.Replicas))
	}
	return errors.Join(errs...)
}

// PrepareForget makes sure that what NATS keeps for the detectors cannot
// bring subject back once the running detectors forgot it (Service.Forget,
// asked next): it purges the subject's events from SESSIONMON_EVENTS,
// which a replay at start would read again (ingest has stored those it
// received; an erasure deletes them from ClickHouse), and replaces the
// erasure mark, so that no snapshot made before now is restored. It
// returns how many events it purged. A missing stream or bucket has
// nothing to purge or mark.
//
// Single events are found by the stream's subjects, which end with the
// subject's pseudonym in both their published and partitioned forms
// (schemas.SubjectEventFilters); the purge is done by the server, by
// subject filter, and covers every partition. Batched messages, stored on
// batch subjects, are read one by one: each that holds events of the
// subject is replaced by a batch of its other events, if any, and deleted
// (purgeSubjectBatches). The count is of events, single or batched.
func PrepareForget(ctx context.Context, js jetstream.JetStream, subject string) (uint64, error) {
	if !schemas.ValidPseudonym(subject) {
		// The subject becomes a purge filter: no wildcard may pass.
		return 0, fmt.Errorf("forget subject: not a valid pseudonym")
	}
	var purged uint64
	stream, err := js.Stream(ctx, schemas.EventStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return 0, fmt.Errorf("forget subject: events stream: %w", err)
	default:
		for _, f := range schemas.SubjectEventFilters(subject) {
			n, err := purgeFilter(ctx, stream, f)
			purged += n
			if err != nil {
				return purged, fmt.Errorf("forget subject: purge its events from %s: %w", schemas.EventStream, err)
			}
		}
		n, err := purgeSubjectBatches(ctx, js, natsconn.StreamPartitions(stream.CachedInfo()), subject)
		purged += n
		if err != nil {
			return purged, fmt.Errorf("forget subject: %s: %w", schemas.EventStream, err)
		}
	}
	obs, err := js.ObjectStore(ctx, schemas.StateBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return purged, nil
	}
	if err != nil {
		return purged, fmt.Errorf("forget subject: detect state bucket: %w", err)
	}
	if _, err := obs.PutBytes(ctx, erasureMarkObject, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return purged, fmt.Errorf("forget subject: erasure mark: %w", err)
	}
	return purged, nil
}

// CompleteForget ends an erasure once every running detect process has
// forgotten the subject (Service.Forget, after PrepareForget): it deletes
// the snapshots made before the erasure mark, those of engines that did not
// take part (their process is down, or their layout no longer runs), which
// would still hold the subject. Their next start would refuse them anyway,
// and replays instead.
func CompleteForget(ctx context.Context, js jetstream.JetStream) error {
	obs, err := js.ObjectStore(ctx, schemas.StateBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("forget subject: detect state bucket: %w", err)
	}
	mark, err := obs.GetInfo(ctx, erasureMarkObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("forget subject: erasure mark: %w", err)
	}
	objects, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("forget subject: list detector state snapshots: %w", err)
	}
	for _, o := range objects {
		if o.Name == erasureMarkObject || !o.ModTime.Before(mark.ModTime) {
			continue
		}
		if err := obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("forget subject: delete the detector state snapshot made before the erasure: %w", err)
		}
	}
	return nil
}

// dropOrphanSnapshots deletes the snapshots of durable consumers that no
// longer exist (a layout left, its consumers deleted as docs/detectors.md says):
// nothing would restore them, and they hold pseudonyms. A detect process
// does it at start, once its own consumers exist.
func (s *Service) dropOrphanSnapshots(ctx context.Context) error {
	stream, err := s.js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return fmt.Errorf("detect: events stream %s: %w", schemas.EventStream, err)
	}
	consumers := map[string]bool{}
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() {
		consumers[info.Name] = true
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("detect: list consumers of %s: %w", schemas.EventStream, err)
	}
	objects, err := s.state.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detect: list detector state snapshots: %w", err)
	}
	for _, o := range objects {
		if o.Name == erasureMarkObject || consumers[o.Name] {
			continue
		}
		if err := s.state.obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("detect: delete the snapshot of consumer %s, which no longer exists: %w", o.Name, err)
		}
		s.logger.Info("snapshot of a deleted consumer dropped", slog.String("consumer", o.Name))
	}
	return nil
}

// stateStore reads and writes the units' snapshots.
type stateStore struct {
	obs      jetstream.ObjectStore
	maxBytes int64
}

// erasureMark returns the current erasure mark ("" when there was no
// erasure since the bucket was created).
func (st *stateStore) erasureMark(ctx context.Context) (string, error) {
	info, err := st.obs.GetInfo(ctx, erasureMarkObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("detect state: erasure mark: %w", err)
	}
	return info.NUID, nil
}

// errNoSnapshot says a unit has no snapshot yet.
var errNoSnapshot = errors.New("no snapshot")

// load returns the snapshot called name, at most maxBytes long, or
// errNoSnapshot.
func (st *stateStore) load(ctx context.Context, name string) ([]byte, error) {
	info, err := st.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, errNoSnapshot
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if info.Size > uint64(st.maxBytes) {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", errBadSnapshot, info.Size, st.maxBytes)
	}
	res, err := st.obs.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	defer res.Close()
	// The object store checks its digest when the read reaches the end.
	b, err := io.ReadAll(io.LimitReader(res, st.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if int64(len(b)) > st.maxBytes {
		return nil, fmt.Errorf("%w: over the limit of %d bytes", errBadSnapshot, st.maxBytes)
	}
	return b, nil
}

// save replaces the snapshot called name.
func (st *stateStore) save(ctx context.Context, name string, b []byte, h *snapshotHeader) error {
	if int64(len(b)) > st.maxBytes {
		return fmt.Errorf("write snapshot: %d bytes, over the limit of %d (detect snapshot max bytes)", len(b), st.maxBytes)
	}
	_, err := st.obs.Put(ctx, jetstream.ObjectMeta{
		Name:        name,
		Description: "sessionmon detect state of consumer " + name,
		Metadata: map[string]string{
			"seq":     strconv.FormatUint(h.seq, 10),
			"created": h.created.Format(time.RFC3339Nano),
			"version": strconv.Itoa(snapshotVersion),
		},
	}, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// restoredSnapshot is what a unit's start took from its snapshot.
type restoredSnapshot struct {
	snapshotHeader
	// pendingMinAt and pendingMaxAt are the oldest and newest event times
	// (ns) in the restored reorder buffer (MaxInt64 and MinInt64: none).
	pendingMinAt, pendingMaxAt int64
}

// restoreUnit loads u's snapshot and restores it into a new engine of new
// detectors. It returns nil, after logging why, when there is no usable
// snapshot: the caller replays the recent window instead.
func (s *Service) restoreUnit(ctx context.Context, u *unit, stream *jetstream.StreamInfo, mark string, opts []Option) (*Engine, *restoredSnapshot) {
	began := time.Now()
	b, err := s.state.load(ctx, u.durable)
	if errors.Is(err, errNoSnapshot) {
		u.logger.Info("no detector state snapshot yet, replaying the recent window")
		return nil, nil
	}
	refuse := func(reason string, err error) (*Engine, *restoredSnapshot) {
		s.metrics.snapshotFailures.WithLabelValues("read").Inc()
		attrs := []any{slog.String("reason", reason)}
		if err != nil {
			attrs = append(attrs, slog.Any("error", err))
		}
		u.logger.Warn("detector state snapshot not used, replaying the recent window instead", attrs...)
		return nil, nil
	}
	if err != nil {
		return refuse("unreadable", err)
	}
	h, r, err := readSnapshotHeader(b)
	switch {
	case err != nil:
		return refuse("damaged", err)
	case h.unit != u.durable:
		return refuse("made for consumer "+strconv.Quote(h.unit), nil)
	case h.config != u.config:
		return refuse("the detector configuration changed since", nil)
	case h.stream != stream.Created.UnixNano():
		return refuse("made for an events stream that was created again since", nil)
	case h.seq > stream.State.LastSeq:
		return refuse(fmt.Sprintf("includes events up to sequence %d, the events stream ends at %d", h.seq, stream.State.LastSeq), nil)
	case h.erasure != mark:
		return refuse("made before the last erasure", nil)
	}
	dets, err := u.newDetectors()
	if err != nil {
		return refuse("detectors", err)
	}
	eng, err := NewEngine(s.dcfg, dets, opts...)
	if err != nil {
		return refuse("engine", err)
	}
	if err := eng.restoreState(r); err != nil {
		return refuse("damaged", err)
	}
	u.dets = dets
	snap := &restoredSnapshot{snapshotHeader: h, pendingMinAt: math.MaxInt64, pendingMaxAt: math.MinInt64}
	for _, p := range eng.pending {
		snap.pendingMinAt, snap.pendingMaxAt = min(snap.pendingMinAt, p.at), max(snap.pendingMaxAt, p.at)
	}
	if first := stream.State.FirstSeq; first > h.seq+1 {
		u.logger.Warn("events stored after the snapshot expired from the events stream before the restart: findings that needed them may be missed",
			slog.Uint64("snapshot_seq", h.seq), slog.Uint64("first_seq", first))
	}
	d := time.Since(began)
	s.metrics.snapshotSeconds.WithLabelValues("restore").Observe(d.Seconds())
	u.lastSaved.Store(h.created.UnixNano())
	s.gauges.set(gaugeSnapshotBytes, u.gauge, float64(len(b)))
	u.logger.Info("detector state restored", slog.Uint64("snapshot_seq", h.seq), slog.Time("snapshot_created", h.created),
		slog.Int("bytes", len(b)), slog.Int("state_keys", eng.Stats().StateKeys), slog.Int("pending", len(eng.pending)),
		slog.Int("alerts_in_flight", len(h.inflight)), slog.Duration("duration", d))
	return eng, snap
}
