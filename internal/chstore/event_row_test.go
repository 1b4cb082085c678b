package chstore_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

const rawUserAgent = "Mozilla/5.0 (X11; Linux x86_64) RawAgent/1.0"

func TestNewEventRow(t *testing.T) {
	t.Parallel()
	ingested := time.Date(2026, 11, 25, 10, 0, 5, 900_000_000, time.FixedZone("CET", 3600))
	evTime := time.Date(2026, 11, 25, 9, 59, 58, 123_456_789, time.UTC)
	issued := time.Date(2026, 11, 25, 9, 0, 0, 250_000_000, time.UTC)
	expires := issued.Add(time.Hour)
	lastAuth := time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)

	// minimal is what every event maps to before its blocks are added.
	minimal := chstore.EventRow{
		ID:             "ev-1",
		Type:           string(schemas.SessionActivity),
		Time:           time.Date(2026, 11, 25, 9, 59, 58, 0, time.UTC),
		TimeMS:         evTime.UnixMilli(),
		App:            "shop",
		Subject:        "sub_1",
		Session:        "ses_1",
		AuthMFA:        chstore.TriUnknown,
		CookieSecure:   chstore.TriUnknown,
		CookieHTTPOnly: chstore.TriUnknown,
		IngestedAt:     time.Date(2026, 11, 25, 9, 0, 5, 0, time.UTC),
	}
	base := func() *schemas.Event {
		return &schemas.Event{
			ID: "ev-1", SchemaVersion: 1, Type: schemas.SessionActivity, Time: schemas.At(evTime),
			App: "shop", Subject: "sub_1", Session: "ses_1",
		}
	}
	with := func(f func(r *chstore.EventRow)) chstore.EventRow {
		r := minimal
		f(&r)
		return r
	}

	tests := []struct {
		name  string
		event func(e *schemas.Event)
		want  chstore.EventRow
	}{
		{name: "minimal event", event: func(*schemas.Event) {}, want: minimal},
		{
			name: "client without location keeps geo empty and drops the user agent",
			event: func(e *schemas.Event) {
				e.Client = &schemas.Client{
					Device: "dev_1", IPPrefix: "203.0.113.0/24", IPHash: "iph_1", ASN: 64500,
					Country: "DE", City: "Berlin", AccuracyKM: 25, UserAgent: rawUserAgent,
				}
			},
			want: with(func(r *chstore.EventRow) {
				r.ClientDevice, r.ClientIPPrefix, r.ClientIPHash, r.ClientASN = "dev_1", "203.0.113.0/24", "iph_1", 64500
				r.ClientCountry, r.ClientCity, r.ClientAccuracyKM = "DE", "Berlin", 25
			}),
		},
		{
			name: "app location sets has_geo and geo_source app",
			event: func(e *schemas.Event) {
				e.Client = &schemas.Client{Lat: ptr(52.52), Lon: ptr(13.405), AccuracyKM: 0.5, UserAgent: rawUserAgent}
			},
			want: with(func(r *chstore.EventRow) {
				r.HasGeo, r.ClientLat, r.ClientLon, r.ClientAccuracyKM = true, 52.52, 13.405, 0.5
				r.GeoSource = chstore.GeoSourceApp
			}),
		},
		{
			name: "token with times and claims",
			event: func(e *schemas.Event) {
				e.Type = schemas.TokenRefreshed
				e.Token = &schemas.Token{
					ID: "tok_2", Kind: schemas.TokenRefresh, Family: "fam_1", Parent: "tok_1",
					IssuedAt: ptr(schemas.At(issued)), ExpiresAt: ptr(schemas.At(expires)),
					KID: "k1", Alg: "EdDSA", Claims: []string{"sub", "exp"},
				}
			},
			want: with(func(r *chstore.EventRow) {
				r.Type = string(schemas.TokenRefreshed)
				r.TokenID, r.TokenKind, r.TokenFamily, r.TokenParent = "tok_2", schemas.TokenRefresh, "fam_1", "tok_1"
				r.TokenIssuedAtMS, r.TokenExpiresAtMS = issued.UnixMilli(), expires.UnixMilli()
				r.TokenKID, r.TokenAlg, r.TokenClaims = "k1", "EdDSA", []string{"sub", "exp"}
			}),
		},
		{
			name:  "token without times keeps 0 for unknown",
			event: func(e *schemas.Event) { e.Token = &schemas.Token{ID: "tok_3"} },
			want:  with(func(r *chstore.EventRow) { r.TokenID = "tok_3" }),
		},
		{
			name: "auth and cookie tri-states",
			event: func(e *schemas.Event) {
				e.Auth = &schemas.Auth{Method: "webauthn", MFA: ptr(true), LastAuthAt: ptr(schemas.At(lastAuth))}
				e.Cookie = &schemas.Cookie{Name: "sid", Secure: ptr(false), SameSite: schemas.SameSiteLax}
			},
			want: with(func(r *chstore.EventRow) {
				r.AuthMethod, r.AuthMFA, r.AuthLastAuthAtMS = "webauthn", chstore.TriTrue, lastAuth.UnixMilli()
				r.CookieName, r.CookieSecure, r.CookieSameSite = "sid", chstore.TriFalse, schemas.SameSiteLax
			}),
		},
		{
			name: "policy, action, key and sorted attrs",
			event: func(e *schemas.Event) {
				e.Policy = &schemas.Policy{IdleTimeoutS: 900, AbsoluteTimeoutS: 86400, ReauthWindowS: 300}
				e.Action = &schemas.Action{Name: "payout.change", Sensitive: true}
				e.Key = &schemas.Key{KID: "k0"}
				e.Attrs = map[string]string{"z": "last", "a": "first", "m": "middle"}
			},
			want: with(func(r *chstore.EventRow) {
				r.PolicyIdleTimeoutS, r.PolicyAbsoluteTimeoutS, r.PolicyReauthWindowS = 900, 86400, 300
				r.ActionName, r.ActionSensitive, r.KeyKID = "payout.change", true, "k0"
				r.AttrsKeys, r.AttrsValues = []string{"a", "m", "z"}, []string{"first", "middle", "last"}
			}),
		},
		{
			name:  "time before 1970 clamps the DateTime, keeps time_ms",
			event: func(e *schemas.Event) { e.Time = schemas.At(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)) },
			want: with(func(r *chstore.EventRow) {
				r.Time = time.Unix(0, 0).UTC()
				r.TimeMS = -3600 * 1000
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := base()
			tt.event(e)
			got := chstore.NewEventRow(e, ingested)
			require.Equal(t, tt.want, got)
			requireNoUserAgent(t, got)
		})
	}
}

// requireNoUserAgent fails if any string in r holds the raw user agent.
func requireNoUserAgent(t *testing.T, r chstore.EventRow) {
	t.Helper()
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		f := v.Field(i)
		var ss []string
		switch f.Kind() {
		case reflect.String:
			ss = []string{f.String()}
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.String {
				ss = f.Interface().([]string)
			}
		default:
		}
		for _, s := range ss {
			require.False(t, strings.Contains(s, "RawAgent"), "field %s holds the raw user agent", v.Type().Field(i).Name)
		}
	}
}

func TestEventRowAttrs(t *testing.T) {
	t.Parallel()
	r := chstore.NewEventRow(testEvent(1), baseTime)
	require.Equal(t, map[string]string{"plan": "pro", "region": "eu"}, r.Attrs())
	require.Nil(t, (&chstore.EventRow{}).Attrs())
}
