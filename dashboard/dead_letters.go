package dashboard

import (
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/ingest"
)

// Dead letter list limits.
const (
	defaultDeadLetters = 100
	maxDeadLetters     = 1000
	// maxDeadLetterBody caps the body shown of each dead letter.
	maxDeadLetterBody = 2048
)

// deadLetterView is a dead letter as the page and the API show it.
type deadLetterView struct {
	Seq      uint64 `json:"seq"`
	EventSeq uint64 `json:"event_seq"`
	// EventIndex is the event's place (from 1) in a batched message.
	EventIndex int       `json:"event_index,omitempty"`
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	Error      string    `json:"error"`
	Fields     []string  `json:"fields"`
	Redacted   bool      `json:"redacted"`
	// Body is the refused message, values that looked like personal data
	// redacted, cut to 2 KiB.
	Body          string `json:"body"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
}

// loadDeadLetters reads the newest dead letters (query parameter limit).
func (h *handler) loadDeadLetters(c echo.Context) ([]deadLetterView, error) {
	limit, err := parseLimit(c.QueryParams(), defaultDeadLetters, maxDeadLetters)
	if err != nil {
		return nil, err
	}
	if h.js == nil {
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "dead letters need NATS")
	}
	dead, err := ingest.ListDeadLetters(c.Request().Context(), h.js, limit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return []deadLetterView{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]deadLetterView, len(dead))
	for i, d := range dead {
		body, cut := d.Body, false
		if len(body) > maxDeadLetterBody {
			body, cut = body[:maxDeadLetterBody], true
		}
		fields := d.Fields
		if fields == nil {
			fields = []string{}
		}
		out[i] = deadLetterView{Seq: d.Seq, EventSeq: d.EventSeq, EventIndex: d.EventIndex, Time: d.Time.UTC(), Reason: d.Reason, Error: d.Error,
			Fields: fields, Redacted: d.Redacted, Body: validUTF8(body), BodyTruncated: cut}
	}
	return out, nil
}

// validUTF8 returns b as a string with invalid bytes replaced.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}

// showDeadLetters renders the newest dead letters.
func (h *handler) showDeadLetters(c echo.Context) error {
	d, err := h.loadDeadLetters(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewDeadLetters, d)
}

// deadLettersJSON is the answer of GET /api/v1/dead-letters.
type deadLettersJSON struct {
	DeadLetters []deadLetterView `json:"dead_letters"`
}

// apiDeadLetters answers GET /api/v1/dead-letters.
//
// Query parameter limit (1-1000, default 100). Response 200:
// deadLettersJSON {dead_letters: [{seq, event_seq, time, reason, error,
// fields, redacted, body, body_truncated}]}, newest first; 400 naming an
// invalid parameter.
func (h *handler) apiDeadLetters(c echo.Context) error {
	d, err := h.loadDeadLetters(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deadLettersJSON{DeadLetters: d})
}
