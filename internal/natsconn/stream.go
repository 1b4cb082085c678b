// Package natsconn connects to NATS, runs the embedded server, and declares
// sessionmon's JetStream streams.
package natsconn

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

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
