package sdk_test

import (
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9_:.~-]{1,64}$`)

func TestEventSchemaIPPrefix(t *testing.T) {
	t.Parallel()
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
			ev := sdk.Event{Client: &sdk.ClientInfo{IPPrefix: tt.prefix}}
			got := ev.Schema(testApp)
			require.Equal(t, tt.want, got.Client.IPPrefix)
		})
	}
}

// The end user controls the User-Agent and the key id of a token they
// present: one that looks like personal data would make ingest refuse the
// whole event and hide it from the detectors, so the SDK leaves the value
// out and the event, pseudonymous as ever, is still admitted.
func TestEventSchemaDropsAttackerControlledPersonalData(t *testing.T) {
	t.Parallel()
	ev := sdk.Event{
		Client: &sdk.ClientInfo{UserAgent: "Mozilla/5.0 bob@example.com", IPPrefix: netip.MustParsePrefix("203.0.113.0/24")},
		Token:  &sdk.Token{Kind: schemas.TokenAccess, KID: "ceo@example.com", Alg: "RS256"},
	}
	got := ev.Schema(testApp)
	require.Empty(t, got.Client.UserAgent)
	require.Empty(t, got.Token.KID)
	require.Equal(t, "RS256", got.Token.Alg)

	// Ordinary values pass unchanged.
	ev.Client.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	ev.Token.KID = "2024-01-rsa"
	got = ev.Schema(testApp)
	require.Equal(t, ev.Client.UserAgent, got.Client.UserAgent)
	require.Equal(t, "2024-01-rsa", got.Token.KID)
}

func TestEventSchemaFields(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 25, 11, 0, 0, 123_000_000, paris)
	mfa, secure := true, true
	lat, lon := 48.85, 2.35
	last := schemas.At(at.Add(-time.Hour))
	ev := &sdk.Event{
		ID:              "ev-1",
		Type:            schemas.SessionStarted,
		Time:            at,
		Subject:         p.Subject("user-1"),
		Session:         p.Session("s-new"),
		PreviousSession: p.Session("s-old"),
		Reason:          "login",
		Client: &sdk.ClientInfo{
			Device: p.Device("d-1"), IPPrefix: netip.MustParsePrefix("203.0.113.0/24"),
			IPHash: p.IPHash(netip.MustParseAddr("203.0.113.7")), ASN: 64500, Country: "FR", City: "Paris",
			Lat: &lat, Lon: &lon, AccuracyKM: 20, UserAgent: "Mozilla/5.0",
		},
		Token: &sdk.Token{
			ID: p.TokenID("jti-2"), Family: p.TokenID("jti-1"), Parent: p.TokenID("jti-1"),
			Kind: schemas.TokenRefresh, IssuedAt: at, ExpiresAt: at.Add(time.Hour),
			KID: "sig-2026", Alg: "EdDSA", Claims: []string{"sub", "exp"},
		},
		Auth:   &schemas.Auth{Method: "password", MFA: &mfa, LastAuthAt: &last},
		Cookie: &schemas.Cookie{Name: "sid", Secure: &secure, SameSite: schemas.SameSiteLax},
		Policy: &schemas.Policy{IdleTimeoutS: 1800},
		Attrs:  map[string]string{"plan": "pro"},
	}
	got := ev.Schema(testApp)
	require.NoError(t, got.Validate(time.Now()))

	utc := at.UTC()
	want := &schemas.Event{
		ID: "ev-1", SchemaVersion: schemas.SchemaVersion, Type: schemas.SessionStarted,
		Time: schemas.At(utc), App: testApp,
		Subject: p.Subject("user-1").String(), Session: p.Session("s-new").String(),
		PreviousSession: p.Session("s-old").String(), Reason: "login",
		Client: &schemas.Client{
			Device: p.Device("d-1").String(), IPPrefix: "203.0.113.0/24",
			IPHash: p.IPHash(netip.MustParseAddr("203.0.113.7")).String(), ASN: 64500, Country: "FR", City: "Paris",
			Lat: &lat, Lon: &lon, AccuracyKM: 20, UserAgent: "Mozilla/5.0",
		},
		Token: &schemas.Token{
			ID: p.TokenID("jti-2").String(), Family: p.TokenID("jti-1").String(), Parent: p.TokenID("jti-1").String(),
			Kind: schemas.TokenRefresh, IssuedAt: ptr(schemas.At(utc)), ExpiresAt: ptr(schemas.At(utc.Add(time.Hour))),
			KID: "sig-2026", Alg: "EdDSA", Claims: []string{"sub", "exp"},
		},
		Auth:   &schemas.Auth{Method: "password", MFA: &mfa, LastAuthAt: ptr(schemas.At(utc.Add(-time.Hour)))},
		Cookie: &schemas.Cookie{Name: "sid", Secure: &secure, SameSite: schemas.SameSiteLax},
		Policy: &schemas.Policy{IdleTimeoutS: 1800},
		Attrs:  map[string]string{"plan": "pro"},
	}
	require.Equal(t, want, got)
	require.Equal(t, time.UTC, got.Time.Location())
	require.Equal(t, time.UTC, got.Token.IssuedAt.Location())
	require.Equal(t, time.UTC, got.Auth.LastAuthAt.Location())

	// The result is a copy: changing the Event afterwards does not change it.
	ev.Attrs["plan"] = "free"
	ev.Token.Claims[0] = "changed"
	*ev.Client.Lat = 0
	*ev.Auth.MFA = false
	require.Equal(t, "pro", got.Attrs["plan"])
	require.Equal(t, "sub", got.Token.Claims[0])
	require.InDelta(t, 48.85, *got.Client.Lat, 0)
	require.True(t, *got.Auth.MFA)
}

func TestEventSchemaDefaults(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	ev := loginEvent(p, 1)
	before := time.Now()
	a, b := ev.Schema(testApp), ev.Schema(testApp)
	after := time.Now()

	require.Empty(t, ev.ID, "Schema does not modify the event")
	require.True(t, ev.Time.IsZero())
	require.Regexp(t, eventIDPattern, a.ID)
	require.NotEqual(t, a.ID, b.ID, "each conversion of an ID-less event makes a new ID")
	require.False(t, a.Time.Before(before.Truncate(time.Millisecond)))
	require.False(t, a.Time.After(after))
	require.Equal(t, time.UTC, a.Time.Location())
	require.Nil(t, a.Client)
	require.Nil(t, a.Token)
	require.NoError(t, a.Validate(time.Now()))
}

func TestNewEventID(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool, 10000)
	prev := sdk.NewEventID()
	for range 10000 {
		id := sdk.NewEventID()
		require.Len(t, id, 26)
		require.Regexp(t, eventIDPattern, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
		// The first 9 characters (45 bits) come from the millisecond alone: they never go back.
		require.GreaterOrEqual(t, id[:9], prev[:9])
		prev = id
	}
}

func ptr[T any](v T) *T { return &v }
