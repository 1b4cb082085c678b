package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of new hashes: 64 MiB, 3 passes, 2 lanes, a 16-byte
// salt and a 32-byte key, above OWASP's minimums for argon2id. Verification
// reads the parameters from the hash, so stronger ones can be rolled out
// without invalidating existing hashes.
const (
	argonMemoryKiB = 64 * 1024
	argonTime      = 3
	argonThreads   = 2
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Bounds on the parameters of a hash read from the config, so a hostile or
// mistyped hash cannot make a login cost gigabytes or minutes.
const (
	maxArgonMemoryKiB = 1024 * 1024
	maxArgonTime      = 16
	maxArgonThreads   = 16
	minArgonKeyLen    = 16
	maxArgonKeyLen    = 64
	minArgonSaltLen   = 8
	maxArgonSaltLen   = 64
)

// MinPasswordLength is the shortest password `sessionmon user add` accepts.
const MinPasswordLength = 12

// maxPasswordBytes bounds what is hashed, so a login form cannot post
// megabytes into the hash function.
const maxPasswordBytes = 1024

// ErrPasswordHash is returned for a password hash that is not an argon2id
// PHC string within the supported parameters.
var ErrPasswordHash = errors.New("password hash")

// argonParams are the parameters of one argon2id hash.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// HashPassword returns the argon2id hash of password as a PHC string:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash> (unpadded standard base64).
func HashPassword(password string) (string, error) {
	if len(password) > maxPasswordBytes {
		return "", fmt.Errorf("password: must be at most %d bytes", maxPasswordBytes)
	}
	return hashPasswordWith(password, argonMemoryKiB, argonTime, argonThreads), nil
}

func hashPasswordWith(password string, memory, passes uint32, threads uint8) string {
	salt := make([]byte, argonSaltLen)
	// crypto/rand.Read never returns an error (it crashes the program instead).
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, passes, memory, threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memory, passes, threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// parsePasswordHash parses an argon2id PHC string. Errors say what is wrong
// and never echo the hash.
func parsePasswordHash(phc string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, fmt.Errorf("%w: want $argon2id$v=19$m=...,t=...,p=...$salt$hash", ErrPasswordHash)
	}
	if parts[1] != "argon2id" {
		return p, fmt.Errorf("%w: algorithm must be argon2id", ErrPasswordHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: version must be v=%d", ErrPasswordHash, argon2.Version)
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || seen[k] {
			return p, fmt.Errorf("%w: parameters must be m=<KiB>,t=<passes>,p=<lanes>", ErrPasswordHash)
		}
		seen[k] = true
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				n = 0
			}
			p.threads = uint8(n)
		default:
			return p, fmt.Errorf("%w: unknown parameter %q (want m, t, p)", ErrPasswordHash, k)
		}
	}
	switch {
	case p.threads < 1 || p.threads > maxArgonThreads:
		return p, fmt.Errorf("%w: p must be 1-%d", ErrPasswordHash, maxArgonThreads)
	case p.time < 1 || p.time > maxArgonTime:
		return p, fmt.Errorf("%w: t must be 1-%d", ErrPasswordHash, maxArgonTime)
	case p.memory < 8*uint32(p.threads) || p.memory > maxArgonMemoryKiB:
		return p, fmt.Errorf("%w: m must be between 8*p and %d KiB", ErrPasswordHash, maxArgonMemoryKiB)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < minArgonSaltLen || len(p.salt) > maxArgonSaltLen {
		return p, fmt.Errorf("%w: salt must be %d-%d bytes of unpadded base64", ErrPasswordHash, minArgonSaltLen, maxArgonSaltLen)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < minArgonKeyLen || len(p.key) > maxArgonKeyLen {
		return p, fmt.Errorf("%w: hash must be %d-%d bytes of unpadded base64", ErrPasswordHash, minArgonKeyLen, maxArgonKeyLen)
	}
	return p, nil
}

// verify reports whether password matches, comparing in constant time.
func (p argonParams) verify(password string) bool {
	tooLong := len(password) > maxPasswordBytes
	if tooLong {
		// Still do the work, so the answer takes as long as any other.
		password = password[:maxPasswordBytes]
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1 && !tooLong
}

// VerifyPassword reports whether password matches the argon2id PHC hash.
func VerifyPassword(phc, password string) (bool, error) {
	p, err := parsePasswordHash(phc)
	if err != nil {
		return false, err
	}
	return p.verify(password), nil
}

// Password checks at once: each takes the memory of its hash (64 MiB with
// the default parameters), so they are bounded. A sign-in that finds every
// slot taken waits up to passwordCheckWait, then gets 503 with
// Retry-After.
const (
	maxPasswordChecks = 4
	passwordCheckWait = 2 * time.Second
)
