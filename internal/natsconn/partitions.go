package natsconn

import (
	"context"
	"fmt"

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
