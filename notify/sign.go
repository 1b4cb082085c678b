package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com) header names.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// Secret length limits in bytes (after base64), from the specification.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// ParseSecret decodes a Standard Webhooks secret, "whsec_" followed by the
// standard base64 of 24 to 64 random bytes. It refuses an empty secret,
// which some verifiers accept and which would make every signature
// forgeable.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %q", ErrInvalidSecret, secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// The error would echo part of the secret: name the problem only.
		return nil, fmt.Errorf("%w: not standard base64 after %q", ErrInvalidSecret, secretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes, want %d to %d", ErrInvalidSecret, len(key), minSecretBytes, maxSecretBytes)
	}
	return key, nil
}

// Signer signs webhook requests with one or more keys: during a secret
// rotation it signs with the new and the old ones, and receivers accept a
// request when any signature verifies. A Signer is safe for concurrent use.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a Signer for the given secrets (see ParseSecret), the
// current one first. It needs at least one.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	s := &Signer{}
	for i, sec := range secrets {
		k, err := ParseSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Signature returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" per key, separated by
// spaces.
func (s *Signer) Signature(id string, ts time.Time, body []byte) string {
	unix := strconv.FormatInt(ts.Unix(), 10)
	var out strings.Builder
	for i, k := range s.keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(unix))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString("v1,")
		out.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return out.String()
}

// Sign sets the three Standard Webhooks headers on h.
func (s *Signer) Sign(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, s.Signature(id, ts, body))
}
