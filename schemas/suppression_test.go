package schemas_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func validRule() schemas.SuppressionRule {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	return schemas.SuppressionRule{
		ID: "0123456789abcdef", Detector: "brute_force", App: "shop", Action: schemas.SuppressSilence,
		Owner: "anna", Reason: "pen test from the office network",
		CreatedAt: schemas.At(at), ExpiresAt: schemas.At(at.Add(24 * time.Hour)),
	}
}

func knownDetector(name string) bool { return name == "brute_force" || name == "impossible_travel" }

func TestSuppressionRuleValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mod    func(r *schemas.SuppressionRule)
		fields []string
	}{
		{name: "valid/silence", mod: func(*schemas.SuppressionRule) {}},
		{name: "valid/lower to medium, every detector", mod: func(r *schemas.SuppressionRule) {
			r.Detector, r.Action, r.Severity = "*", schemas.SuppressLower, schemas.SeverityMedium
		}},
		{name: "valid/ip prefix and asn", mod: func(r *schemas.SuppressionRule) {
			r.App, r.IPPrefix, r.ASN = "", "2001:db8::/48", 64500
		}},
		{name: "valid/90 days", mod: func(r *schemas.SuppressionRule) {
			r.ExpiresAt = schemas.At(r.CreatedAt.Add(schemas.MaxSuppressionLifetime))
		}},
		{name: "id/empty", mod: func(r *schemas.SuppressionRule) { r.ID = "" }, fields: []string{"id"}},
		{name: "id/not a key", mod: func(r *schemas.SuppressionRule) { r.ID = "abc.def.ghi" }, fields: []string{"id"}},
		{name: "detector/missing", mod: func(r *schemas.SuppressionRule) { r.Detector = "" }, fields: []string{"detector"}},
		{name: "detector/unknown", mod: func(r *schemas.SuppressionRule) { r.Detector = "no_such" }, fields: []string{"detector"}},
		{name: "matchers/none", mod: func(r *schemas.SuppressionRule) { r.App = "" }, fields: []string{"matchers"}},
		{name: "app/invalid", mod: func(r *schemas.SuppressionRule) { r.App = "a b" }, fields: []string{"app"}},
		{name: "subject/not a pseudonym", mod: func(r *schemas.SuppressionRule) { r.Subject = "x" }, fields: []string{"subject"}},
		{name: "ip_prefix/not cidr", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "203.0.113.7" }, fields: []string{"ip_prefix"}},
		{name: "ip_prefix/host bits", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "203.0.113.7/24" }, fields: []string{"ip_prefix"}},
		{name: "action/unknown", mod: func(r *schemas.SuppressionRule) { r.Action = "drop" }, fields: []string{"action"}},
		{name: "severity/lower needs one", mod: func(r *schemas.SuppressionRule) { r.Action = schemas.SuppressLower }, fields: []string{"severity"}},
		{name: "severity/not to critical", mod: func(r *schemas.SuppressionRule) {
			r.Action, r.Severity = schemas.SuppressLower, schemas.SeverityCritical
		}, fields: []string{"severity"}},
		{name: "severity/not with silence", mod: func(r *schemas.SuppressionRule) { r.Severity = schemas.SeverityLow }, fields: []string{"severity"}},
		{name: "owner/missing", mod: func(r *schemas.SuppressionRule) { r.Owner = "" }, fields: []string{"owner"}},
		{name: "reason/blank", mod: func(r *schemas.SuppressionRule) { r.Reason = "  \t" }, fields: []string{"reason"}},
		{name: "reason/too long", mod: func(r *schemas.SuppressionRule) { r.Reason = strings.Repeat("é", 501) }, fields: []string{"reason"}},
		{name: "expires_at/missing", mod: func(r *schemas.SuppressionRule) { r.ExpiresAt = schemas.Time{} }, fields: []string{"expires_at"}},
		{name: "expires_at/before created", mod: func(r *schemas.SuppressionRule) {
			r.ExpiresAt = schemas.At(r.CreatedAt.Add(-time.Second))
		}, fields: []string{"expires_at"}},
		{name: "expires_at/beyond 90 days", mod: func(r *schemas.SuppressionRule) {
			r.ExpiresAt = schemas.At(r.CreatedAt.Add(schemas.MaxSuppressionLifetime + time.Second))
		}, fields: []string{"expires_at"}},
		{name: "created_at/missing", mod: func(r *schemas.SuppressionRule) { r.CreatedAt = schemas.Time{} }, fields: []string{"created_at"}},
		{name: "several at once", mod: func(r *schemas.SuppressionRule) { r.Detector, r.Reason = "", "" }, fields: []string{"detector", "reason"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := validRule()
			tc.mod(&r)
			err := r.Validate(knownDetector)
			if len(tc.fields) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, schemas.ErrInvalidSuppression)
			var se *schemas.SuppressionError
			require.True(t, errors.As(err, &se))
			var got []string
			for _, fe := range se.Errors {
				got = append(got, fe.Field)
			}
			require.Equal(t, tc.fields, got)
			for _, f := range tc.fields {
				require.Contains(t, err.Error(), f+": ")
			}
		})
	}
}

