package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// Limits of one request.
const (
	// MaxBodyBytes is the largest request body taken: 1 MiB.
	MaxBodyBytes = 1 << 20
	// MaxEvents is the most events one request may carry.
	MaxEvents = 1000
)

// Path is where the intake takes events.
const Path = "/v1/events"

// Defaults of Config.
const (
	DefaultMaxInFlight    = 64
	DefaultPublishTimeout = 10 * time.Second
	// tokenCacheTTL is how long a looked-up token is trusted without
	// reading the bucket again: a revoked token stops working within it.
	tokenCacheTTL = 10 * time.Second
	// maxCachedTokens bounds the token cache.
	maxCachedTokens = 10000
	// maxDrainBytes is the largest oversized body read (and dropped) to
	// answer 413 cleanly.
	maxDrainBytes = 8 << 20
)

// Config tunes a Handler. The zero value takes the defaults.
type Config struct {
	// MaxInFlight is how many requests are handled at once; one more is
	// answered 429 with Retry-After. Default DefaultMaxInFlight.
	MaxInFlight int
	// PublishTimeout bounds the wait for JetStream's acknowledgements of
	// one request; past it the request is answered 503. Default
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
}

// Result statuses, one per event.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusRejected  = "rejected"
	// StatusFailed: valid, but JetStream did not store it (the request is
	// answered 503; resend the batch).
	StatusFailed = "failed"
)

// Result is the outcome of one event of a request.
type Result struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Status string `json:"status"`
	// Error says what is wrong with a rejected event (redacted: it never
	// quotes what looks like personal data), or why a valid one failed.
	Error string `json:"error,omitempty"`
	// Fields names the fields a rejected event broke.
	Fields []string `json:"fields,omitempty"`
}

// Response is the body of a 202 (and of a 503 after a partial failure).
type Response struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Rejected   int      `json:"rejected"`
	Failed     int      `json:"failed,omitempty"`
	Results    []Result `json:"results"`
}

// Handler serves POST /v1/events (mount it for POST only). It is safe for
// concurrent use.
type Handler struct {
	js      jetstream.JetStream
	tokens  *Tokens
	cfg     Config
	slots   chan struct{}
	logger  *slog.Logger
	metrics *metrics
	// Now is the clock (tests); time.Now by default.
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken
	// stream is the events stream's configuration: its partition count.
	stream *natsconn.EventStreamCache
}

// partitionsTTL is how long the intake uses the partition count it read.
const partitionsTTL = 10 * time.Second

type cachedToken struct {
	tok Token
	err error
	at  time.Time
}

// New returns the intake handler, publishing to js and checking tokens in
// tokens. Its metrics go to reg (nil: none).
func New(js jetstream.JetStream, tokens *Tokens, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Handler{
		js: js, tokens: tokens, cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight),
		logger: logger.With("component", "intake"), metrics: m, now: time.Now,
		cache: make(map[string]cachedToken), stream: natsconn.NewEventStreamCache(js, partitionsTTL),
	}, nil
}

// requestError is an answer to the request as a whole.
type requestError struct {
	code       int
	msg        string
	retryAfter int // seconds; 0: no Retry-After
}

func (e *requestError) Error() string { return e.msg }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.metrics.duration.Observe(time.Since(start).Seconds())
}

// serve answers r and returns the status code it wrote.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		return writeError(w, &requestError{code: http.StatusTooManyRequests, retryAfter: 1,
			msg: fmt.Sprintf("overloaded: %d requests in flight; retry after 1 s", h.cfg.MaxInFlight)})
	}
	h.metrics.inFlight.Inc()
	defer h.metrics.inFlight.Dec()

	tok, err := h.authenticate(r)
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			if re.code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sessionmon intake"`)
			}
			return writeError(w, re)
		}
		h.logger.Warn("intake token lookup failed", slog.Any("error", err))
		return writeError(w, &requestError{code: http.StatusServiceUnavailable, retryAfter: 2, msg: "cannot check the intake token now; retry"})
	}
	items, rerr := readEvents(w, r)
	if rerr != nil {
		return writeError(w, rerr)
	}
	resp, code := h.publish(r.Context(), tok, items)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	writeJSON(w, code, resp)
	return code
}

