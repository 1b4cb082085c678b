package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// API tokens authenticate SIEMs and scripts on /api/v1 with
// "Authorization: Bearer smt_...". A token is its own credential: it needs
// no CSRF token (a browser never sends it on its own) and no
// re-authentication (there is no password behind it to re-enter); it is
// scoped to a role, expires, and reaches nothing outside /api/v1.

// TokenPrefix starts every API token, so secret scanners recognise them.
const TokenPrefix = "smt_"

// tokenBytes is the entropy of a token: 256 bits.
const tokenBytes = 32

// Token lifetimes: the default offered on the form and the longest allowed.
const (
	DefaultTokenTTL = 90 * 24 * time.Hour
	MaxTokenTTL     = 365 * 24 * time.Hour
)

// maxTokenNameLen bounds a token's name (a label such as "splunk").
const maxTokenNameLen = 64

// tokenIDLen is how many hex characters of the hash name a token on the
// tokens page and in the audit log: enough to be unique, useless to guess
// the token.
const tokenIDLen = 16

var errNoToken = errors.New("no such API token")

// apiToken is what the server keeps about a token (never the token).
type apiToken struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	CreatedBy string    `json:"created_by"`
	// MAC authenticates every field above and the record's key
	// (record_mac.go).
	MAC []byte `json:"mac"`
	// ID is the first tokenIDLen hex characters of the hash (not stored).
	ID string `json:"-"`
	// Refused marks a record whose MAC does not verify (list only): it
	// authenticates nothing and only its ID is known.
	Refused bool `json:"-"`
}

type tokenStore struct {
	kv     jetstream.KeyValue
	mac    *recordMAC
	logger *slog.Logger
}

// newTokenStore declares the token bucket, keeping the replicas it has
// (natsconn.EnsureDashboardBuckets sets them).
func newTokenStore(ctx context.Context, js jetstream.JetStream, mac *recordMAC, logger *slog.Logger) (*tokenStore, error) {
	kv, err := natsconn.EnsureTokenBucket(ctx, js, 1)
	if err != nil {
		return nil, err
	}
	return &tokenStore{kv: kv, mac: mac, logger: logger}, nil
}

func tokenKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// validTokenShape reports whether raw looks like a token this server issues.
func validTokenShape(raw string) bool {
	rest, ok := strings.CutPrefix(raw, TokenPrefix)
	return ok && validSessionID(rest)
}

// create makes a new token and returns it; it is shown once and never
// stored.
func (ts *tokenStore) create(ctx context.Context, t apiToken) (string, apiToken, error) {
	raw := TokenPrefix + newRandomString(tokenBytes)
	key := tokenKey(raw)
	t.MAC = ts.mac.sum(tokenMACDomain, tokenMACFields(key, t)...)
	b, err := json.Marshal(t)
	if err != nil {
		return "", t, fmt.Errorf("create API token: %w", err)
	}
	if _, err := ts.kv.Create(ctx, key, b); err != nil {
		return "", t, fmt.Errorf("create API token: %w", err)
	}
	t.ID = key[:tokenIDLen]
	return raw, t, nil
}

// lookup returns the token raw names, or errNoToken. Expiry is the
// caller's to check (it has the clock).
func (ts *tokenStore) lookup(ctx context.Context, raw string) (apiToken, error) {
	var t apiToken
	if !validTokenShape(raw) {
		return t, errNoToken
	}
	key := tokenKey(raw)
	e, err := ts.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return t, errNoToken
	}
	if err != nil {
		return t, fmt.Errorf("look up API token: %w", err)
	}
	t, err = ts.decode(key, e.Value())
	if err != nil {
		ts.refused(key, err)
		return apiToken{}, errNoToken
	}
	return t, nil
}

// decode reads the stored token under key and checks its MAC.
func (ts *tokenStore) decode(key string, b []byte) (apiToken, error) {
	var t apiToken
	if err := json.Unmarshal(b, &t); err != nil {
		return apiToken{}, fmt.Errorf("decode: %w", err)
	}
	if !ts.mac.verify(t.MAC, tokenMACDomain, tokenMACFields(key, t)...) {
		return apiToken{}, errBadMAC
	}
	if len(key) >= tokenIDLen {
		t.ID = key[:tokenIDLen]
	}
	return t, nil
}

// refused logs a token record that is not used: not made by a dashboard
// holding the record key (someone wrote to the bucket, or the key
// changed). Only the token's id (a prefix of the hash) is logged.
func (ts *tokenStore) refused(key string, err error) {
	id := key
	if len(id) > tokenIDLen {
		id = id[:tokenIDLen]
	}
	ts.logger.Warn("API token record refused", slog.String("token_id", id), slog.String("reason", err.Error()))
}

// list returns every token, newest first, then the records that are
// refused (their MAC does not verify) with only their ID, so an admin can
// delete them.
func (ts *tokenStore) list(ctx context.Context) ([]apiToken, error) {
	keys, err := ts.keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apiToken, 0, len(keys))
	for _, k := range keys {
		e, err := ts.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list API tokens: %w", err)
		}
		t, err := ts.decode(k, e.Value())
		if err != nil {
			ts.refused(k, err)
			t = apiToken{ID: k[:min(len(k), tokenIDLen)], Refused: true}
		}
		out = append(out, t)
	}
	slices.SortStableFunc(out, func(a, b apiToken) int {
		if a.Refused != b.Refused {
			if a.Refused {
				return 1
			}
			return -1
		}
		return b.Created.Compare(a.Created)
	})
	return out, nil
}

func (ts *tokenStore) keys(ctx context.Context) ([]string, error) {
	keys, err := ts.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return keys, nil
}

// revoke deletes the token whose id is id and returns it, or errNoToken.
func (ts *tokenStore) revoke(ctx context.Context, id string) (apiToken, error) {
	var t apiToken
	if len(id) != tokenIDLen {
		return t, errNoToken
	}
	keys, err := ts.keys(ctx)
	if err != nil {
		return t, err
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, id) {
			continue
		}
		if e, err := ts.kv.Get(ctx, k); err == nil {
			// A refused record's fields are anyone's writing: none of
			// them reaches the audit log.
			if vt, err := ts.decode(k, e.Value()); err == nil {
				t = vt
			}
		}
		t.ID = id
		if err := ts.kv.Purge(ctx, k); err != nil {
			return t, fmt.Errorf("revoke API token: %w", err)
		}
		return t, nil
	}
	return t, errNoToken
}
