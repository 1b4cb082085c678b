package detect

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
)

// shiftEvents moves events (and the times they carry) by d.
func shiftEvents(events []*schemas.Event, d time.Duration) []*schemas.Event {
	for _, e := range events {
		e.Time = schemas.At(e.Time.Add(d))
		if e.Auth != nil && e.Auth.LastAuthAt != nil {
			t := schemas.At(e.Auth.LastAuthAt.Add(d))
			e.Auth.LastAuthAt = &t
		}
		if t := e.Token; t != nil {
			if t.IssuedAt != nil {
				x := schemas.At(t.IssuedAt.Add(d))
				t.IssuedAt = &x
			}
			if t.ExpiresAt != nil {
				x := schemas.At(t.ExpiresAt.Add(d))
				t.ExpiresAt = &x
			}
		}
	}
	return events
}

// TestServiceRefusesWhatIngestDeadLetters runs the live service on a real
// NATS server: events whose app is not the app of their subject, and
// events with raw personal data in fields detectors copy into alerts, are
// acknowledged, counted and never judged, live or when replayed after a
// restart.
func TestServiceRefusesWhatIngestDeadLetters(t *testing.T) {
	t.Parallel()
	js := svcStack(t)
	cfg := svcConfig()
	m := NewMetrics(nil)
	_, stop := startService(t, js, closedDSN, cfg, WithMetrics(m))

	// App "evil" may publish on its own subjects only; it speaks for
	// "shop": nine failed logins of a shop account.
	const victim = "k1:victim-mismatch-AbCd"
	at := time.Now().Add(-time.Minute)
	for _, e := range failedLogins("mm", victim, at, 1, 9) {
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		publishRaw(t, js, e.ID, schemas.EventSubject("evil", e.Subject), b)
	}
	// Personal data in an action name, a cookie name, a key id, a city
	// and a presented token's kid, published on the right subject.
	publishEvents(t, js, shiftEvents(piiEvents(), time.Until(polBase)*-1-15*time.Minute)...)
	alerts := waitForSentinel(t, js, "refused-live")
	require.Len(t, alerts, 1, "only the sentinel alerts: %+v", alerts)
	require.Equal(t, 9.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonAppMismatch)))
	// The token event's personal data is in its kid, which is cleared:
	// it is judged, and raises nothing.
	require.Equal(t, 3.0, testutil.ToFloat64(m.invalid.WithLabelValues(pii.ReasonPII)))
	waitAcked(t, js, cfg.Durable)

	// After a restart the state is rebuilt without them: one more
	// failure, from shop itself, is the account's first.
	stop()
	_, _ = startService(t, js, closedDSN, cfg)
	publishEvents(t, js, failedLogins("ok", victim, at.Add(20*time.Second), 10, 1)...)
	alerts = waitForSentinel(t, js, "refused-replay")
	require.Zero(t, countAlerts(alerts, bruteForceName, victim), "events of another app's subject count for nothing")
	for _, a := range alerts {
		require.Equal(t, sessionFixationName, a.Detector, "only the sentinels alert: %+v", a)
	}
}
