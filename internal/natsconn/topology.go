package natsconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

// The topology: every JetStream stream, key-value bucket and object store
// sessionmon declares, with its limits. Their names are in schemas
// (nats.go). EnsureTopology declares all but the events stream, which
// every process connects to first (EnsureEventStream); each process also
// declares what it uses with what it knows (ReplicasFor keeps the replicas
// a stream already has), through the functions of this file.

// TopologyConfig holds the limits EnsureTopology declares with.
type TopologyConfig struct {
	// Alerts configures the alerts stream (Alerts.Replicas is ignored:
	// Replicas applies).
	Alerts AlertStreamConfig
	// DLQMaxAge is how long dead letters are kept.
	DLQMaxAge time.Duration
	// LockTTL is the lifetime of a job lock nobody released.
	LockTTL time.Duration
	// SessionTTL is the dashboard session bucket's TTL when it is new; an
	// existing bucket keeps its own (EnsureDashboardBuckets).
	SessionTTL time.Duration
	// Replicas is the number of copies in a cluster (stream-replicas).
	Replicas int
}

// EnsureTopology creates or updates, with cfg.Replicas copies in a cluster
// (never fewer than they have), the alerts stream, the detectors' state
// snapshots, the dead letters, the notifier's redelivery stream and
// undeliverable alerts, the job locks, the suppression rules, detect's
// shared egresses, and the dashboard's sessions and API tokens. The owner of a deployment (serve) calls it at start.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, cfg TopologyConfig) error {
	r := cfg.Replicas
	ac := cfg.Alerts
	ac.Replicas = r
	if _, err := EnsureAlertStream(ctx, js, ac); err != nil {
		return err
	}
	if _, err := EnsureStateBucket(ctx, js, r); err != nil {
		return err
	}
	if _, err := EnsureDLQStream(ctx, js, cfg.DLQMaxAge, r); err != nil {
		return err
	}
	if _, _, err := EnsureNotifyState(ctx, js, r); err != nil {
		return err
	}
	if _, err := EnsureLockBucket(ctx, js, cfg.LockTTL, r); err != nil {
		return err
	}
	if _, err := EnsureSuppressionBucket(ctx, js, r); err != nil {
		return err
	}
	if _, err := EnsureNetworkBucket(ctx, js, r); err != nil {
		return err
	}
	if _, err := EnsureIntakeTokenBucket(ctx, js, r); err != nil {
		return err
	}
	return EnsureDashboardBuckets(ctx, js, cfg.SessionTTL, r)
}

// StreamConfig holds the limits of the events stream.
type StreamConfig struct {
	// MaxAge is how long the stream keeps an event (0: forever).
	MaxAge time.Duration
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped.
	Duplicates time.Duration
	// MaxBytes bounds the stream's size (0 or -1: unlimited). When reached,
	// new publishes are refused, so publishers see backpressure, never
	// silent loss of old events.
	MaxBytes int64
	// Replicas is the number of copies in a cluster (1 on a single server);
	// an existing stream with more keeps them.
	Replicas int
	// Partitions is the number of subject partitions (see
	// schemas.EventPartitionTransform); 0 stores events as published, with
	// no partition token. Changing it affects new events only.
	Partitions int
}

// DefaultStreamConfig is the events stream's configuration out of the box.
var DefaultStreamConfig = StreamConfig{
	MaxAge:     7 * 24 * time.Hour,
	Duplicates: 2 * time.Hour,
	Replicas:   1,
	Partitions: 16,
}

// EnsureEventStream creates the SESSIONMON_EVENTS stream, or updates it to
// cfg when it exists (never lowering its replicas, see ReplicasFor). It is safe to call at every start and from several
// processes at once. With cfg.Partitions > 0 the stream stores each event
// with a partition token derived from its subject (a subject transform).
func EnsureEventStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	maxBytes := cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	replicas, err := ReplicasFor(ctx, js, schemas.EventStream, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	sc := jetstream.StreamConfig{
		Name:        schemas.EventStream,
		Description: "sessionmon session events (schema v1)",
		Subjects:    []string{schemas.EventSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    maxBytes,
		// Room for a batched message; each event in it is still at most
		// schemas.MaxEventBytes, which every consumer checks.
		MaxMsgSize: MinBatchMsgSize,
		Duplicates: cfg.Duplicates,
		Replicas:   replicas,
	}
	if cfg.Partitions < 0 || cfg.Partitions > schemas.MaxEventPartitions {
		return nil, fmt.Errorf("stream %s: partitions must be between 0 and %d (got %d)", schemas.EventStream, schemas.MaxEventPartitions, cfg.Partitions)
	}
	if cfg.Partitions > 0 {
		src, dest := schemas.EventPartitionTransform(cfg.Partitions)
		sc.SubjectTransform = &jetstream.SubjectTransformConfig{Source: src, Destination: dest}
	}
	s, err := ensureStream(ctx, js, sc)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", schemas.EventStream, err)
	}
	return s, nil
}

