package notify

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// ocsfRequired are the attributes OCSF 1.x requires of a Detection Finding
// (base event, Findings category, class 2004), with the sub-objects' own
// required attributes as paths.
var ocsfRequired = []string{
	"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time",
	"metadata", "metadata.version", "metadata.product", "metadata.product.vendor_name",
	"finding_info", "finding_info.uid", "finding_info.title",
}

// lookup returns the value at a dotted path of a decoded JSON object.
func lookup(v any, path ...string) (any, bool) {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

func TestOCSFFormat(t *testing.T) {
	t.Parallel()
	a := testAlert(7)
	a.Technique, a.RuleVersion = "T1110.001", 1
	a.Session = "ses_1"
	a.Source = &schemas.Source{IPPrefix: "203.0.113.0/24", ASN: 64500}
	m, err := decodeAlert(testAlertJSON(t, a))
	require.NoError(t, err)
	w := Webhook{Name: "siem", Format: FormatOCSF}
	f, err := newFormatter(&w, "", "https://sessionmon.example.com/")
	require.NoError(t, err)
	body, ct, err := f.format(m)
	require.NoError(t, err)
	require.Equal(t, "application/json", ct)

	golden := filepath.Join("testdata", "ocsf.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, body, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(body))

	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	for _, p := range ocsfRequired {
		_, ok := lookup(got, splitPath(p)...)
		require.True(t, ok, "required OCSF attribute %s missing", p)
	}
	for path, want := range map[string]any{
		"class_uid": 2004.0, "category_uid": 2.0, "activity_id": 1.0, "type_uid": 200401.0, "severity_id": 4.0,
		"time": float64(a.DetectedAt.UnixMilli()), "end_time": float64(a.Time.UnixMilli()), "metadata.product.name": "sessionmon",
		"finding_info.uid": a.ID, "finding_info.analytic.type_id": 1.0, "finding_info.analytic.version": "1",
		"finding_info.analytic.name": "brute_force",
	} {
		v, ok := lookup(got, splitPath(path)...)
		require.True(t, ok, path)
		require.Equal(t, want, v, path)
	}
	attacks, _ := lookup(got, "finding_info", "attacks")
	require.Len(t, attacks, 1)
	attack := attacks.([]any)[0]
	for _, p := range []string{"technique.uid", "technique.name", "tactic.uid", "tactic.name"} {
		v, ok := lookup(attack, splitPath(p)...)
		require.True(t, ok, p)
		require.NotEmpty(t, v, p)
	}
	uid, _ := lookup(attack, "technique", "uid")
	require.Equal(t, "T1110.001", uid)
}

// TestOCSFSeverities: every severity maps to an OCSF severity_id (2 Low to 5
// Critical), and a policy finding without a technique carries no attack.
func TestOCSFSeverities(t *testing.T) {
	t.Parallel()
	for sev, want := range map[schemas.Severity]int{
		schemas.SeverityLow: 2, schemas.SeverityMedium: 3, schemas.SeverityHigh: 4, schemas.SeverityCritical: 5,
	} {
		a := testAlert(1)
		a.Severity, a.Detector = sev, "idle_timeout_exceeded"
		f := ocsfFindingOf(&a, "")
		require.Equal(t, want, f.SeverityID, sev)
		require.Empty(t, f.FindingInfo.Attacks)
		require.Empty(t, f.FindingInfo.SrcURL)
	}
}

func splitPath(p string) []string { return strings.Split(p, ".") }
