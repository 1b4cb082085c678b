package ingest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// A marked alert's suppression reaches its row; an unmarked one leaves the
// columns empty.
func TestAlertRowOfSuppression(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC().Truncate(time.Millisecond)
	a := schemas.Alert{ID: schemas.AlertID("brute_force", "k", "ev-1"), Detector: "brute_force", Severity: schemas.SeverityLow,
		Time: schemas.At(at), DetectedAt: schemas.At(at), App: "shop", Title: "t", Summary: "s", Evidence: []string{"ev-1"},
		Suppression: &schemas.AlertSuppression{Rule: "rule0001", Action: schemas.SuppressLower, OriginalSeverity: schemas.SeverityHigh}}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	r, err := alertRowOf(b)
	require.NoError(t, err)
	require.Equal(t, "rule0001", r.SuppressedBy)
	require.Equal(t, "lower", r.SuppressionAction)
	require.Equal(t, "high", r.OriginalSeverity)
	require.Equal(t, "low", r.Severity)

	a.Suppression = nil
	b, err = json.Marshal(a)
	require.NoError(t, err)
	r, err = alertRowOf(b)
	require.NoError(t, err)
	require.Empty(t, r.SuppressedBy+r.SuppressionAction+r.OriginalSeverity)
}