// AlertStreamConfig holds the limits of the alerts stream.
type AlertStreamConfig struct {
	// MaxAge is how long the stream keeps an alert. It must cover detect's
	// replay window, whose already-sent alerts are read back from the
	// stream at start.
	MaxAge time.Duration
	// Duplicates is the window in which an alert id published again (a
	// retry, a replay) is dropped by the stream.
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster (1 on a single server,
	// stream-replicas); an existing stream with more keeps them.
	Replicas int
}

// DefaultAlertStreamConfig is the alerts stream's configuration out of the
// box.
var DefaultAlertStreamConfig = AlertStreamConfig{MaxAge: 90 * 24 * time.Hour, Duplicates: 24 * time.Hour, Replicas: 1}

// EnsureAlertStream creates the SESSIONMON_ALERTS stream, or updates it to
// cfg when it exists. It is safe to call at every start and from several
// processes at once.
func EnsureAlertStream(ctx context.Context, js jetstream.JetStream, cfg AlertStreamConfig) (jetstream.Stream, error) {
	replicas, err := ReplicasFor(ctx, js, schemas.AlertStream, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	s, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        schemas.AlertStream,
		Description: "sessionmon alerts (schemas.Alert JSON) and their status changes",
		Subjects:    []string{schemas.AlertSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.Duplicates,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", schemas.AlertStream, err)
	}
	return s, nil
}

// EnsureDLQStream creates or updates the dead-letter stream with replicas
// copies in a cluster (stream-replicas); it never lowers the replicas the
// stream has (ReplicasFor), so a worker that passes 1 keeps what serve
// set. Dead letters have their own short retention: they may hold what an
// app should not have sent.
func EnsureDLQStream(ctx context.Context, js jetstream.JetStream, maxAge time.Duration, replicas int) (jetstream.Stream, error) {
	replicas, err := ReplicasFor(ctx, js, schemas.DLQStream, replicas)
	if err != nil {
		return nil, err
	}
	s, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        schemas.DLQStream,
		Description: "sessionmon dead letters: events ingest refused, with the reason; values that look like personal data are redacted",
		Subjects:    []string{schemas.DLQSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		MaxAge:      maxAge,
		Duplicates:  2 * time.Hour,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", schemas.DLQStream, err)
	}
	return s, nil
}

// StateBucketStream is the stream that holds schemas.StateBucket.
const StateBucketStream = "OBJ_" + schemas.StateBucket

// EnsureStateBucket creates the detectors' state object store
// (schemas.StateBucket), or updates it, with replicas copies in a cluster
// (never fewer than it has, see ReplicasFor). It is safe to call at every
// start and from several processes at once.
func EnsureStateBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.ObjectStore, error) {
	replicas, err := ReplicasFor(ctx, js, StateBucketStream, replicas)
	if err != nil {
		return nil, fmt.Errorf("detect state bucket: %w", err)
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      schemas.StateBucket,
		Description: "sessionmon detect: the detectors' state, one snapshot per engine",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("detect state bucket %s: %w", schemas.StateBucket, err)
	}
	return obs, nil
}

// redeliverMaxAge bounds how long a queued redelivery waits for its
// webhook's consumer (a webhook removed from the configuration).
const redeliverMaxAge = 30 * 24 * time.Hour

// EnsureNotifyState creates or updates the notifier's bucket of
// undeliverable alerts and its redelivery stream with replicas copies in a
// cluster (stream-replicas); it never lowers the replicas they have
// (ReplicasFor).
func EnsureNotifyState(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, jetstream.Stream, error) {
	kvReplicas, err := ReplicasFor(ctx, js, BucketStream(schemas.UndeliverableBucket), replicas)
	if err != nil {
		return nil, nil, err
	}
	streamReplicas, err := ReplicasFor(ctx, js, schemas.RedeliverStream, replicas)
	if err != nil {
		return nil, nil, err
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      schemas.UndeliverableBucket,
		Description: "sessionmon notify: alerts a webhook gave up on",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    kvReplicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create bucket %s: %w", schemas.UndeliverableBucket, err)
	}
	st, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        schemas.RedeliverStream,
		Description: "sessionmon notify: alerts queued again by hand, per webhook",
		Subjects:    []string{schemas.RedeliverSubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      redeliverMaxAge,
		Replicas:    streamReplicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create stream %s: %w", schemas.RedeliverStream, err)
	}
	return kv, st, nil
}

// EnsureLeaseBucket opens detect's lease bucket, or creates it with ttl
// (every lease's: the TTL belongs to the bucket) and replicas copies in a
// cluster. It never changes a bucket that exists, so that every process
// keeps its leases by the same TTL: it returns the bucket's TTL, which may
// differ from ttl (delete the bucket, with every detect process stopped,
// to change it).
func EnsureLeaseBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, time.Duration, error) {
	kv, err := js.KeyValue(ctx, schemas.DetectLeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      schemas.DetectLeaseBucket,
			Description: "sessionmon detect: leases on the partitions and the source role",
			TTL:         ttl,
			History:     1,
			Replicas:    max(replicas, 1),
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, schemas.DetectLeaseBucket)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("lease bucket %s: %w", schemas.DetectLeaseBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("lease bucket %s: %w", schemas.DetectLeaseBucket, err)
	}
	if st.TTL() <= 0 {
		return nil, 0, fmt.Errorf("lease bucket %s has no TTL: delete it (nats kv del %s) with every detect process stopped", schemas.DetectLeaseBucket, schemas.DetectLeaseBucket)
	}
	return kv, st.TTL(), nil
}

