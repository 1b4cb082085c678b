package ingest

import (
	"encoding/json"

	"github.com/sessionmon/sessionmon/schemas"
)

// deadLetterSubjectHashes returns the schemas.SubjectHash of the data
// subject a dead letter's body (already redacted) names in its subject
// field, when that is a valid pseudonym; nil otherwise. An erasure finds
// the dead letter by it (natsconn.PurgeSubjectDeadLetters) even when the body spells
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
