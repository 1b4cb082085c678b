package sdk_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionmon/sessionmon/sdk"
	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

// TestExampleLoginHandler runs the Example's login handler: the events
// carry the rotated session linked to the previous one, and no raw
// identifier is in what would be sent. test/sdkgo runs a whole app against
// a real server.
func TestExampleLoginHandler(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	check.NoError(t, err)
	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	check.NoError(t, err)
	authenticate := func(user, password string) (string, bool) {
		return "uid-" + user, user == "alice" && password == "correct horse"
	}
	h := loginHandler(pub, p, ri, authenticate)

	const (
		oldSID   = "pre-login-session-0001"
		deviceID = "device-cookie-0001"
		clientIP = "203.0.113.7"
	)
	login := func(user, password string) *httptest.ResponseRecorder {
		form := url.Values{"user": {user}, "password": {password}}
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "10.0.0.2:40000"
		r.Header.Set("X-Forwarded-For", clientIP)
		r.AddCookie(&http.Cookie{Name: "sid", Value: oldSID})
		r.AddCookie(&http.Cookie{Name: "device", Value: deviceID})
		w := httptest.NewRecorder()
		h(w, r)
		return w
	}
	check.Equal(t, http.StatusUnauthorized, login("alice", "wrong").Code)
	ok := login("alice", "correct horse")
	check.Equal(t, http.StatusNoContent, ok.Code)
	var newSID string
	for _, ck := range ok.Result().Cookies() {
		if ck.Name == "sid" {
			newSID = ck.Value
		}
	}
	check.NotEmpty(t, newSID)

	events := pub.taken()
	check.Len(t, events, 3)
	for _, ev := range events {
		data, err := json.Marshal(ev)
		check.NoError(t, err)
		for _, raw := range []string{"alice", "uid-alice", oldSID, newSID, deviceID, clientIP, "correct horse"} {
			check.False(t, strings.Contains(string(data), raw), "%q was sent", raw)
		}
		check.Equal(t, testApp, ev["app"])
		client := ev["client"].(map[string]any)
		check.Equal(t, "203.0.113.0/24", client["ip_prefix"])
		check.Equal(t, p.IPHash(netip.MustParseAddr(clientIP)).String(), client["ip_hash"])
		check.Equal(t, p.Device(deviceID).String(), client["device"])
	}
	failed, succeeded, started := events[0], events[1], events[2]
	check.Equal(t, "login.failed", failed["type"])
	check.Equal(t, p.Subject("alice").String(), failed["subject"])
	check.Equal(t, "login.succeeded", succeeded["type"])
	check.Equal(t, p.Subject("uid-alice").String(), succeeded["subject"])
	check.Equal(t, "session.started", started["type"])
	check.Equal(t, p.Session(newSID).String(), started["session"])
	check.Equal(t, p.Session(oldSID).String(), started["previous_session"])
	check.Equal(t, succeeded["session"], started["session"])
}