// EnsureLockBucket creates the lock bucket, or updates it, with ttl (every
// lock's: the TTL belongs to the bucket) and replicas copies in a cluster;
// it never lowers the replicas the bucket has (see ReplicasFor).
func EnsureLockBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	replicas, err := ReplicasFor(ctx, js, BucketStream(schemas.LockBucket), replicas)
	if err != nil {
		return nil, fmt.Errorf("lock bucket: %w", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      schemas.LockBucket,
		Description: "sessionmon job locks (one instance of a job at a time)",
		TTL:         ttl,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lock bucket %s: %w", schemas.LockBucket, err)
	}
	return kv, nil
}

// EnsureSessionBucket creates or updates the dashboard's session bucket
// with ttl (the absolute session timeout) and replicas copies in a
// cluster; it never lowers the replicas the bucket has (ReplicasFor).
func EnsureSessionBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	replicas, err := ReplicasFor(ctx, js, BucketStream(schemas.DashboardSessionBucket), replicas)
	if err != nil {
		return nil, fmt.Errorf("session bucket: %w", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      schemas.DashboardSessionBucket,
		Description: "sessionmon dashboard sessions (key: SHA-256 of the session id)",
		TTL:         ttl,
		History:     1,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("session bucket %s: %w", schemas.DashboardSessionBucket, err)
	}
	return kv, nil
}

// EnsureTokenBucket creates or updates the dashboard's API token bucket
// with replicas copies in a cluster; it never lowers the replicas the
// bucket has (ReplicasFor).
func EnsureTokenBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	replicas, err := ReplicasFor(ctx, js, BucketStream(schemas.DashboardTokenBucket), replicas)
	if err != nil {
		return nil, fmt.Errorf("token bucket: %w", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      schemas.DashboardTokenBucket,
		Description: "sessionmon dashboard API tokens (key: SHA-256 of the token)",
		History:     1,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("token bucket %s: %w", schemas.DashboardTokenBucket, err)
	}
	return kv, nil
}

// EnsureDashboardBuckets creates or updates the dashboard's buckets of
// sessions and API tokens with replicas copies in a cluster
// (stream-replicas); it never lowers the replicas they have (ReplicasFor).
// An existing session bucket keeps its TTL (the absolute timeout the
// dashboard set: a shorter one would end sessions); a new one gets
// defaultTTL until the dashboard starts.
func EnsureDashboardBuckets(ctx context.Context, js jetstream.JetStream, defaultTTL time.Duration, replicas int) error {
	ttl := defaultTTL
	kv, err := js.KeyValue(ctx, schemas.DashboardSessionBucket)
	switch {
	case err == nil:
		st, err := kv.Status(ctx)
		if err != nil {
			return fmt.Errorf("session bucket %s: %w", schemas.DashboardSessionBucket, err)
		}
		ttl = st.TTL()
	case !errors.Is(err, jetstream.ErrBucketNotFound):
		return fmt.Errorf("session bucket %s: %w", schemas.DashboardSessionBucket, err)
	}
	if _, err := EnsureSessionBucket(ctx, js, ttl, replicas); err != nil {
		return err
	}
	_, err = EnsureTokenBucket(ctx, js, replicas)
	return err
}

// EnsureSuppressionBucket creates or updates the bucket of suppression
// rules (schemas.SuppressionBucket) with replicas copies in a cluster; it
// never lowers the replicas the bucket has (ReplicasFor). It is safe to
// call at every start and from several processes at once.
//
// Only sessionmon's own NATS users may write it: the service user (the
// dashboard writes, detect reads) and admin; the users apps publish events
// with have no $KV permission (natsauth.App), so a rule on the bus was put
// there by sessionmon or by someone holding its credentials. Detect still
// validates every value it reads and ignores invalid ones.
func EnsureSuppressionBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	replicas, err := ReplicasFor(ctx, js, BucketStream(schemas.SuppressionBucket), replicas)
	if err != nil {
		return nil, fmt.Errorf("suppression bucket: %w", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      schemas.SuppressionBucket,
		Description: "sessionmon suppression rules (key: rule id, value: schemas.SuppressionRule JSON)",
		History:     1,
		// A rule is at most a few kilobytes.
		MaxValueSize: 16 << 10,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("suppression bucket %s: %w", schemas.SuppressionBucket, err)
	}
	return kv, nil
}

