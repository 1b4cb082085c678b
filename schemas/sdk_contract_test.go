package schemas_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// The Go SDK writes schema v1 itself, without this package. These tests
// keep the two from drifting: what the SDK writes must be what Decode and
// event.v1.schema.json accept, field for field.

func sdkPseudonymizer(t testing.TB) *sdk.Pseudonymizer {
	t.Helper()
	p, err := sdk.NewPseudonymizer("k1", []byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	return p
}

// fullSDKEvent returns an event of typ with every block and field the SDK
// has filled (previous_session only where the schema allows it).
func fullSDKEvent(p *sdk.Pseudonymizer, typ sdk.Type) *sdk.Event {
	at := time.Date(2026, 11, 25, 11, 0, 0, 123_000_000, time.FixedZone("CET", 3600))
	yes, no := true, false
	lat, lon := 48.85, 2.35
	ev := &sdk.Event{
		ID:      "ev-" + strings.ReplaceAll(string(typ), ".", "-"),
		Type:    typ,
		Time:    at,
		Subject: p.Subject("user-1"),
		Session: p.Session("session-1"),
		Reason:  "logout",
		Client: &sdk.ClientInfo{
			Device: p.Device("device-1"), IPPrefix: netip.MustParsePrefix("2001:db8:1:2::7/128"),
			IPHash: p.IPHash(netip.MustParseAddr("2001:db8:1:2::7")), ASN: 64500, Country: "FR", City: "Paris",
			Lat: &lat, Lon: &lon, AccuracyKM: 20, UserAgent: "Mozilla/5.0 <&> (X11; Linux x86_64) ü",
		},
		Token: &sdk.Token{
			ID: p.TokenID("jti-2"), Family: p.TokenID("jti-1"), Parent: p.TokenID("jti-1"),
			Kind: sdk.TokenRefresh, IssuedAt: at, ExpiresAt: at.Add(time.Hour + time.Nanosecond),
			KID: "sig-2026", Alg: "EdDSA", Claims: []string{"sub", "exp", "https://example.com/roles"},
		},
		Auth:   &sdk.Auth{Method: "password", MFA: &no, LastAuthAt: at.Add(-time.Hour)},
		Cookie: &sdk.Cookie{Name: "__Host-sid", Secure: &yes, HTTPOnly: &yes, SameSite: sdk.SameSiteStrict},
		Policy: &sdk.Policy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 43200, ReauthWindowS: 300},
		Action: &sdk.Action{Name: "change_email", Sensitive: true},
		Key:    &sdk.Key{KID: "sig-2025"},
		Attrs:  map[string]string{"plan": "pro", "region.eu": "west-1"},
	}
	if typ == sdk.SessionStarted {
		ev.PreviousSession = p.Session("session-0")
	}
	return ev
}

// limitSDKEvent returns a token event with every length and count at the
// largest the SDK allows, in characters that take several bytes.
func limitSDKEvent(p *sdk.Pseudonymizer) *sdk.Event {
	ev := fullSDKEvent(p, sdk.TokenUsed)
	ev.ID = strings.Repeat("A", 64)
	ev.Reason = strings.Repeat("é", 256)
	ev.Client.City = strings.Repeat("é", 128)
	ev.Client.UserAgent = strings.Repeat("é", 512)
	ev.Client.AccuracyKM = 20038
	ev.Client.Lat, ev.Client.Lon = ptr(-90.0), ptr(180.0)
	ev.Client.IPPrefix = netip.MustParsePrefix("203.0.113.0/24")
	ev.Token.KID = strings.Repeat("k", 128)
	ev.Token.Alg = strings.Repeat("a", 32)
	ev.Token.Claims = nil
	for i := range 64 {
		ev.Token.Claims = append(ev.Token.Claims, fmt.Sprintf("c%02d", i)+strings.Repeat("x", 61))
	}
	ev.Auth.Method = strings.Repeat("m", 64)
	ev.Cookie.Name = strings.Repeat("n", 128)
	ev.Policy = &sdk.Policy{IdleTimeoutS: 10 * 365 * 24 * 3600}
	ev.Action.Name = strings.Repeat("a", 128)
	ev.Key.KID = strings.Repeat("k", 128)
	ev.Attrs = map[string]string{}
	for i := range sdk.MaxAttrs {
		ev.Attrs[fmt.Sprintf("k%02d", i)+strings.Repeat("_", 61)] = strings.Repeat("v", sdk.MaxAttrValueBytes)
	}
	return ev
}

func ptr[T any](v T) *T { return &v }

func TestSDKEventsPassDecodeAndSchema(t *testing.T) {
	t.Parallel()
	p := sdkPseudonymizer(t)
	require.Equal(t, schemas.Types, sdk.Types)
	cases := map[string]*sdk.Event{"limits": limitSDKEvent(p)}
	for _, typ := range sdk.Types {
		cases[string(typ)] = fullSDKEvent(p, typ)
		// The least the SDK accepts for the type passes too.
		least := &sdk.Event{Type: typ, Subject: p.Subject("user-1")}
		switch typ {
		case sdk.SessionStarted, sdk.SessionActivity, sdk.SessionEnded:
			least.Session = p.Session("session-1")
		case sdk.TokenIssued, sdk.TokenRefreshed, sdk.TokenUsed, sdk.TokenRevoked:
			least.Token = &sdk.Token{ID: p.TokenID("t")}
		case sdk.ActionPerformed:
			least.Action = &sdk.Action{Name: "export"}
		case sdk.KeyRetired:
			least.Key = &sdk.Key{KID: "old"}
		}
		cases[string(typ)+"/least"] = least
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := ev.MarshalJSONFor("shop")
			require.NoError(t, err)
			got, err := schemas.Decode(data, time.Now())
			require.NoError(t, err, "%s", data)
			require.NoError(t, schemaValidate(t, data), "%s", data)
			require.Equal(t, ev.Type, got.Type)
			require.Equal(t, ev.Subject.String(), got.Subject)
			if !ev.Time.IsZero() {
				require.True(t, ev.Time.Equal(got.Time.Time))
			}
			// What the server encodes from it is what the SDK wrote.
			again, err := schemas.Encode(got)
			require.NoError(t, err)
			require.JSONEq(t, string(data), string(again))
		})
	}
}

