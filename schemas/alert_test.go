package schemas_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/schematest"
	"github.com/sessionmon/sessionmon/schemas"
)

// schemaAlert is an alert with every field set.
func schemaAlert() schemas.Alert {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return schemas.Alert{
		ID:          schemas.AlertID("brute_force", "k1:AbCdEfGhIjKlMnOpQrStUv", "ev-12"),
		Detector:    "brute_force",
		Technique:   "T1110.001",
		RuleVersion: 1,
		Severity:    schemas.SeverityHigh,
		Time:        schemas.At(at),
		DetectedAt:  schemas.At(at.Add(150 * time.Millisecond)),
		App:         "shop",
		Subject:     "k1:AbCdEfGhIjKlMnOpQrStUv",
		Session:     "s1:AbCdEfGhIjKlMnOpQrStUv",
		Source:      &schemas.Source{IPPrefix: "203.0.113.0/24", ASN: 64500},
		Title:       "Brute force",
		Summary:     "12 failed logins in 5 minutes",
		Details:     map[string]any{"failures": 12},
		Evidence:    []string{"ev-1", "ev-12"},
		Key:         "not part of the JSON form",
	}
}

func TestAlertJSONMatchesSchema(t *testing.T) {
	t.Parallel()
	full := schemaAlert()
	minimal := schemaAlert()
	minimal.Subject, minimal.Session, minimal.Source, minimal.Details, minimal.Evidence = "", "", nil, nil, []string{}
	// Policy findings carry no technique; alerts published before rules
	// were versioned carry neither.
	minimal.Technique, minimal.RuleVersion = "", 0
	change := schemas.StatusChange{ID: "c1", AlertID: full.ID, Status: schemas.StatusFalsePositive, Actor: "anna",
		Comment: "pen test", Time: schemas.At(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{name: "alert/full", v: &full},
		{name: "alert/minimal", v: &minimal},
		{name: "status change", v: &change},
	} {
		b, err := json.Marshal(tc.v)
		require.NoError(t, err, tc.name)
		require.NoError(t, schematest.ValidateAlert(b), tc.name)
	}
	b, err := json.Marshal(&full)
	require.NoError(t, err)
	require.NotContains(t, string(b), "not part of the JSON form", "Key stays out of the JSON form")
}

func TestAlertSchemaRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
	}{
		{name: "alert/no detector", edit: func(m map[string]any) { delete(m, "detector") }},
		{name: "alert/unknown severity", edit: func(m map[string]any) { m["severity"] = "urgent" }},
		{name: "alert/id not from AlertID", edit: func(m map[string]any) { m["id"] = "ABC" }},
		{name: "alert/raw subject", edit: func(m map[string]any) { m["subject"] = "alice@example.com" }},
		{name: "alert/technique not an ATT&CK id", edit: func(m map[string]any) { m["technique"] = "Brute Force" }},
		{name: "alert/rule version 0", edit: func(m map[string]any) { m["rule_version"] = 0 }},
		{name: "alert/unknown field", edit: func(m map[string]any) { m["user"] = "alice" }},
		{name: "alert/time without milliseconds", edit: func(m map[string]any) { m["time"] = "2026-11-25T10:00:00Z" }},
	} {
		a := schemaAlert()
		b, err := json.Marshal(&a)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		tc.edit(m)
		b, err = json.Marshal(m)
		require.NoError(t, err)
		require.Error(t, schematest.ValidateAlert(b), tc.name)
	}
	bad := schemas.StatusChange{ID: "c1", AlertID: schemaAlert().ID, Status: "closed", Actor: "anna", Time: schemaAlert().Time}
	b, err := json.Marshal(&bad)
	require.NoError(t, err)
	require.Error(t, schematest.ValidateAlert(b), "status change/unknown status")
}

func TestAlertSeverityRank(t *testing.T) {
	t.Parallel()
	order := []schemas.Severity{schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical}
	for i, s := range order {
		require.Equal(t, i+1, s.Rank(), string(s))
	}
	require.Zero(t, schemas.Severity("urgent").Rank())
}

func TestAlertValidate(t *testing.T) {
	t.Parallel()
	a := schemaAlert()
	require.NoError(t, a.Validate())
	a.Time = schemas.Time{}
	require.ErrorIs(t, a.Validate(), schemas.ErrInvalidAlert)
	require.True(t, schemas.ValidAlertID(schemaAlert().ID))
	require.False(t, schemas.ValidAlertID("nope"))
}
