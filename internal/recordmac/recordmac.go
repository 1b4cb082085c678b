// Package recordmac authenticates records sessionmon keeps in JetStream
// key-value buckets. Anyone allowed to write to a bucket can write a
// record, so a record that grants something (a dashboard session, an API
// token, an intake token) carries a MAC over every field and the key it is
// stored under, made with a key that never goes to NATS. A record whose MAC
// does not verify is treated as absent.
package recordmac

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

// MAC computes and checks record MACs. It is safe for concurrent use (it
// holds only the key).
type MAC struct{ key []byte }

// New returns a MAC with key; a nil key is a random one (records then
// verify only in this process).
func New(key []byte) *MAC {
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &MAC{key: key}
}

// Sum is the HMAC-SHA256 of domain and fields, encoded canonically: each
// as its length (uvarint) then its bytes, so no two lists of fields encode
// the same. The domain keeps one kind of record from passing as another.
func (m *MAC) Sum(domain string, fields ...string) []byte {
	h := hmac.New(sha256.New, m.key)
	var n [binary.MaxVarintLen64]byte
	for _, f := range append([]string{domain}, fields...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return h.Sum(nil)
}

// Verify reports whether mac is the MAC of domain and fields, in constant
// time.
func (m *MAC) Verify(mac []byte, domain string, fields ...string) bool {
	return len(mac) == sha256.Size && hmac.Equal(mac, m.Sum(domain, fields...))
}

// Time is the canonical form of t for a MAC: nanoseconds since the epoch
// (the JSON form of a time.Time keeps them exactly).
func Time(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }
