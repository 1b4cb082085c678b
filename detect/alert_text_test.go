package detect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// Raw values the tests below hide in fields detectors copy into alerts.
const (
	rawEmail = "bob.smith@example.com"
	rawPhone = "+49 151 12345678"
)

func withCookie(name string) func(*schemas.Event) {
	return func(e *schemas.Event) {
		no := false
		e.Cookie = &schemas.Cookie{Name: name, Secure: &no, HTTPOnly: &no, SameSite: schemas.SameSiteNone}
	}
}

// piiEvents are events whose action name, cookie name, token key id and
// city carry raw personal data: each raises an alert that copies the value
// when it reaches the detectors.
func piiEvents() []*schemas.Event {
	lat1, lon1, lat2, lon2 := 52.5, 13.4, -33.9, 151.2
	return []*schemas.Event{
		polEv("s1", schemas.SessionStarted, 0, polPolicy(1800, 8*3600, 300), withCookie(rawEmail),
			func(e *schemas.Event) {
				e.Client = &schemas.Client{Country: "DE", City: rawPhone, Lat: &lat1, Lon: &lon1}
			}),
		polEv("a1", schemas.ActionPerformed, 10*time.Minute, polAction(rawEmail, true), polLastAuth(0),
			func(e *schemas.Event) {
				e.Client = &schemas.Client{Country: "AU", City: rawEmail, Lat: &lat2, Lon: &lon2}
			}),
		polEv("k1", schemas.KeyRetired, 11*time.Minute, func(e *schemas.Event) { e.Key = &schemas.Key{KID: rawEmail} }),
		polEv("t1", schemas.TokenUsed, 12*time.Minute, polToken(polTokenA, schemas.TokenAccess, rawEmail, 11*time.Minute, time.Hour)),
	}
}

// TestEngineRedactsAlertText feeds the engine events the gate would refuse
// (as if a detector were handed one): no alert text keeps the raw values.
func TestEngineRedactsAlertText(t *testing.T) {
	t.Parallel()
	alerts := runEngine(t, DefaultConfig(), piiEvents())
	detectors := map[string]bool{}
	for _, a := range alerts {
		detectors[a.Detector] = true
		b, err := json.Marshal(a)
		require.NoError(t, err)
		for _, raw := range []string{rawEmail, "bob.smith", rawPhone, "12345678"} {
			require.NotContains(t, string(b), raw, "alert of %s", a.Detector)
		}
	}
	// The detectors that copy those fields did fire.
	for _, d := range []string{missingReauthName, insecureCookieName, retiredSigningKeyName, impossibleTravelName} {
		require.True(t, detectors[d], "%s raised no alert", d)
	}
	for _, a := range alerts {
		if a.Detector == missingReauthName {
			require.Equal(t, "[redacted:email]", a.Details["action"])
		}
	}
}

// TestRunOfflineRefusesWhatIngestDeadLetters: detect --input runs the gate
// ingest runs, so events with raw personal data raise no alert and their
// errors quote no values; the token event, whose personal data is in the
// kid its presenter chose, is judged with the kid cleared.
func TestRunOfflineRefusesWhatIngestDeadLetters(t *testing.T) {
	t.Parallel()
	var in bytes.Buffer
	for _, e := range piiEvents() {
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		in.Write(b)
		in.WriteByte('\n')
	}
	var out bytes.Buffer
	stats, err := RunOffline(t.Context(), &in, &out, DefaultConfig(), engClock)
	require.NoError(t, err)
	require.Equal(t, int64(3), stats.Invalid)
	require.Equal(t, int64(1), stats.Events, "the token event, kid cleared")
	require.Empty(t, out.String(), "no alert from refused events")
	for _, il := range stats.InvalidLines {
		require.True(t, strings.HasPrefix(il.Error, "personal data in event: "), il.Error)
		require.NotContains(t, il.Error, "bob")
		require.NotContains(t, il.Error, "12345678")
	}
}
