package natsconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("lock held by another process")

// TryLock takes the lock called name, shared by every process on the same
// NATS, or returns ErrLocked. A holder that dies without releasing it
// loses the lock after ttl, which must be longer than the job it guards.
// release gives it back; it is safe to call once. The bucket keeps the
// replicas it has (EnsureLockBucket sets them).
func TryLock(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration) (release func(), err error) {
	kv, err := EnsureLockBucket(ctx, js, ttl, 1)
	if err != nil {
		return nil, err
	}
	rev, err := kv.Create(ctx, name, []byte(time.Now().UTC().Format(time.RFC3339)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("take lock %s: %w", name, err)
	}
	return func() {
		// Delete only our own revision; a lock that expired and was
		// taken by another process stays theirs.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = kv.Delete(ctx, name, jetstream.LastRevision(rev))
	}, nil
}