func TestSuppressionRuleMatches(t *testing.T) {
	t.Parallel()
	alert := schemas.Alert{Detector: "brute_force", App: "shop", Subject: "k1:SubjectAAAA",
		Source: &schemas.Source{IPPrefix: "203.0.113.0/24", ASN: 64500}}
	for _, tc := range []struct {
		name string
		mod  func(r *schemas.SuppressionRule)
		want bool
	}{
		{name: "app", mod: func(*schemas.SuppressionRule) {}, want: true},
		{name: "other app", mod: func(r *schemas.SuppressionRule) { r.App = "bank" }},
		{name: "other detector", mod: func(r *schemas.SuppressionRule) { r.Detector = "impossible_travel" }},
		{name: "every detector", mod: func(r *schemas.SuppressionRule) { r.Detector = "*" }, want: true},
		{name: "subject", mod: func(r *schemas.SuppressionRule) { r.Subject = "k1:SubjectAAAA" }, want: true},
		{name: "other subject", mod: func(r *schemas.SuppressionRule) { r.Subject = "k1:SubjectBBBB" }},
		{name: "wider prefix", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "203.0.112.0/20" }, want: true},
		{name: "same prefix", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "203.0.113.0/24" }, want: true},
		{name: "narrower prefix", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "203.0.113.0/25" }},
		{name: "other prefix", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "198.51.100.0/24" }},
		{name: "other family", mod: func(r *schemas.SuppressionRule) { r.IPPrefix = "::/0" }},
		{name: "asn", mod: func(r *schemas.SuppressionRule) { r.ASN = 64500 }, want: true},
		{name: "other asn", mod: func(r *schemas.SuppressionRule) { r.ASN = 64501 }},
		{name: "every matcher must hold", mod: func(r *schemas.SuppressionRule) { r.ASN, r.Subject = 64500, "k1:SubjectBBBB" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := validRule()
			tc.mod(&r)
			require.NoError(t, r.Validate(knownDetector))
			require.Equal(t, tc.want, r.Matches(&alert))
		})
	}
	// A source matcher never matches an alert without a source.
	r := validRule()
	r.App, r.IPPrefix = "", "0.0.0.0/0"
	require.False(t, r.Matches(&schemas.Alert{Detector: "brute_force", App: "shop"}))
}

func TestSuppressionRuleActive(t *testing.T) {
	t.Parallel()
	r := validRule()
	require.False(t, r.Active(r.CreatedAt.Add(-time.Millisecond)))
	require.True(t, r.Active(r.CreatedAt.Time))
	require.True(t, r.Active(r.ExpiresAt.Add(-time.Millisecond)))
	require.False(t, r.Active(r.ExpiresAt.Time), "a rule stops applying at its expiry")
}

func TestAlertSuppressionJSON(t *testing.T) {
	t.Parallel()
	a := schemas.Alert{ID: "x", Severity: schemas.SeverityLow, Suppression: &schemas.AlertSuppression{
		Rule: "0123456789abcdef", Action: schemas.SuppressLower, OriginalSeverity: schemas.SeverityHigh}}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	require.Contains(t, string(b), `"suppression":{"rule":"0123456789abcdef","action":"lower","original_severity":"high"}`)
	a.Suppression = nil
	b, err = json.Marshal(a)
	require.NoError(t, err)
	require.NotContains(t, string(b), "suppression")
}

// FuzzSuppressionRule: whatever the bucket holds, decoding and validating
// never panic, and a rule that validates matches without panicking.
func FuzzSuppressionRule(f *testing.F) {
	good, err := json.Marshal(validRule())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"id":"0123456789abcdef","detector":"*","ip_prefix":"::/0","action":"lower","severity":"low","owner":"a","reason":"r","created_at":"2026-01-01T00:00:00.000Z","expires_at":"2026-01-02T00:00:00.000Z"}`))
	f.Add([]byte(`{"ip_prefix":"203.0.113.7/33"}`))
	alert := schemas.Alert{Detector: "brute_force", App: "shop", Subject: "k1:SubjectAAAA",
		Source: &schemas.Source{IPPrefix: "203.0.113.0/24", ASN: 64500}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r schemas.SuppressionRule
		if json.Unmarshal(data, &r) != nil {
			return
		}
		if r.Validate(knownDetector) != nil {
			return
		}
		_ = r.Matches(&alert)
		_ = r.Matches(&schemas.Alert{Detector: "brute_force"})
		_ = r.Active(time.Now())
	})
}
