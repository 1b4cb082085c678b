package drill

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxWebhookBody bounds what the receiver reads of one request.
const maxWebhookBody = 1 << 20

// signatureTolerance is how far a webhook-timestamp may be from the
// receiver's clock, as Standard Webhooks verifiers allow.
const signatureTolerance = 5 * time.Minute

// Receiver is a webhook endpoint that checks Standard Webhooks signatures
// and counts distinct alerts by webhook-id. It can hang: requests then
// block until Recover (or the client gives up). It is safe for concurrent
// use.
type Receiver struct {
	secret string
	key    []byte
	srv    *httptest.Server

	// mu guards the fields below.
	mu       sync.Mutex
	ids      map[string]int // webhook-id → valid deliveries
	badSig   int
	requests int
	hung     int
	release  chan struct{} // non-nil while hanging; closed by Recover
}

// NewReceiver starts a receiver with a fresh random secret.
func NewReceiver() (*Receiver, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	r := &Receiver{
		secret: "whsec_" + base64.StdEncoding.EncodeToString(key),
		key:    key,
		ids:    map[string]int{},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r, nil
}

// URL is the receiver's address.
func (r *Receiver) URL() string { return r.srv.URL + "/hook" }

// Secret is the receiver's Standard Webhooks secret (whsec_...).
func (r *Receiver) Secret() string { return r.secret }

// Close stops the receiver, releasing hung requests first.
func (r *Receiver) Close() {
	r.Recover()
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// Hang makes every request from now on block, never answering, until
// Recover.
func (r *Receiver) Hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release == nil {
		r.release = make(chan struct{})
	}
}

// Recover answers requests again, and lets the hung ones fail with 503
// (their sender has usually timed out already).
func (r *Receiver) Recover() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release != nil {
		close(r.release)
		r.release = nil
	}
}

// ReceiverStats is what a Receiver saw.
type ReceiverStats struct {
	// Distinct counts alerts (webhook-ids) delivered with a valid signature.
	Distinct int
	// Deliveries counts valid deliveries, repeats included.
	Deliveries int
	// BadSignatures counts requests refused for their signature.
	BadSignatures int
	// Requests counts every request.
	Requests int
	// Hung counts requests that arrived while hanging.
	Hung int
}

// Stats returns what the receiver saw so far.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := ReceiverStats{Distinct: len(r.ids), BadSignatures: r.badSig, Requests: r.requests, Hung: r.hung}
	for _, n := range r.ids {
		st.Deliveries += n
	}
	return st
}

// IDs returns the distinct webhook-ids delivered.
func (r *Receiver) IDs() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.ids))
	for id := range r.ids {
		out[id] = true
	}
	return out
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	release := r.release
	if release != nil {
		r.hung++
	}
	r.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-req.Context().Done():
		}
		http.Error(w, "recovering", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	if err := r.verify(id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now()); err != nil {
		r.mu.Lock()
		r.badSig++
		r.mu.Unlock()
		// A permanent failure: sessionmon must not retry a forgery.
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.ids[id]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// verify checks a Standard Webhooks signature: one of the space-separated
// "v1,<base64>" values must be the HMAC-SHA256 of "id.timestamp.body"
// under the receiver's key, and the timestamp must be recent.
func (r *Receiver) verify(id, timestamp, signatures string, body []byte, now time.Time) error {
	if id == "" {
		return fmt.Errorf("webhook-id header: missing")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp header: not a Unix time: %w", err)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > signatureTolerance || d < -signatureTolerance {
		return fmt.Errorf("webhook-timestamp header: %s from now, over %s", d, signatureTolerance)
	}
	mac := hmac.New(sha256.New, r.key)
	fmt.Fprintf(mac, "%s.%s.", id, timestamp)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(signatures) {
		b64, ok := strings.CutPrefix(s, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("webhook-signature header: no valid v1 signature")
}
