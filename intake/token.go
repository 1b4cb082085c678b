package intake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/recordmac"
)

// TokenPrefix starts every intake token, so secret scanners recognise them.
const TokenPrefix = "smi_"

// tokenBytes is the entropy of a token: 256 bits, written as 43 base64url
// characters after the prefix.
const tokenBytes = 32

// Token lifetimes: the default and the longest allowed.
const (
	DefaultTokenTTL = 365 * 24 * time.Hour
	MaxTokenTTL     = 2 * 365 * 24 * time.Hour
)

// TokenIDLen is how many hex characters of the token's hash name it in
// lists, logs and revocations: enough to be unique, useless to guess the
// token.
const TokenIDLen = 16

// maxTokenNameLen bounds a token's name (a label such as "web-eu").
const maxTokenNameLen = 64

// tokenMACDomain keeps an intake token record from passing as any other
// MAC'd record.
const tokenMACDomain = "sessionmon intake token v1"

// ErrUnknownToken is a token that was never issued, was revoked, or whose
// record does not verify.
var ErrUnknownToken = errors.New("unknown or revoked intake token")

// Token is what sessionmon keeps about an intake token: never the token.
type Token struct {
	// App is the only app the token may publish events for.
	App       string    `json:"app"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	CreatedBy string    `json:"created_by"`
	// MAC authenticates every field above and the record's key.
	MAC []byte `json:"mac"`
	// ID is the first TokenIDLen hex characters of the hash (not stored).
	ID string `json:"-"`
}

// Expired reports whether t has expired at now.
func (t Token) Expired(now time.Time) bool { return !now.Before(t.Expires) }

// Tokens is the store of intake tokens, in schemas.IntakeTokenBucket. It
// is safe for concurrent use.
type Tokens struct {
	kv  jetstream.KeyValue
	mac *recordmac.MAC
}

// OpenTokens declares the token bucket (keeping the replicas it has) and
// returns the store. recordKey authenticates the records: every process
// that makes or checks intake tokens needs the same one.
func OpenTokens(ctx context.Context, js jetstream.JetStream, recordKey []byte) (*Tokens, error) {
	if len(recordKey) == 0 {
		return nil, errors.New("intake tokens: no record key")
	}
	kv, err := natsconn.EnsureIntakeTokenBucket(ctx, js, 1)
	if err != nil {
		return nil, err
	}
	return &Tokens{kv: kv, mac: recordmac.New(recordKey)}, nil
}

func tokenKey(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// validTokenShape reports whether raw looks like a token Create makes.
func validTokenShape(raw string) bool {
	rest, ok := strings.CutPrefix(raw, TokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

func (ts *Tokens) fields(key string, t Token) []string {
	return []string{key, t.App, t.Name, recordmac.Time(t.Created), recordmac.Time(t.Expires), t.CreatedBy}
}

// Create makes a token for app, valid for ttl from now, and returns it
// with its record. The token is shown once: only its hash is stored.
func (ts *Tokens) Create(ctx context.Context, app, name string, ttl time.Duration, createdBy string, now time.Time) (string, Token, error) {
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", Token{}, fmt.Errorf("create intake token: lifetime must be between 1s and %s (got %s)", MaxTokenTTL, ttl)
	}
	if len(name) > maxTokenNameLen {
		return "", Token{}, fmt.Errorf("create intake token: name must be at most %d characters", maxTokenNameLen)
	}
	b := make([]byte, tokenBytes)
	// crypto/rand.Read never returns an error (it crashes the program instead).
	_, _ = rand.Read(b)
	raw := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	key := tokenKey(raw)
	t := Token{App: app, Name: name, Created: now.UTC(), Expires: now.UTC().Add(ttl), CreatedBy: createdBy}
	t.MAC = ts.mac.Sum(tokenMACDomain, ts.fields(key, t)...)
	v, err := json.Marshal(t)
	if err != nil {
		return "", Token{}, fmt.Errorf("create intake token: %w", err)
	}
	if _, err := ts.kv.Create(ctx, key, v); err != nil {
		return "", Token{}, fmt.Errorf("create intake token: %w", err)
	}
	t.ID = key[:TokenIDLen]
	return raw, t, nil
}

// Lookup returns the record of raw, or ErrUnknownToken. Expiry is the
// caller's to check (it has the clock).
func (ts *Tokens) Lookup(ctx context.Context, raw string) (Token, error) {
	if !validTokenShape(raw) {
		return Token{}, ErrUnknownToken
	}
	key := tokenKey(raw)
	e, err := ts.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Token{}, ErrUnknownToken
	}
	if err != nil {
		return Token{}, fmt.Errorf("look up intake token: %w", err)
	}
	t, err := ts.decode(key, e.Value())
	if err != nil {
		// Forged, edited, moved, or made with another record key.
		return Token{}, ErrUnknownToken
	}
	return t, nil
}

func (ts *Tokens) decode(key string, v []byte) (Token, error) {
	var t Token
	if err := json.Unmarshal(v, &t); err != nil {
		return Token{}, fmt.Errorf("decode intake token %s: %w", key[:TokenIDLen], err)
	}
	if !ts.mac.Verify(t.MAC, tokenMACDomain, ts.fields(key, t)...) {
		return Token{}, fmt.Errorf("intake token %s: record MAC does not verify", key[:TokenIDLen])
	}
	t.ID = key[:TokenIDLen]
	return t, nil
}

// List returns every token record that verifies, newest first. Records
// that do not verify are left out (they authenticate nothing) and counted
// in refused.
func (ts *Tokens) List(ctx context.Context) (tokens []Token, refused int, err error) {
	keys, err := ts.listKeys(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, k := range keys {
		e, err := ts.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("list intake tokens: %w", err)
		}
		t, err := ts.decode(k, e.Value())
		if err != nil {
			refused++
			continue
		}
		tokens = append(tokens, t)
	}
	slices.SortFunc(tokens, func(a, b Token) int { return b.Created.Compare(a.Created) })
	return tokens, refused, nil
}

func (ts *Tokens) listKeys(ctx context.Context) ([]string, error) {
	lister, err := ts.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list intake tokens: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// Revoke deletes the token whose ID is id (TokenIDLen hex characters).
// It fails with ErrUnknownToken when no token has that ID.
func (ts *Tokens) Revoke(ctx context.Context, id string) error {
	if len(id) != TokenIDLen {
		return fmt.Errorf("revoke intake token: the id is the %d hex characters `sessionmon creds http-tokens` lists", TokenIDLen)
	}
	keys, err := ts.listKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasPrefix(k, id) {
			if err := ts.kv.Purge(ctx, k); err != nil {
				return fmt.Errorf("revoke intake token %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("revoke intake token %s: %w", id, ErrUnknownToken)
}