// TestSDKFieldNamesAreSchemaProperties: the names in the SDK's JSON of a
// fully filled event are exactly the schema's properties, block by block,
// so the SDK writes no field the schema lacks and misses none it has.
func TestSDKFieldNamesAreSchemaProperties(t *testing.T) {
	t.Parallel()
	var sch struct {
		Properties map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(schemas.EventSchemaV1, &sch))
	want := map[string][]string{}
	for name, prop := range sch.Properties {
		want[""] = append(want[""], name)
		if name == "attrs" {
			continue // a map: its keys are the app's
		}
		for sub := range prop.Properties {
			want[name] = append(want[name], sub)
		}
	}

	data, err := fullSDKEvent(sdkPseudonymizer(t), sdk.SessionStarted).MarshalJSONFor("shop")
	require.NoError(t, err)
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &doc))
	got := map[string][]string{}
	for name, raw := range doc {
		got[""] = append(got[""], name)
		if name == "attrs" {
			continue
		}
		var block map[string]json.RawMessage
		if json.Unmarshal(raw, &block) == nil {
			for sub := range block {
				got[name] = append(got[name], sub)
			}
		}
	}
	for _, m := range []map[string][]string{want, got} {
		for _, names := range m {
			sort.Strings(names)
		}
	}
	require.Equal(t, want, got)
}

// TestSDKRejectsWhatDecodeRejects: one step past each limit the SDK checks,
// the SDK refuses the event and Decode refuses its JSON, both naming the
// same field.
func TestSDKRejectsWhatDecodeRejects(t *testing.T) {
	t.Parallel()
	p := sdkPseudonymizer(t)
	tests := []struct {
		field string
		sdk   func(*sdk.Event)
		value any // set at field in the JSON of the limit event
	}{
		{"id", func(e *sdk.Event) { e.ID = strings.Repeat("A", 65) }, strings.Repeat("A", 65)},
		{"type", func(e *sdk.Event) { e.Type = "login" }, "login"},
		{"reason", func(e *sdk.Event) { e.Reason = strings.Repeat("é", 257) }, strings.Repeat("é", 257)},
		{"client.city", func(e *sdk.Event) { e.Client.City = strings.Repeat("é", 129) }, strings.Repeat("é", 129)},
		{"client.user_agent", func(e *sdk.Event) { e.Client.UserAgent = strings.Repeat("é", 513) }, strings.Repeat("é", 513)},
		{"client.country", func(e *sdk.Event) { e.Client.Country = "fr" }, "fr"},
		{"client.lat", func(e *sdk.Event) { e.Client.Lat = ptr(-90.5) }, -90.5},
		{"client.accuracy_km", func(e *sdk.Event) { e.Client.AccuracyKM = 20039 }, 20039},
		{"token.kind", func(e *sdk.Event) { e.Token.Kind = "bearer" }, "bearer"},
		{"token.kid", func(e *sdk.Event) { e.Token.KID = strings.Repeat("k", 129) }, strings.Repeat("k", 129)},
		{"token.alg", func(e *sdk.Event) { e.Token.Alg = strings.Repeat("a", 33) }, strings.Repeat("a", 33)},
		{"auth.method", func(e *sdk.Event) { e.Auth.Method = strings.Repeat("m", 65) }, strings.Repeat("m", 65)},
		{"cookie.name", func(e *sdk.Event) { e.Cookie.Name = strings.Repeat("n", 129) }, strings.Repeat("n", 129)},
		{"cookie.same_site", func(e *sdk.Event) { e.Cookie.SameSite = "Lax" }, "Lax"},
		{"policy.idle_timeout_s", func(e *sdk.Event) { e.Policy.IdleTimeoutS = 10*365*24*3600 + 1 }, 10*365*24*3600 + 1},
		{"action.name", func(e *sdk.Event) { e.Action.Name = strings.Repeat("a", 129) }, strings.Repeat("a", 129)},
		{"key.kid", func(e *sdk.Event) { e.Key.KID = strings.Repeat("k", 129) }, strings.Repeat("k", 129)},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			ev := limitSDKEvent(p)
			data, err := ev.MarshalJSONFor("shop")
			require.NoError(t, err)
			tt.sdk(ev)
			_, err = ev.MarshalJSONFor("shop")
			var sve *sdk.ValidationError
			require.ErrorAs(t, err, &sve)
			require.Equal(t, []string{tt.field}, sve.Fields())

			var doc map[string]any
			require.NoError(t, json.Unmarshal(data, &doc))
			block, name := doc, tt.field
			if b, n, ok := strings.Cut(tt.field, "."); ok {
				block, name = doc[b].(map[string]any), n
			}
			block[name] = tt.value
			data, err = json.Marshal(doc)
			require.NoError(t, err)
			_, err = schemas.Decode(data, time.Now())
			var ve *schemas.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, []string{tt.field}, ve.Fields())
		})
	}
}
