package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

// Live alert stream settings.
const (
	// liveHeartbeat is how often an idle stream sends a comment, so that
	// proxies and the browser keep the connection open.
	liveHeartbeat = 15 * time.Second
	// liveWriteTimeout bounds each write to a slow client.
	liveWriteTimeout = 30 * time.Second
	// liveBuffer is the number of alerts waiting to be written; when the
	// client is that far behind, the stream ends and the browser
	// reconnects (EventSource does) and reloads the list.
	liveBuffer = 64
	// liveRetryMS is the reconnection delay the browser is told.
	liveRetryMS = 3000
)

// liveAlert is the data of one "alert" server-sent event.
type liveAlert struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	TimeText string    `json:"time_text"`
	Severity string    `json:"severity"`
	Detector string    `json:"detector"`
	App      string    `json:"app"`
	Summary  string    `json:"summary"`
	Status   string    `json:"status"`
}

// liveMatches reports whether a new (hence open) alert passes the list's
// filter; the time range is not applied, the live list shows what is new.
func liveMatches(f chstore.AlertFilter, a *schemas.Alert) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(f.Severities, string(a.Severity)) && in(f.Detectors, a.Detector) && in(f.Apps, a.App) &&
		in(f.Statuses, string(schemas.StatusOpen)) &&
		(f.Subject == "" || f.Subject == a.Subject) && (f.Session == "" || f.Session == a.Session) &&
		(f.Suppressed == nil || *f.Suppressed == (a.Suppression != nil))
}

// streamAlerts is GET /alerts/live: Server-Sent Events of the alerts
// published from now on that match the alert list's filter (same query
// parameters), read with an ordered JetStream consumer on the alerts
// stream, with a heartbeat comment every 15 s. Each alert is an event
// "alert" whose data is a liveAlert JSON object.
func (h *handler) streamAlerts(c echo.Context) error {
	f, err := parseAlertFilter(c.QueryParams(), h.now())
	if err != nil {
		return err
	}
	if h.js == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "live alerts need NATS")
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	cons, err := h.js.OrderedConsumer(ctx, schemas.AlertStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("live alerts: consumer on %s: %w", schemas.AlertStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("live alerts: messages: %w", err)
	}
	alerts := make(chan liveAlert, liveBuffer)
	overflow := make(chan struct{})
	done := make(chan struct{})
	// The reader ends when it.Stop makes Next fail, which the deferred
	// call below does before streamAlerts returns.
	go func() {
		defer close(done)
		for {
			msg, err := it.Next()
			if err != nil {
				return
			}
			if strings.HasPrefix(msg.Subject(), schemas.StatusSubjectPrefix) {
				continue
			}
			var a schemas.Alert
			if json.Unmarshal(msg.Data(), &a) != nil || !schemas.ValidAlertID(a.ID) || !liveMatches(f, &a) {
				continue
			}
			la := liveAlert{
				ID: a.ID, Time: a.Time.UTC(), TimeText: fmtTime(a.Time.Time), Severity: string(a.Severity),
				Detector: a.Detector, App: a.App, Summary: a.Summary, Status: string(schemas.StatusOpen),
			}
			select {
			case alerts <- la:
			case <-ctx.Done():
				return
			default:
				close(overflow)
				return
			}
		}
	}()
	defer func() {
		it.Stop()
		cancel()
		<-done
	}()

	w := c.Response()
	rc := http.NewResponseController(w.Writer)
	w.Header().Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	w.Header().Set(echo.HeaderCacheControl, "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(s string) error {
		// The server's write timeout would cut a long stream; each write
		// gets its own deadline instead.
		_ = rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
		if _, err := w.Write([]byte(s)); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	if err := write(fmt.Sprintf("retry: %d\n: connected\n\n", liveRetryMS)); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(liveHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-overflow:
			return nil
		case <-heartbeat.C:
			if write(": heartbeat\n\n") != nil {
				return nil
			}
		case a := <-alerts:
			b, err := json.Marshal(a)
			if err != nil {
				return nil
			}
			if write("event: alert\nid: "+a.ID+"\ndata: "+string(b)+"\n\n") != nil {
				return nil
			}
		}
	}
}
