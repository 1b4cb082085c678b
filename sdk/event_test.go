package sdk_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionmon/sessionmon/sdk"
	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

const testApp = "shop"

// testKey is a fixed 32-byte key, so pseudonyms in tests are stable.
var testKey = []byte("0123456789abcdef0123456789abcdef")

var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9_:.~-]{1,64}$`)

func newPseudonymizer(t testing.TB) *sdk.Pseudonymizer {
	t.Helper()
	p, err := sdk.NewPseudonymizer("k1", testKey)
	check.NoError(t, err)
	return p
}

// wireOf returns the JSON of ev for testApp, decoded into a generic map.
func wireOf(t *testing.T, ev *sdk.Event) map[string]any {
	t.Helper()
	data, err := ev.MarshalJSONFor(testApp)
	check.NoError(t, err)
	var m map[string]any
	check.NoError(t, json.Unmarshal(data, &m))
	return m
}

func TestEventIPPrefix(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name   string
		prefix netip.Prefix
		want   string
	}{
		{name: "ipv4 host cut to /24", prefix: netip.MustParsePrefix("203.0.113.7/32"), want: "203.0.113.0/24"},
		{name: "ipv4 /24 kept", prefix: netip.MustParsePrefix("203.0.113.0/24"), want: "203.0.113.0/24"},
		{name: "ipv4 wider kept, host bits zeroed", prefix: netip.MustParsePrefix("203.0.113.7/16"), want: "203.0.0.0/16"},
		{name: "ipv6 host cut to /48", prefix: netip.MustParsePrefix("2001:db8:1:2::7/128"), want: "2001:db8:1::/48"},
		{name: "ipv6 /64 cut to /48", prefix: netip.MustParsePrefix("2001:db8:1:2::/64"), want: "2001:db8:1::/48"},
		{name: "ipv6 wider kept", prefix: netip.MustParsePrefix("2001:db8::/32"), want: "2001:db8::/32"},
		{name: "ipv4-mapped host is ipv4", prefix: netip.MustParsePrefix("::ffff:203.0.113.7/128"), want: "203.0.113.0/24"},
		{name: "zone dropped", prefix: netip.PrefixFrom(netip.MustParseAddr("fe80::1%eth0"), 128), want: "fe80::/48"},
		{name: "zero value omitted", prefix: netip.Prefix{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Client: &sdk.ClientInfo{IPPrefix: tt.prefix, ASN: 1}}
			got, _ := wireOf(t, ev)["client"].(map[string]any)["ip_prefix"].(string)
			check.Equal(t, tt.want, got)
		})
	}
}

// The User-Agent and a token's key id go out as the app gave them:
// sessionmon clears one that looks like personal data when it admits the
// event.
func TestEventKeepsUserAgentAndKID(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	ev := &sdk.Event{
		Type: sdk.TokenUsed, Subject: p.Subject("u"),
		Client: &sdk.ClientInfo{UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"},
		Token:  &sdk.Token{ID: p.TokenID("t"), Kind: sdk.TokenAccess, KID: "2024-01-rsa", Alg: "RS256"},
	}
	m := wireOf(t, ev)
	check.Equal(t, "Mozilla/5.0 (X11; Linux x86_64)", m["client"].(map[string]any)["user_agent"])
	check.Equal(t, "2024-01-rsa", m["token"].(map[string]any)["kid"])
}

func TestEventJSONFields(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 25, 11, 0, 0, 123_000_000, paris)
	mfa, secure := true, true
	lat, lon := 48.85, 2.35
	ev := &sdk.Event{
		ID:              "ev-1",
		Type:            sdk.SessionStarted,
		Time:            at,
		Subject:         p.Subject("user-1"),
		Session:         p.Session("s-new"),
		PreviousSession: p.Session("s-old"),
		Reason:          "login",
		Client: &sdk.ClientInfo{
			Device: p.Device("d-1"), IPPrefix: netip.MustParsePrefix("203.0.113.0/24"),
			IPHash: p.IPHash(netip.MustParseAddr("203.0.113.7")), ASN: 64500, Country: "FR", City: "Paris",
			Lat: &lat, Lon: &lon, AccuracyKM: 20, UserAgent: "Mozilla/5.0 <&>",
		},
		Token: &sdk.Token{
			ID: p.TokenID("jti-2"), Family: p.TokenID("jti-1"), Parent: p.TokenID("jti-1"),
			Kind: sdk.TokenRefresh, IssuedAt: at, ExpiresAt: at.Add(time.Hour + 1),
			KID: "sig-2026", Alg: "EdDSA", Claims: []string{"sub", "exp"},
		},
		Auth:   &sdk.Auth{Method: "password", MFA: &mfa, LastAuthAt: at.Add(-time.Hour)},
		Cookie: &sdk.Cookie{Name: "sid", Secure: &secure, SameSite: sdk.SameSiteLax},
		Policy: &sdk.Policy{IdleTimeoutS: 1800},
		Action: &sdk.Action{Name: "change_email", Sensitive: true},
		Key:    &sdk.Key{KID: "old-key"},
		Attrs:  map[string]string{"plan": "pro"},
	}
	data, err := ev.MarshalJSONFor(testApp)
	check.NoError(t, err)
	want := `{"id":"ev-1","schema_version":1,"type":"session.started","time":"2026-11-25T10:00:00.123Z","app":"shop",` +
		`"subject":"` + p.Subject("user-1").String() + `","session":"` + p.Session("s-new").String() + `",` +
		`"previous_session":"` + p.Session("s-old").String() + `","reason":"login",` +
		`"client":{"device":"` + p.Device("d-1").String() + `","ip_prefix":"203.0.113.0/24","ip_hash":"` + p.IPHash(netip.MustParseAddr("203.0.113.7")).String() + `",` +
		`"asn":64500,"country":"FR","city":"Paris","lat":48.85,"lon":2.35,"accuracy_km":20,"user_agent":"Mozilla/5.0 <&>"},` +
		`"token":{"id":"` + p.TokenID("jti-2").String() + `","kind":"refresh","family":"` + p.TokenID("jti-1").String() + `","parent":"` + p.TokenID("jti-1").String() + `",` +
		`"issued_at":"2026-11-25T10:00:00.123Z","expires_at":"2026-11-25T11:00:00.123000001Z","kid":"sig-2026","alg":"EdDSA","claims":["sub","exp"]},` +
		`"auth":{"method":"password","mfa":true,"last_auth_at":"2026-11-25T09:00:00.123Z"},` +
		`"cookie":{"name":"sid","secure":true,"same_site":"lax"},"policy":{"idle_timeout_s":1800},` +
		`"action":{"name":"change_email","sensitive":true},"key":{"kid":"old-key"},"attrs":{"plan":"pro"}}`
	check.Equal(t, want, string(data))
}

func TestEventDefaults(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	ev := &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("user-1")}
	before := time.Now()
	a, b := wireOf(t, ev), wireOf(t, ev)
	after := time.Now()

	check.Empty(t, ev.ID, "MarshalJSONFor does not modify the event")
	check.True(t, ev.Time.IsZero())
	check.Regexp(t, eventIDPattern, a["id"].(string))
	check.NotEqual(t, a["id"], b["id"], "each conversion of an ID-less event makes a new ID")
	at, err := time.Parse(time.RFC3339Nano, a["time"].(string))
	check.NoError(t, err)
	check.True(t, strings.HasSuffix(a["time"].(string), "Z"), "time in UTC")
	check.False(t, at.Before(before.Truncate(time.Millisecond)))
	check.False(t, at.After(after))
	check.Nil(t, a["client"])
	check.Nil(t, a["token"])
}

func TestEventValidation(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	many := map[string]string{}
	for i := range sdk.MaxAttrs + 1 {
		many[string(rune('a'+i))] = "x"
	}
	tests := []struct {
		name   string
		ev     *sdk.Event
		fields []string
	}{
		{name: "empty", ev: &sdk.Event{}, fields: []string{"type", "subject"}},
		{name: "subject missing", ev: &sdk.Event{Type: sdk.LoginFailed}, fields: []string{"subject"}},
		{name: "session required on session events", ev: &sdk.Event{Type: sdk.SessionEnded, Subject: p.Subject("u")}, fields: []string{"session"}},
		{name: "previous session only on session.started", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), PreviousSession: p.Session("s")}, fields: []string{"previous_session"}},
		{name: "token required on token events", ev: &sdk.Event{Type: sdk.TokenIssued, Subject: p.Subject("u")}, fields: []string{"token"}},
		{name: "token id required on token events", ev: &sdk.Event{Type: sdk.TokenRevoked, Subject: p.Subject("u"), Token: &sdk.Token{Kind: sdk.TokenAccess}}, fields: []string{"token.id"}},
		{name: "claim values are not claim names", ev: &sdk.Event{Type: sdk.TokenUsed, Subject: p.Subject("u"), Token: &sdk.Token{ID: p.TokenID("t"), Claims: []string{"email=a@b.c d"}}}, fields: []string{"token.claims[0]"}},
		{name: "token kind", ev: &sdk.Event{Type: sdk.TokenUsed, Subject: p.Subject("u"), Token: &sdk.Token{ID: p.TokenID("t"), Kind: "bearer"}}, fields: []string{"token.kind"}},
		{name: "bad id and type", ev: &sdk.Event{ID: "has space", Type: "login", Subject: p.Subject("u")}, fields: []string{"id", "type"}},
		{name: "far future", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Time: time.Now().Add(48 * time.Hour)}, fields: []string{"time"}},
		{name: "client country", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Client: &sdk.ClientInfo{Country: "france"}}, fields: []string{"client.country"}},
		{name: "lat without lon", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Client: &sdk.ClientInfo{Lat: new(float64)}}, fields: []string{"client.lon"}},
		{name: "action name required", ev: &sdk.Event{Type: sdk.ActionPerformed, Subject: p.Subject("u")}, fields: []string{"action.name"}},
		{name: "key kid required", ev: &sdk.Event{Type: sdk.KeyRetired, Subject: p.Subject("u")}, fields: []string{"key.kid"}},
		{name: "reason length", ev: &sdk.Event{Type: sdk.LoginFailed, Subject: p.Subject("u"), Reason: strings.Repeat("x", 257)}, fields: []string{"reason"}},
		{name: "cookie same_site", ev: &sdk.Event{Type: sdk.SessionStarted, Subject: p.Subject("u"), Session: p.Session("s"), Cookie: &sdk.Cookie{SameSite: "Lax"}}, fields: []string{"cookie.same_site"}},
		{name: "policy negative", ev: &sdk.Event{Type: sdk.SessionStarted, Subject: p.Subject("u"), Session: p.Session("s"), Policy: &sdk.Policy{IdleTimeoutS: -1}}, fields: []string{"policy.idle_timeout_s"}},
		{name: "attrs key", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Attrs: map[string]string{"bad key": "x"}}, fields: []string{"attrs.bad key"}},
		{name: "attrs value", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Attrs: map[string]string{"k": strings.Repeat("x", sdk.MaxAttrValueBytes+1)}}, fields: []string{"attrs.k"}},
		{name: "attrs count", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Attrs: many}, fields: []string{"attrs"}},
		{name: "too large", ev: &sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u"), Attrs: bigAttrs()}, fields: []string{"(event)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.ev.MarshalJSONFor(testApp)
			check.ErrorIs(t, err, sdk.ErrInvalidEvent)
			var ve *sdk.ValidationError
			check.ErrorAs(t, err, &ve)
			check.Equal(t, tt.fields, ve.Fields())
		})
	}
	_, err := (&sdk.Event{Type: sdk.LoginSucceeded, Subject: p.Subject("u")}).MarshalJSONFor("bad app")
	var ve *sdk.ValidationError
	check.True(t, errors.As(err, &ve))
	check.Equal(t, []string{"app"}, ve.Fields())
	_, err = (*sdk.Event)(nil).MarshalJSONFor(testApp)
	check.ErrorIs(t, err, sdk.ErrNilEvent)
}

// bigAttrs returns the most attrs an event may have, each value of
// control characters that JSON writes as six bytes each: about 24 KiB.
func bigAttrs() map[string]string {
	m := make(map[string]string, sdk.MaxAttrs)
	for i := range sdk.MaxAttrs {
		m[string(rune('a'+i))] = strings.Repeat("\x01", sdk.MaxAttrValueBytes)
	}
	return m
}

func TestNewEventID(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool, 10000)
	prev := sdk.NewEventID()
	for range 10000 {
		id := sdk.NewEventID()
		check.Len(t, id, 26)
		check.Regexp(t, eventIDPattern, id)
		check.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
		// The first 9 characters (45 bits) come from the millisecond alone: they never go back.
		check.True(t, id[:9] >= prev[:9], "id %s sorts before %s", id, prev)
		prev = id
	}
}