// authenticate returns the token of r's Authorization header.
func (h *Handler) authenticate(r *http.Request) (Token, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return Token{}, &requestError{code: http.StatusUnauthorized, msg: "missing intake token: send Authorization: Bearer " + TokenPrefix + "... (sessionmon creds app NAME --http makes one)"}
	}
	raw = strings.TrimSpace(raw)
	tok, err := h.lookup(r.Context(), raw)
	if errors.Is(err, ErrUnknownToken) {
		h.metrics.authFailures.WithLabelValues("unknown").Inc()
		return Token{}, &requestError{code: http.StatusUnauthorized, msg: "unknown or revoked intake token"}
	}
	if err != nil {
		return Token{}, err
	}
	if now := h.now(); tok.Expired(now) {
		h.metrics.authFailures.WithLabelValues("expired").Inc()
		return Token{}, &requestError{code: http.StatusUnauthorized,
			msg: fmt.Sprintf("intake token %s (app %q) expired at %s; make a new one with sessionmon creds app %s --http", tok.ID, tok.App, tok.Expires.UTC().Format(time.RFC3339), tok.App)}
	}
	return tok, nil
}

// lookup reads a token through a short-lived cache, so a busy app does not
// cost a bucket read per request. Unknown tokens are cached too, so that
// guessing does not either.
func (h *Handler) lookup(ctx context.Context, raw string) (Token, error) {
	key := tokenKey(raw)
	now := time.Now()
	h.mu.Lock()
	c, ok := h.cache[key]
	h.mu.Unlock()
	if ok && now.Sub(c.at) < tokenCacheTTL {
		return c.tok, c.err
	}
	tok, err := h.tokens.Lookup(ctx, raw)
	if err != nil && !errors.Is(err, ErrUnknownToken) {
		return Token{}, err
	}
	h.mu.Lock()
	if len(h.cache) >= maxCachedTokens {
		clear(h.cache)
	}
	h.cache[key] = cachedToken{tok: tok, err: err, at: now}
	h.mu.Unlock()
	return tok, err
}

// readEvents reads r's body as JSON (one event or an array of events) or
// NDJSON (one event a line) and returns the events' encodings, unparsed.
func readEvents(w http.ResponseWriter, r *http.Request) ([][]byte, *requestError) {
	if r.ContentLength > MaxBodyBytes {
		// A client that sends its whole body before reading the answer
		// (most do, without Expect: 100-continue) would see the
		// connection reset instead of the 413: read a body of a sane
		// size to the end first.
		if r.ContentLength <= maxDrainBytes {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		return nil, tooLarge(fmt.Sprintf("body: %d bytes; at most %d per request (split the batch)", r.ContentLength, MaxBodyBytes))
	}
	ndjson, err := isNDJSON(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, &requestError{code: http.StatusUnsupportedMediaType, msg: err.Error()}
	}
	body := new(bytes.Buffer)
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(fmt.Sprintf("body: over %d bytes; at most %d per request (split the batch)", MaxBodyBytes, MaxBodyBytes))
		}
		return nil, &requestError{code: http.StatusBadRequest, msg: "body: " + err.Error()}
	}
	var items [][]byte
	data := body.Bytes()
	if ndjson {
		for line := range bytes.Lines(data) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				items = append(items, line)
			}
		}
	} else {
		data = bytes.TrimSpace(data)
		if len(data) > 0 && data[0] == '[' {
			var raw []json.RawMessage
			if err := json.Unmarshal(data, &raw); err != nil {
				return nil, &requestError{code: http.StatusBadRequest,
					msg: "body: not a JSON array of events (" + describeJSONError(err) + "); nothing was stored. Send NDJSON (application/x-ndjson) to have each line judged on its own"}
			}
			for _, m := range raw {
				items = append(items, m)
			}
		} else if len(data) > 0 {
			items = append(items, data)
		}
	}
	if len(items) == 0 {
		return nil, &requestError{code: http.StatusBadRequest, msg: "body: no events"}
	}
	if len(items) > MaxEvents {
		return nil, tooLarge(fmt.Sprintf("body: %d events; at most %d per request (split the batch)", len(items), MaxEvents))
	}
	return items, nil
}

