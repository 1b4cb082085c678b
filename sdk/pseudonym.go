package sdk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
)

// MinKeyBytes is the shortest pseudonymization key NewPseudonymizer
// accepts: 256 bits.
const MinKeyBytes = 32

// maxKeyIDLen is the longest key id; with the 22-character digest a
// pseudonym stays within the schema's 128 characters.
const maxKeyIDLen = 16

// digestBytes is how much of each HMAC a pseudonym keeps: 128 bits, written
// as 22 base64url characters.
const digestBytes = 16

// Pseudonym is a keyed, one-way pseudonym of an identifier: "<keyID>:<digest>".
// Only a Pseudonymizer makes non-zero values, so an Event field of this type
// cannot hold a raw user id, session id, device id, token or address by
// accident. The zero value means "absent".
type Pseudonym struct {
	s string
}

// String returns the pseudonym as sent on the wire, or "" for the zero value.
func (p Pseudonym) String() string { return p.s }

// IsZero reports whether p is absent.
func (p Pseudonym) IsZero() bool { return p.s == "" }

// MarshalText writes the pseudonym as text, so an Event encodes cleanly in
// logs and JSON. There is deliberately no UnmarshalText: a Pseudonym is made
// by a Pseudonymizer, never parsed.
func (p Pseudonym) MarshalText() ([]byte, error) { return []byte(p.s), nil }

// domain separates the kinds of pseudonyms: each kind uses its own key,
// derived from the secret, so the same raw input gives unrelated outputs
// as a subject, a session, a device, a token or an address.
type domain int

const (
	domainSubject domain = iota
	domainSession
	domainDevice
	domainToken
	domainIP
	domainCount
)

var domainLabels = [domainCount]string{
	domainSubject: "subject",
	domainSession: "session",
	domainDevice:  "device",
	domainToken:   "token",
	domainIP:      "ip",
}

// Pseudonymizer turns identifiers into Pseudonyms with HMAC-SHA256 under a
// secret key that never leaves the app. The same key and input always give
// the same pseudonym, so sessionmon can correlate events of one subject
// without learning who it is; without the key, a pseudonym cannot be
// reversed or recomputed from a guessed identifier.
//
// The key id is written in front of every pseudonym. To rotate, create a
// Pseudonymizer with a new key and a new key id: pseudonyms made under the
// new key are new identities to sessionmon, and the key id shows which key
// made a value.
//
// The construction, for other SDKs to match: with kind one of "subject",
// "session", "device", "token" or "ip",
//
//	kindKey   = HMAC-SHA256(key, "sessionmon pseudonym v1 " + kind)
//	pseudonym = keyID + ":" + base64url-no-padding(HMAC-SHA256(kindKey, raw)[:16])
//
// where raw is the identifier's bytes, or for "ip" the address's 4 (IPv4)
// or 16 (IPv6) bytes.
//
// A Pseudonymizer is immutable and safe for concurrent use.
type Pseudonymizer struct {
	keyID string
	keys  [domainCount][]byte
}

// NewPseudonymizer returns a Pseudonymizer for key, named keyID. keyID is
// 1-16 characters of A-Z a-z 0-9; key is a secret of at least MinKeyBytes
// random bytes (for example 32 bytes from crypto/rand, stored with the app's
// other secrets). The key is not retained: per-kind keys are derived from it.
func NewPseudonymizer(keyID string, key []byte) (*Pseudonymizer, error) {
	if !validKeyID(keyID) {
		return nil, fmt.Errorf("%w: key id %q must be 1-%d characters of A-Z a-z 0-9", ErrKey, truncateID(keyID), maxKeyIDLen)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: key %q must be at least %d bytes (got %d)", ErrKey, keyID, MinKeyBytes, len(key))
	}
	p := &Pseudonymizer{keyID: keyID}
	for d := range domainCount {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("sessionmon pseudonym v1 " + domainLabels[d]))
		p.keys[d] = mac.Sum(nil)
	}
	return p, nil
}

// KeyID returns the key id written in front of every pseudonym.
func (p *Pseudonymizer) KeyID() string { return p.keyID }

// Subject pseudonymizes the identifier of the authenticated principal, such
// as a user id. Use a stable identifier; an e-mail address changes and has
// spellings. An empty raw gives the zero Pseudonym.
func (p *Pseudonymizer) Subject(raw string) Pseudonym { return p.make(domainSubject, []byte(raw)) }

// Session pseudonymizes a session id. An empty raw gives the zero Pseudonym.
func (p *Pseudonymizer) Session(raw string) Pseudonym { return p.make(domainSession, []byte(raw)) }

// Device pseudonymizes a device identifier, such as the value of a
// long-lived device cookie. An empty raw gives the zero Pseudonym.
func (p *Pseudonymizer) Device(raw string) Pseudonym { return p.make(domainDevice, []byte(raw)) }

// TokenID fingerprints a token: pass its jti, or the whole token when it has
// none. The token itself never leaves the app. An empty input gives the zero
// Pseudonym.
func (p *Pseudonymizer) TokenID(rawTokenOrJTI string) Pseudonym {
	return p.make(domainToken, []byte(rawTokenOrJTI))
}

// IPHash pseudonymizes an address: equal addresses give equal values, so
// sessionmon can tell "same address" from "same network" without learning
// the address. IPv4-mapped IPv6 addresses hash as IPv4; zones are ignored.
// An invalid addr gives the zero Pseudonym.
func (p *Pseudonymizer) IPHash(addr netip.Addr) Pseudonym {
	if !addr.IsValid() {
		return Pseudonym{}
	}
	return p.make(domainIP, addr.Unmap().WithZone("").AsSlice())
}

func (p *Pseudonymizer) make(d domain, raw []byte) Pseudonym {
	if len(raw) == 0 {
		return Pseudonym{}
	}
	mac := hmac.New(sha256.New, p.keys[d])
	mac.Write(raw)
	var sum [sha256.Size]byte
	digest := mac.Sum(sum[:0])[:digestBytes]
	b := make([]byte, 0, len(p.keyID)+1+base64.RawURLEncoding.EncodedLen(digestBytes))
	b = append(b, p.keyID...)
	b = append(b, ':')
	b = base64.RawURLEncoding.AppendEncode(b, digest)
	return Pseudonym{s: string(b)}
}

func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// truncateID shortens an untrusted string quoted in an error.
func truncateID(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
