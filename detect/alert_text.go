package detect

import (
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
)

// redactAlertText replaces, in a's summary and in every string of its
// details, text that looks like personal data by "[redacted:<kind>]"
// (pii.RedactText). Events reach the detectors only through pii.Admit, so
// the values detectors copy into alerts (action names, cookie names, key
// ids, cities) are clean; this is the last check before an alert is
// stored for a year, shown on the dashboard and posted to webhooks, in
// case a detector ever copies a value the gate does not cover.
func redactAlertText(a *schemas.Alert) {
	a.Title = pii.RedactText(a.Title)
	a.Summary = pii.RedactText(a.Summary)
	for k, v := range a.Details {
		a.Details[k] = redactDetail(v)
	}
}

func redactDetail(v any) any {
	switch v := v.(type) {
	case string:
		return pii.RedactText(v)
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = pii.RedactText(s)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = redactDetail(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[pii.RedactText(k)] = redactDetail(x)
		}
		return out
	}
	return v
}