func tooLarge(msg string) *requestError {
	return &requestError{code: http.StatusRequestEntityTooLarge, msg: msg}
}

// isNDJSON reads the Content-Type: NDJSON (application/x-ndjson,
// application/jsonl) or JSON (application/json, or none).
func isNDJSON(contentType string) (bool, error) {
	if contentType == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, fmt.Errorf("Content-Type: %v", err)
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true, nil
	case "application/json":
		return false, nil
	}
	return false, fmt.Errorf("Content-Type %q: send application/x-ndjson (one event a line) or application/json (an event or an array of events)", mt)
}

// describeJSONError says where a JSON array broke without quoting it: the
// body may hold personal data that is refused.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "an array of JSON objects expected"
	}
	return "malformed JSON"
}

// publish judges every item and publishes the good ones, waiting for
// JetStream's acknowledgements. It answers 202, or 503 when JetStream did
// not store every good event.
func (h *Handler) publish(ctx context.Context, tok Token, items [][]byte) (Response, int) {
	resp := Response{Results: make([]Result, len(items))}
	now := h.now()
	var good []admitted
	for i, data := range items {
		res := &resp.Results[i]
		res.Index = i
		e, err := pii.Admit("", data, now)
		if err != nil {
			h.reject(res, err)
			continue
		}
		res.ID = e.ID
		if e.App != tok.App {
			h.metrics.rejected.WithLabelValues(pii.ReasonAppMismatch).Inc()
			res.Status, res.Fields = StatusRejected, []string{"app"}
			res.Error = fmt.Sprintf("app: the event names app %q, but this intake token may publish only for app %q", e.App, tok.App)
			continue
		}
		// What JetStream stores is what was checked: the event as
		// decoded, with a personal User-Agent cleared.
		enc, err := schemas.Encode(e)
		if err != nil {
			h.reject(res, fmt.Errorf("encode: %w", err))
			continue
		}
		good = append(good, admitted{index: i, id: e.ID, subject: e.Subject, data: enc})
	}
	var publishErr error
	fail := func(indexes []int, err error, msg string) {
		publishErr = err
		for _, i := range indexes {
			resp.Results[i].Status, resp.Results[i].Error = StatusFailed, msg
		}
	}
	type pending struct {
		indexes []int
		ack     jetstream.PubAckFuture
	}
	var pend []pending
	for _, m := range h.messages(ctx, tok.App, good) {
		f, err := h.js.PublishMsgAsync(m.msg)
		if err != nil {
			fail(m.indexes, err, "not stored: "+err.Error())
			continue
		}
		pend = append(pend, pending{indexes: m.indexes, ack: f})
	}
	wait := time.NewTimer(h.cfg.PublishTimeout)
	defer wait.Stop()
	for _, p := range pend {
		select {
		case ack := <-p.ack.Ok():
			status := StatusAccepted
			if ack.Duplicate {
				status = StatusDuplicate
			}
			for _, i := range p.indexes {
				resp.Results[i].Status = status
			}
		case err := <-p.ack.Err():
			fail(p.indexes, err, "not stored: "+err.Error())
		case <-wait.C:
			fail(p.indexes, errors.New("no acknowledgement from JetStream in time"), "not stored: no acknowledgement from JetStream within "+h.cfg.PublishTimeout.String())
		case <-ctx.Done():
			fail(p.indexes, ctx.Err(), "not stored: the request ended")
		}
	}
	for _, res := range resp.Results {
		switch res.Status {
		case StatusAccepted:
			resp.Accepted++
		case StatusDuplicate:
			resp.Duplicates++
		case StatusRejected:
			resp.Rejected++
		case StatusFailed:
			resp.Failed++
		}
		h.metrics.events.WithLabelValues(res.Status).Inc()
	}
	if resp.Failed > 0 {
		h.logger.Warn("intake: events not stored; the client was told to retry",
			slog.String("app", tok.App), slog.Int("failed", resp.Failed), slog.Any("error", publishErr))
		return resp, http.StatusServiceUnavailable
	}
	return resp, http.StatusAccepted
}