// EnsureIntakeTokenBucket creates or updates the bucket of the HTTP
// intake's tokens (schemas.IntakeTokenBucket) with replicas copies in a
// cluster; it never lowers the replicas the bucket has (ReplicasFor).
func EnsureIntakeTokenBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	replicas, err := ReplicasFor(ctx, js, BucketStream(schemas.IntakeTokenBucket), replicas)
	if err != nil {
		return nil, fmt.Errorf("intake token bucket: %w", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:       schemas.IntakeTokenBucket,
		Description:  "sessionmon HTTP intake tokens (key: SHA-256 of the token; value: app, name, times and a MAC, never the token)",
		History:      1,
		MaxValueSize: 4 << 10,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("intake token bucket %s: %w", schemas.IntakeTokenBucket, err)
	}
	return kv, nil
}

// NetworkMaxAge is how long a detect engine's list of shared egresses
// stays in schemas.NetworkBucket without an update: an engine publishes
// every 30 s, so only a stopped one's list expires.
const NetworkMaxAge = time.Hour

// EnsureNetworkBucket creates or updates the bucket of the shared egresses
// detect learned (schemas.NetworkBucket) with replicas copies in a
// cluster; it never lowers the replicas the bucket has (ReplicasFor). Each
// detect engine writes its own key; the dashboard reads them. Entries
// expire after NetworkMaxAge. It is safe to call at every start and from
// several processes at once.
func EnsureNetworkBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	replicas, err := ReplicasFor(ctx, js, BucketStream(schemas.NetworkBucket), replicas)
	if err != nil {
		return nil, fmt.Errorf("network bucket: %w", err)
	}
	kv, err := ensureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      schemas.NetworkBucket,
		Description: "sessionmon shared egresses per detect engine (key: unit-<name>, value: detect.NetworkList JSON)",
		History:     1,
		TTL:         NetworkMaxAge,
		// 500 networks of about 400 bytes each.
		MaxValueSize: 1 << 20,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("network bucket %s: %w", schemas.NetworkBucket, err)
	}
	return kv, nil
}

// ensureStream creates the stream of cfg, or updates it when it differs
// from cfg in what cfg sets. A stream already as cfg wants is left alone:
// every process declares the streams it uses at start, and updating a
// stream while another process creates a consumer on it races inside
// nats-server 2.15 (the update writes what the consumer's creation
// reads).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if err == nil && streamUpToDate(s.CachedInfo().Config, cfg) {
		return s, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

// streamUpToDate reports whether the stream configuration have holds
// every setting want gives (want's zero values are the server's defaults,
// which have may show filled in).
func streamUpToDate(have, want jetstream.StreamConfig) bool {
	transform := func(t *jetstream.SubjectTransformConfig) jetstream.SubjectTransformConfig {
		if t == nil {
			return jetstream.SubjectTransformConfig{}
		}
		return *t
	}
	return have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		have.Storage == want.Storage &&
		have.Retention == want.Retention &&
		have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge &&
		(want.Duplicates == 0 || want.Duplicates == have.Duplicates) &&
		(want.MaxBytes == 0 || want.MaxBytes == have.MaxBytes) &&
		(want.MaxMsgSize == 0 || want.MaxMsgSize == have.MaxMsgSize) &&
		max(want.Replicas, 1) == max(have.Replicas, 1) &&
		have.AllowDirect == want.AllowDirect &&
		have.AllowRollup == want.AllowRollup &&
		have.DenyDelete == want.DenyDelete &&
		transform(have.SubjectTransform) == transform(want.SubjectTransform)
}

// ensureKeyValue creates the key-value bucket of cfg, or updates it when
// its stream differs from cfg in what cfg sets; a bucket already as cfg
// wants is left alone (see ensureStream).
func ensureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		if st, serr := js.Stream(ctx, BucketStream(cfg.Bucket)); serr == nil {
			have := st.CachedInfo().Config
			if have.Description == cfg.Description && have.MaxAge == cfg.TTL &&
				have.MaxMsgsPerSubject == int64(max(cfg.History, 1)) &&
				(cfg.MaxValueSize == 0 || have.MaxMsgSize == cfg.MaxValueSize) &&
				have.Storage == cfg.Storage && max(have.Replicas, 1) == max(cfg.Replicas, 1) {
				return kv, nil
			}
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, err
	}
	return js.CreateOrUpdateKeyValue(ctx, cfg)
}
