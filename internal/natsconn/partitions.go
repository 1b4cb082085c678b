package natsconn

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

// StreamPartitions returns the partition count of the events stream's
// subject transform (schemas.EventPartitionTransform), 0 when it has none.
func StreamPartitions(info *jetstream.StreamInfo) int {
	if st := info.Config.SubjectTransform; st != nil {
		if n, ok := schemas.EventPartitionsOf(st.Destination); ok {
			return n
		}
	}
	return 0
}

// EventPartitions reads the events stream's partition count.
func EventPartitions(ctx context.Context, js jetstream.JetStream) (int, error) {
	s, err := js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return 0, fmt.Errorf("events stream %s: %w", schemas.EventStream, err)
	}
	return StreamPartitions(s.CachedInfo()), nil
}

// EventStreamCache reads the events stream's configuration at most once
// per TTL, for those who look at it on every request (the layout
// responder, the HTTP intake). It is safe for concurrent use.
type EventStreamCache struct {
	js  jetstream.JetStream
	ttl time.Duration

	mu   sync.Mutex
	info *jetstream.StreamInfo
	at   time.Time
}

// NewEventStreamCache returns a cache of the events stream's information
// that reads it again once it is older than ttl.
func NewEventStreamCache(js jetstream.JetStream, ttl time.Duration) *EventStreamCache {
	return &EventStreamCache{js: js, ttl: ttl}
}

// Info returns the events stream's information, read within the TTL. When
// it cannot be read again, Info returns the error with the last
// information read (nil if none).
func (c *EventStreamCache) Info(ctx context.Context) (*jetstream.StreamInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.info != nil && time.Since(c.at) < c.ttl {
		return c.info, nil
	}
	s, err := c.js.Stream(ctx, schemas.EventStream)
	if err != nil {
		return c.info, fmt.Errorf("events stream %s: %w", schemas.EventStream, err)
	}
	c.info, c.at = s.CachedInfo(), time.Now()
	return c.info, nil
}