// reject fills res for an event pii.Admit refused. The error text is
// already redacted.
func (h *Handler) reject(res *Result, err error) {
	res.Status = StatusRejected
	var re *pii.RefusedError
	if errors.As(err, &re) {
		h.metrics.rejected.WithLabelValues(re.Reason).Inc()
		res.Error, res.Fields = re.Error(), re.Fields
		return
	}
	h.metrics.rejected.WithLabelValues(pii.ReasonSchema).Inc()
	res.Error = pii.RedactText(err.Error())
}

func writeError(w http.ResponseWriter, e *requestError) int {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.code, map[string]string{"error": e.msg})
	return e.code
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// admitted is an event of a request that passed the gate, encoded.
type admitted struct {
	index   int
	id      string
	subject string
	data    []byte
}

// outMsg is a message to publish and the request's events it carries.
type outMsg struct {
	msg     *nats.Msg
	indexes []int
}

// messages packs the admitted events of app into messages: one batched
// message per partition of the events stream (schemas.NewBatchMsg), in
// request order within each, bounded by schemas.MaxBatchEvents and
// schemas.MaxBatchBytes; a partition with one event gets a single-event
// message. A request sent again is packed the same way, so its batches
// carry the same message ids and JetStream stores them once.
func (h *Handler) messages(ctx context.Context, app string, events []admitted) []outMsg {
	n := h.partitions(ctx)
	groups := make(map[int][]admitted)
	var order []int
	for _, e := range events {
		p := sdk.Partition(e.subject, n)
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], e)
	}
	var out []outMsg
	for _, p := range order {
		g := groups[p]
		for len(g) > 0 {
			k, size := 0, 0
			for k < len(g) && k < schemas.MaxBatchEvents && (k == 0 || size+len(g[k].data)+1 <= schemas.MaxBatchBytes) {
				size += len(g[k].data) + 1
				k++
			}
			out = append(out, packMessage(app, p, n, g[:k]))
			g = g[k:]
		}
	}
	return out
}

// packMessage makes the message of events, all of app and of partition p
// among n.
func packMessage(app string, p, n int, events []admitted) outMsg {
	m := outMsg{indexes: make([]int, len(events))}
	for i, e := range events {
		m.indexes[i] = e.index
	}
	if len(events) == 1 {
		m.msg = &nats.Msg{Subject: schemas.EventSubject(app, events[0].subject), Data: events[0].data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{events[0].id}}}
		return m
	}
	ids := make([]string, len(events))
	lines := make([][]byte, len(events))
	for i, e := range events {
		ids[i], lines[i] = e.id, e.data
	}
	m.msg = schemas.NewBatchMsg(app, p, n, ids, lines)
	return m
}

// partitions returns the events stream's partition count, read at most
// every partitionsTTL (the last one read while it cannot be read again; 0
// before).
func (h *Handler) partitions(ctx context.Context) int {
	info, err := h.stream.Info(ctx)
	if err != nil {
		h.logger.Warn("intake: events stream layout", slog.Any("error", err))
	}
	if info == nil {
		return 0
	}
	return natsconn.StreamPartitions(info)
}
