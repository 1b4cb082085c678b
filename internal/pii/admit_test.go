package pii

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func admitBody(app, extra string) []byte {
	at := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
	return []byte(fmt.Sprintf(`{"id":"e1","schema_version":1,"type":"login.failed","time":%q,"app":%q,"subject":%q%s}`, at, app, admitSubject, extra))
}

// admitSubject is the subject of admitBody's events.
const admitSubject = "k1:AAAAAAAAAAAAAAAAAAAAAA"

func TestAdmit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		subject string
		body    []byte
		reason  string // "": admitted
		fields  []string
		msg     string
	}{
		{name: "clean", subject: schemas.EventSubject("shop", admitSubject), body: admitBody("shop", "")},
		{name: "clean, partitioned subject", subject: "sessionmon.events.3.shop." + admitSubject, body: admitBody("shop", "")},
		{name: "clean, from a file", body: admitBody("shop", "")},
		{name: "not json", subject: schemas.EventSubject("shop", admitSubject), body: []byte("nope"), reason: ReasonInvalidJSON, fields: []string{"(event)"}},
		{name: "schema", subject: schemas.EventSubject("shop", admitSubject), body: admitBody("shop", `,"attrs":{"bob@example.com":"x"}`),
			reason: ReasonSchema, fields: []string{"attrs.[redacted:email]"}},
		{name: "another app's subject", subject: schemas.EventSubject("a", admitSubject), body: admitBody("b", ""),
			reason: ReasonAppMismatch, fields: []string{"app"}, msg: `app: the event names app "b", but it arrived on the subject of app "a"`},
		{name: "partition token of another app", subject: "sessionmon.events.3.a." + admitSubject, body: admitBody("b", ""),
			reason: ReasonAppMismatch, fields: []string{"app"}},
		{name: "a subject with a token too many", subject: "sessionmon.events.b.x." + admitSubject, body: admitBody("b", ""),
			reason: ReasonAppMismatch, fields: []string{"app"},
			msg: `app: the event names app "b", but it arrived on a subject that names no app (want sessionmon.events.<app>.<subject>)`},
		{name: "another subject's token", subject: schemas.EventSubject("shop", "k2"), body: admitBody("shop", ""),
			reason: ReasonSubjectMismatch, fields: []string{"subject"},
			msg: "subject: the event's subject is not the last token of the NATS subject it arrived on (want sessionmon.events.<app>.<subject>)"},
		{name: "another subject's token, partitioned", subject: "sessionmon.events.3.shop.k2", body: admitBody("shop", ""),
			reason: ReasonSubjectMismatch, fields: []string{"subject"}},
		{name: "app names are redacted in the message", subject: schemas.EventSubject("ip-10-1-2-3", admitSubject), body: admitBody("shop", ""),
			reason: ReasonAppMismatch, fields: []string{"app"}, msg: `app: the event names app "shop", but it arrived on the subject of app [redacted:ip_address]`},
		{name: "personal data", subject: schemas.EventSubject("shop", admitSubject), body: admitBody("shop", `,"action":{"name":"bob@example.com"}`),
			reason: ReasonPII, fields: []string{"action.name"}, msg: "personal data in event: action.name: email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Admit(tt.subject, tt.body, time.Now())
			if tt.reason == "" {
				require.NoError(t, err)
				require.NotNil(t, e)
				return
			}
			require.Nil(t, e)
			var r *RefusedError
			require.True(t, errors.As(err, &r), "%T %v", err, err)
			require.Equal(t, tt.reason, r.Reason)
			require.Equal(t, tt.fields, r.Fields)
			if tt.msg != "" {
				require.Equal(t, tt.msg, r.Error())
			}
			require.NotContains(t, r.Error(), "bob@")
		})
	}
}

func TestAdmitCoarsensAppLocation(t *testing.T) {
	t.Parallel()
	e, err := Admit(schemas.EventSubject("shop", admitSubject),
		admitBody("shop", `,"client":{"country":"DE","city":"Berlin","lat":52.520008,"lon":13.404954,"accuracy_km":0.05}`), time.Now())
	require.NoError(t, err)
	require.Equal(t, 52.5, *e.Client.Lat)
	require.Equal(t, 13.4, *e.Client.Lon)
	require.Equal(t, float64(coarseAccuracyKM), e.Client.AccuracyKM)

	e, err = Admit("", admitBody("shop", `,"client":{"lat":-0.04,"lon":-179.96,"accuracy_km":50}`), time.Now())
	require.NoError(t, err)
	require.Equal(t, "0", fmt.Sprint(*e.Client.Lat), "no negative zero")
	require.Equal(t, -180.0, *e.Client.Lon)
	require.Equal(t, 50.0, e.Client.AccuracyKM, "a wider radius is kept")
}

func TestCoarsenLocationLeavesEnrichedAlone(t *testing.T) {
	t.Parallel()
	lat, lon := 52.520008, 13.404954
	c := &schemas.Client{Lat: &lat, Lon: &lon, GeoSource: schemas.GeoSourceGeoIP}
	CoarsenLocation(c)
	require.Equal(t, 52.520008, *c.Lat)
	CoarsenLocation(nil)
	CoarsenLocation(&schemas.Client{})
}

// A User-Agent or token kid the end user chose is cleared, not the event
// refused: otherwise a crafted header would hide a sign-in from the
// detectors.
func TestAdmitClearsPersonalUserControlledFields(t *testing.T) {
	t.Parallel()
	body := admitBody("shop", `,"client":{"user_agent":"Mozilla/5.0 (bob@example.com) Chrome/131.0.0.0"},"token":{"id":"k1:BBBBBBBBBBBBBBBBBBBBBB","kid":"bob@example.com"}`)
	e, err := Admit(schemas.EventSubject("shop", admitSubject), body, time.Now())
	require.NoError(t, err)
	require.Empty(t, e.Client.UserAgent)
	require.Empty(t, e.Token.KID)

	ua := "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"
	e, err = Admit("", admitBody("shop", `,"client":{"user_agent":"`+ua+`"}`), time.Now())
	require.NoError(t, err)
	require.Equal(t, ua, e.Client.UserAgent, "an ordinary User-Agent is kept")

	// Fields the app fills are still refused.
	_, err = Admit("", admitBody("shop", `,"reason":"bob@example.com"`), time.Now())
	var r *RefusedError
	require.ErrorAs(t, err, &r)
	require.Equal(t, ReasonPII, r.Reason)
}
