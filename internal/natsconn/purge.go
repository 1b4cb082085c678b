package natsconn

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/schemas"
)

// PurgeSubjectDeadLetters deletes from SESSIONMON_DLQ every dead letter
// about subject and returns how many it deleted: those that carry its
// schemas.SubjectHashHeader and, for dead letters written before that
// header, those whose body or headers name its pseudonym. Messages are
// deleted with JetStream's secure delete, which overwrites them on disk. A
// missing stream has nothing to delete.
func PurgeSubjectDeadLetters(ctx context.Context, js jetstream.JetStream, subject string) (uint64, error) {
	if !schemas.ValidPseudonym(subject) {
		return 0, fmt.Errorf("purge subject dead letters: not a valid pseudonym")
	}
	var seqs []uint64
	err := ScanStream(ctx, js, schemas.DLQStream, func(seq uint64, m ScannedMsg) error {
		if Mentions(m, subject) {
			seqs = append(seqs, seq)
		}
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("purge subject dead letters: %w", err)
	}
	n, err := SecureDeleteMessages(ctx, js, schemas.DLQStream, seqs)
	if err != nil {
		return n, fmt.Errorf("purge subject dead letters: %w", err)
	}
	return n, nil
}
