package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// deadLetterSubjectHashes returns the schemas.SubjectHash of the data
// subject a dead letter's body (already redacted) names in its subject
// field, when that is a valid pseudonym; nil otherwise. An erasure finds
// the dead letter by it (PurgeSubjectDeadLetters) even when the body spells
// the pseudonym with JSON escapes. Only the redacted body is read: a
// subject field that looked like personal data (a phone number) is
// redacted there, and its hash, which could be reversed by trying every
// number, never reaches the header.
func deadLetterSubjectHashes(redactedBody []byte) []string {
	var e struct {
		Subject string `json:"subject"`
	}
	if json.Unmarshal(redactedBody, &e) != nil || !schemas.ValidPseudonym(e.Subject) {
		return nil
	}
	return []string{schemas.SubjectHash(e.Subject)}
}

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
	err := natsconn.ScanStream(ctx, js, DLQStream, func(seq uint64, m natsconn.ScannedMsg) error {
		if natsconn.Mentions(m, subject) {
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
	n, err := natsconn.SecureDeleteMessages(ctx, js, DLQStream, seqs)
	if err != nil {
		return n, fmt.Errorf("purge subject dead letters: %w", err)
	}
	return n, nil
}
