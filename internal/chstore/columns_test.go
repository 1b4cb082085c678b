package chstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

func TestEventColumnsKeepRows(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 1, 0, time.UTC)
	full := chstore.EventRow{
		ID: "ev-1", Type: "login.succeeded", Time: at, TimeMS: at.UnixMilli() + 234, App: "shop",
		Subject: "k1:AAAAAAAAAAAAAAAAAAAAAA", Session: "k1:BBBBBBBBBBBBBBBBBBBBBB", PreviousSession: "k1:CCCCCCCCCCCCCCCCCCCCCC", Reason: "password",
		ClientDevice: "k1:DDDDDDDDDDDDDDDDDDDDDD", ClientIPPrefix: "203.0.113.0/24", ClientIPHash: "k1:EEEEEEEEEEEEEEEEEEEEEE",
		ClientASN: 64500, ClientCountry: "DE", ClientCity: "Berlin", HasGeo: true, ClientLat: 52.52, ClientLon: -13.404954,
		ClientAccuracyKM: 20.5, GeoSource: chstore.GeoSourceGeoIP, ClientASOrg: "Example AS", ClientAnonymity: []string{"vpn", "tor"},
		UABrowser: "Chrome", UAOS: "Linux", UADevice: "desktop",
		TokenID: "k1:FFFFFFFFFFFFFFFFFFFFFF", TokenKind: "refresh", TokenFamily: "k1:GGGGGGGGGGGGGGGGGGGGGG", TokenParent: "k1:HHHHHHHHHHHHHHHHHHHHHH",
		TokenIssuedAtMS: -5, TokenExpiresAtMS: 1 << 40, TokenKID: "2026-rsa", TokenAlg: "RS256", TokenClaims: []string{"sub", "", "exp"},
		AuthMethod: "password", AuthMFA: chstore.TriTrue, AuthLastAuthAtMS: 42,
		CookieName: "sid", CookieSecure: chstore.TriFalse, CookieHTTPOnly: chstore.TriUnknown, CookieSameSite: "Lax",
		PolicyIdleTimeoutS: 900, PolicyAbsoluteTimeoutS: 1 << 31, PolicyReauthWindowS: 300,
		ActionName: "export", ActionSensitive: true, KeyKID: "k0",
		AttrsKeys: []string{"plan", "region"}, AttrsValues: []string{"pro", "eu-west-1"},
		IngestedAt: at.Add(time.Second),
	}
	empty := chstore.EventRow{ID: "ev-2", Time: time.Unix(0, 0).UTC(), IngestedAt: time.Unix(0, 0).UTC()}

	var cols chstore.EventColumns
	for range 2 {
		cols.Add(&full)
		cols.Add(&empty)
		cols.Add(&full)
		require.Equal(t, 3, cols.Len())
		require.Equal(t, full, cols.Row(0))
		require.Equal(t, empty, cols.Row(1))
		require.Equal(t, full, cols.Row(2))
		// Reset keeps the buffers; the rows that follow read the same.
		cols.Reset()
		require.Equal(t, 0, cols.Len())
	}
}

func TestEventColumnsAppend(t *testing.T) {
	rows := []chstore.EventRow{
		{ID: "a", Subject: "s1", TokenClaims: []string{"sub", "exp"}, ClientASN: 1, Time: time.Unix(10, 0).UTC(), IngestedAt: time.Unix(11, 0).UTC()},
		{ID: "b", AttrsKeys: []string{"k"}, AttrsValues: []string{"v"}, Time: time.Unix(20, 0).UTC(), IngestedAt: time.Unix(21, 0).UTC()},
		{ID: "c", Subject: "s3", TokenClaims: []string{"iat"}, ActionSensitive: true, Time: time.Unix(30, 0).UTC(), IngestedAt: time.Unix(31, 0).UTC()},
	}
	var first, second, empty chstore.EventColumns
	first.Add(&rows[0])
	second.Add(&rows[1])
	second.Add(&rows[2])
	first.Append(&empty)
	first.Append(&second)
	require.Equal(t, 3, first.Len())
	for i, want := range rows {
		require.Equal(t, want, first.Row(i), "row %d", i)
	}
	empty.Append(&first)
	require.Equal(t, rows[2], empty.Row(2))
}
