package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// sessionIDBytes is the entropy of a session id: 256 bits.
const sessionIDBytes = 32

// sessionIDLen is the length of a session id as sent in the cookie
// (unpadded base64url of sessionIDBytes).
var sessionIDLen = base64.RawURLEncoding.EncodedLen(sessionIDBytes)

// errNoSession is a session id the store does not hold: never issued,
// logged out or expired.
var errNoSession = errors.New("no such session")

// session is what the server keeps about a signed-in user. The session id
// itself is not stored: the key is its SHA-256, so a copy of the bucket
// yields no cookie that works.
type session struct {
	User string `json:"user"`
	// CSRF is the synchronizer token every state-changing request of this
	// session carries.
	CSRF string `json:"csrf"`
	// Created is the sign-in time (absolute timeout), LastSeen the latest
	// request (idle timeout), AuthAt the latest password entry (sign-in or
	// re-authentication).
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	AuthAt   time.Time `json:"auth_at"`
	// MAC authenticates every field above and the record's key
	// (record_mac.go).
	MAC []byte `json:"mac"`
}

// sessionStore keeps sessions in a JetStream key-value bucket.
type sessionStore struct {
	kv     jetstream.KeyValue
	mac    *recordMAC
	logger *slog.Logger
}

// newSessionStore declares the session bucket with absolute as its TTL,
// keeping the replicas it has (natsconn.EnsureDashboardBuckets sets them).
func newSessionStore(ctx context.Context, js jetstream.JetStream, absolute time.Duration, mac *recordMAC, logger *slog.Logger) (*sessionStore, error) {
	kv, err := natsconn.EnsureSessionBucket(ctx, js, absolute, 1)
	if err != nil {
		return nil, err
	}
	return &sessionStore{kv: kv, mac: mac, logger: logger}, nil
}

// newRandomString returns n random bytes, unpadded base64url.
func newRandomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it crashes the program instead).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey is the bucket key of a session id.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// validSessionID reports whether id has the shape of an id this server
// issues, so a malformed cookie never reaches the store.
func validSessionID(id string) bool {
	if len(id) != sessionIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// create stores s under a new session id and returns the id. Create fails
// if the key exists, so an id is never reused.
func (st *sessionStore) create(ctx context.Context, s session) (string, error) {
	id := newRandomString(sessionIDBytes)
	b, err := st.encode(sessionKey(id), s)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	if _, err := st.kv.Create(ctx, sessionKey(id), b); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return id, nil
}

// get returns the session of id, or errNoSession.
func (st *sessionStore) get(ctx context.Context, id string) (session, error) {
	var s session
	if !validSessionID(id) {
		return s, errNoSession
	}
	key := sessionKey(id)
	e, err := st.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s, errNoSession
	}
	if err != nil {
		return s, fmt.Errorf("get session: %w", err)
	}
	s, err = st.decode(key, e.Value())
	if err != nil {
		// Not made by a dashboard holding the record key: someone wrote
		// to the bucket, or the key changed. Logged without the key (a
		// hash of the session id).
		st.logger.Warn("session record refused", slog.String("reason", err.Error()))
		return session{}, errNoSession
	}
	return s, nil
}

// encode returns the stored form of s under key, with its MAC.
func (st *sessionStore) encode(key string, s session) ([]byte, error) {
	s.MAC = st.mac.sum(sessionMACDomain, sessionMACFields(key, s)...)
	return json.Marshal(s)
}

// decode reads the stored session under key and checks its MAC.
func (st *sessionStore) decode(key string, b []byte) (session, error) {
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return session{}, fmt.Errorf("decode: %w", err)
	}
	if !st.mac.verify(s.MAC, sessionMACDomain, sessionMACFields(key, s)...) {
		return session{}, errBadMAC
	}
	return s, nil
}

// update writes s back under id, but only while the session exists: a
// request racing a logout must not bring the session back.
func (st *sessionStore) update(ctx context.Context, id string, s session) error {
	key := sessionKey(id)
	b, err := st.encode(key, s)
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	e, err := st.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return errNoSession
	}
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	if _, err := st.kv.Update(ctx, key, b, e.Revision()); err != nil {
		// A concurrent request of the same session updated it first; its
		// write is as good as ours.
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		return fmt.Errorf("update session: %w", err)
	}
	return nil
}

// remove ends the session of id. Purge drops the value and its history.
func (st *sessionStore) remove(ctx context.Context, id string) error {
	if !validSessionID(id) {
		return nil
	}
	if err := st.kv.Purge(ctx, sessionKey(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("remove session: %w", err)
	}
	return nil
}

// expiry says whether s has expired at now under cfg, and why
// ("idle_timeout" or "absolute_timeout"); "" while it is valid.
func (s session) expiry(now time.Time, cfg Config) string {
	switch {
	case now.Sub(s.Created) >= cfg.AbsoluteTimeout:
		return "absolute_timeout"
	case now.Sub(s.LastSeen) >= cfg.IdleTimeout:
		return "idle_timeout"
	}
	return ""
}
