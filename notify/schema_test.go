package notify

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/schematest"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestJSONBodyMatchesAlertSchema: the body of a webhook in the json format
// validates against schemas/alert.v1.schema.json.
func TestJSONBodyMatchesAlertSchema(t *testing.T) {
	t.Parallel()
	a := testAlert(7)
	a.ID = schemas.AlertID(a.Detector, "k1:AbCdEfGhIjKlMnOpQrStUv", "ev-2")
	a.Subject = "k1:AbCdEfGhIjKlMnOpQrStUv"
	a.Source = &schemas.Source{IPPrefix: "203.0.113.0/24", ASN: 64500}
	m, err := decodeAlert(testAlertJSON(t, a))
	require.NoError(t, err)
	f, err := newFormatter(&Webhook{Name: "w", Format: FormatJSON}, "", "")
	require.NoError(t, err)
	body, contentType, err := f.format(m)
	require.NoError(t, err)
	require.Equal(t, "application/json", contentType)
	require.NoError(t, schematest.ValidateAlert(body))
}
