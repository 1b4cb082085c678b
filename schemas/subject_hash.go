package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
)

// SubjectHash names a data subject without its pseudonym: "sha256:" and
// the hex SHA-256 of the pseudonym. The deletion log, erasure requests and
// the SubjectHashHeader of NATS messages use it, so that an erasure can be
// proven, and a subject's messages found, without keeping the pseudonym.
func SubjectHash(pseudonym string) string {
	sum := sha256.Sum256([]byte(pseudonym))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// MentionsPseudonym reports whether b contains pseudonym as a whole token:
// not preceded or followed by a character a pseudonym may contain, so that
// "sub_0001" is not found in "sub_00012" or "k1:sub_0001". An empty
// pseudonym is never found.
func MentionsPseudonym(b []byte, pseudonym string) bool {
	if pseudonym == "" {
		return false
	}
	p := []byte(pseudonym)
	for off := 0; off <= len(b)-len(p); {
		i := bytes.Index(b[off:], p)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(p)
		if (start == 0 || !pseudonymPattern.set[b[start-1]]) && (end == len(b) || !pseudonymPattern.set[b[end]]) {
			return true
		}
		off = start + 1
	}
	return false
}
