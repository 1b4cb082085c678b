package notify

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// A silenced alert reaches no webhook and is counted; a lowered one is
// delivered at its lower severity, through the severity filter.
func TestSilencedAlertsAreNotDelivered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := newReceiver(t, kaSecret, always(http.StatusNoContent))
	w := testWebhook("ops", r)
	w.MinSeverity = schemas.SeverityMedium
	_, m, _ := h.start(testConfig(w))
	h.publish(1, 1, func(a *schemas.Alert) {
		a.Suppression = &schemas.AlertSuppression{Rule: "rule0001", Action: schemas.SuppressSilence}
	})
	lowered := h.publish(2, 1, func(a *schemas.Alert) {
		a.Severity = schemas.SeverityMedium
		a.Suppression = &schemas.AlertSuppression{Rule: "rule0002", Action: schemas.SuppressLower, OriginalSeverity: schemas.SeverityCritical}
	})
	// Lowered below the webhook's minimum: filtered like any low alert.
	h.publish(3, 1, func(a *schemas.Alert) {
		a.Severity = schemas.SeverityLow
		a.Suppression = &schemas.AlertSuppression{Rule: "rule0003", Action: schemas.SuppressLower, OriginalSeverity: schemas.SeverityHigh}
	})
	plain := h.publish(4, 1, nil)
	want := append(lowered, plain...)
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return r.acceptedOnce(want) })
	poll.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error { return settled(t, h.js, "ops") })
	require.Equal(t, 2, r.requests())
	require.Equal(t, 1.0, testutil.ToFloat64(m.silenced.WithLabelValues("ops")))
	require.Equal(t, 2.0, testutil.ToFloat64(m.delivered.WithLabelValues("ops")))
}
