// Package natsconn connects to NATS, runs the embedded server, and declares
// sessionmon's JetStream streams.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

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
		MaxMsgSize:  schemas.MaxEventBytes,
		Duplicates:  cfg.Duplicates,
		Replicas:    replicas,
	}
	if cfg.Partitions < 0 || cfg.Partitions > schemas.MaxEventPartitions {
		return nil, fmt.Errorf("stream %s: partitions must be between 0 and %d (got %d)", schemas.EventStream, schemas.MaxEventPartitions, cfg.Partitions)
	}
	if cfg.Partitions > 0 {
		src, dest := schemas.EventPartitionTransform(cfg.Partitions)
		sc.SubjectTransform = &jetstream.SubjectTransformConfig{Source: src, Destination: dest}
	}
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", schemas.EventStream, err)
	}
	return s, nil
}

// Replicas. The stream-replicas option applies to every stream and
// key-value bucket of sessionmon. `sessionmon serve` declares them all with
// it at start; the other processes (ingest, detect, notify alone) and the
// code paths that declare a stream or bucket again later pass what they
// know, often 1. So that none of them takes copies away from a cluster,
// a declaration never lowers the count a stream already has (see
// ReplicasFor): lower it by hand (nats stream edit --replicas).

// ReplicasFor returns the replica count to declare the stream called name
// with: want (at least 1), or the count the existing stream has when that
// is more.
func ReplicasFor(ctx context.Context, js jetstream.JetStream, name string, want int) (int, error) {
	want = max(want, 1)
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return want, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: replicas: %w", name, err)
	}
	return max(want, s.CachedInfo().Config.Replicas), nil
}

// BucketStream returns the name of the stream that holds the key-value
// bucket called bucket.
func BucketStream(bucket string) string { return "KV_" + bucket }
