package sdk_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// TestExampleLoginHandler runs the Example's login handler against a real
// server: the events land with the rotated session linked to the previous
// one, and no raw identifier is in what was sent.
func TestExampleLoginHandler(t *testing.T) {
	t.Parallel()
	e := withStream(t)
	c := e.client(t)
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	require.NoError(t, err)
	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	require.NoError(t, err)
	authenticate := func(user, password string) (string, bool) {
		return "uid-" + user, user == "alice" && password == "correct horse"
	}
	h := loginHandler(c, p, ri, authenticate)

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
	require.Equal(t, http.StatusUnauthorized, login("alice", "wrong").Code)
	ok := login("alice", "correct horse")
	require.Equal(t, http.StatusNoContent, ok.Code)
	var newSID string
	for _, ck := range ok.Result().Cookies() {
		if ck.Name == "sid" {
			newSID = ck.Value
		}
	}
	require.NotEmpty(t, newSID)
	require.NoError(t, c.Flush(t.Context()))
	require.Equal(t, uint64(3), e.count(t))

	cons, err := e.stream.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	batch, err := cons.FetchNoWait(3)
	require.NoError(t, err)
	var events []*schemas.Event
	for m := range batch.Messages() {
		for _, raw := range []string{"alice", "uid-alice", oldSID, newSID, deviceID, clientIP, "correct horse"} {
			require.False(t, bytes.Contains(m.Data(), []byte(raw)), "%q was sent", raw)
		}
		ev, err := schemas.Decode(m.Data(), time.Now())
		require.NoError(t, err)
		events = append(events, ev)
	}
	require.NoError(t, batch.Error())
	require.Len(t, events, 3)

	failed, succeeded, started := events[0], events[1], events[2]
	require.Equal(t, schemas.LoginFailed, failed.Type)
	require.Equal(t, p.Subject("alice").String(), failed.Subject)
	require.Equal(t, schemas.LoginSucceeded, succeeded.Type)
	require.Equal(t, p.Subject("uid-alice").String(), succeeded.Subject)
	require.Equal(t, schemas.SessionStarted, started.Type)
	require.Equal(t, p.Session(newSID).String(), started.Session)
	require.Equal(t, p.Session(oldSID).String(), started.PreviousSession)
	require.Equal(t, succeeded.Session, started.Session)
	for _, ev := range events {
		require.Equal(t, testApp, ev.App)
		require.Equal(t, "203.0.113.0/24", ev.Client.IPPrefix)
		require.Equal(t, p.IPHash(netip.MustParseAddr(clientIP)).String(), ev.Client.IPHash)
		require.Equal(t, p.Device(deviceID).String(), ev.Client.Device)
	}
}
