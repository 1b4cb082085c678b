package pii

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// guardTestPseudonym builds a pseudonym the way the SDK does: key id,
// colon, and 16 bytes as base64url.
func guardTestPseudonym(r *rand.Rand, keyID string) string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return keyID + ":" + base64.RawURLEncoding.EncodeToString(b)
}

// piiKindsIn returns the kinds Check reports for the attrs value v.
func piiKindsIn(v string) []Kind {
	e := &schemas.Event{Attrs: map[string]string{"v": v}}
	var out []Kind
	for _, f := range Check(e) {
		out = append(out, f.Kind)
	}
	return out
}

func TestCheckFlags(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	tests := []struct {
		name  string
		value string
		want  []Kind
	}{
		{name: "email/plain", value: "alice@example.com", want: []Kind{KindEmail}},
		{name: "email/subaddress", value: "Alice.Smith+tag@mail.example.co.uk", want: []Kind{KindEmail}},
		{name: "email/in text", value: "contact bob@example.org.", want: []Kind{KindEmail}},
		{name: "email/url encoded", value: "/reset?to=bob%40example.com", want: []Kind{KindEmail}},
		{name: "email/mailto", value: "mailto:x@y.io", want: []Kind{KindEmail}},

		{name: "phone/e164", value: "+4915112345678", want: []Kind{KindPhone}},
		{name: "phone/e164 spaced", value: "+49 151 12345678", want: []Kind{KindPhone}},
		{name: "phone/e164 us", value: "+1 (555) 123-4567", want: []Kind{KindPhone}},
		{name: "phone/e164 trunk in parens", value: "+49 (0) 30 1234567", want: []Kind{KindPhone}},
		{name: "phone/tel uri", value: "tel:+442079460958", want: []Kind{KindPhone}},
		{name: "phone/nanp parens", value: "(555) 123-4567", want: []Kind{KindPhone}},
		{name: "phone/nanp dashes", value: "call 555-123-4567 now", want: []Kind{KindPhone}},
		{name: "phone/nanp dots", value: "555.123.4567", want: []Kind{KindPhone}},
		{name: "phone/nanp country code", value: "1-555-123-4567", want: []Kind{KindPhone}},
		{name: "phone/de landline", value: "030 1234567", want: []Kind{KindPhone}},
		{name: "phone/de landline parens", value: "(030) 1234567", want: []Kind{KindPhone}},
		{name: "phone/de slash", value: "030/1234567", want: []Kind{KindPhone}},
		{name: "phone/de mobile", value: "0151-12345678", want: []Kind{KindPhone}},
		{name: "phone/fr spaces", value: "06 12 34 56 78", want: []Kind{KindPhone}},
		{name: "phone/fr dots", value: "06.12.34.56.78", want: []Kind{KindPhone}},
		{name: "phone/uk", value: "020 7946 0958", want: []Kind{KindPhone}},
		{name: "phone/international prefix", value: "004915112345678", want: []Kind{KindPhone}},
		{name: "phone/international prefix spaced", value: "0049 30 1234567", want: []Kind{KindPhone}},

		{name: "ip/v4", value: "203.0.113.7", want: []Kind{KindIPAddress}},
		{name: "ip/v4 with port", value: "ip=198.51.100.23:443", want: []Kind{KindIPAddress}},
		{name: "ip/v4 version-like", value: "1.2.3.4", want: []Kind{KindIPAddress}},
		{name: "ip/v4 loopback", value: "127.0.0.1", want: []Kind{KindIPAddress}},
		{name: "ip/v4 end of sentence", value: "blocked 192.0.2.1.", want: []Kind{KindIPAddress}},
		{name: "ip/v4 host prefix", value: "10.0.0.1/32", want: []Kind{KindIPAddress}},
		{name: "ip/v4 host bits set", value: "203.0.113.7/24", want: []Kind{KindIPAddress}},
		{name: "ip/v4 too narrow", value: "203.0.113.0/25", want: []Kind{KindIPAddress}},
		{name: "ip/v6", value: "2001:db8::1", want: []Kind{KindIPAddress}},
		{name: "ip/v6 full", value: "2001:0db8:85a3:0000:0000:8a2e:0370:7334", want: []Kind{KindIPAddress}},
		{name: "ip/v6 bracketed with port", value: "[2001:db8::1]:443", want: []Kind{KindIPAddress}},
		{name: "ip/v6 after a word", value: "ip:2001:db8::1", want: []Kind{KindIPAddress}},
		{name: "ip/v6 loopback", value: "::1", want: []Kind{KindIPAddress}},
		{name: "ip/v6 zone", value: "fe80::1%eth0", want: []Kind{KindIPAddress}},
		{name: "ip/v4 mapped", value: "::ffff:198.51.100.1", want: []Kind{KindIPAddress}},
		{name: "ip/v6 host prefix", value: "2001:db8::1/128", want: []Kind{KindIPAddress}},

		{name: "jwt/full", value: jwt, want: []Kind{KindJWT}},
		{name: "jwt/header only", value: "eyJhbGciOiJIUzI1NiJ9", want: []Kind{KindJWT}},
		{name: "jwt/truncated", value: "eyJhbGci", want: []Kind{KindJWT}},
		{name: "jwt/header with more glued on", value: "eyJhbGciOiJIUzI1NiJ9abcdefgh", want: []Kind{KindJWT}},
		{name: "jwt/in query", value: "/cb?token=" + jwt, want: []Kind{KindJWT}},

		{name: "bearer/opaque", value: "Bearer mF_9.B5f-4.1JqM0123", want: []Kind{KindBearerToken}},
		{name: "bearer/lower case header", value: "authorization: bearer abcdef0123456789xyz", want: []Kind{KindBearerToken, KindCredential}},
		{name: "bearer/long letters", value: "Bearer abcdefghijklmnopqrstuvwxyzABCDEFGH", want: []Kind{KindBearerToken}},
		{name: "bearer/jwt", value: "Bearer " + jwt, want: []Kind{KindJWT, KindBearerToken}},

		{name: "api key/stripe live", value: "sk_live_4eC39HqLyjWDarjtT1zdp7dc", want: []Kind{KindAPIKey}},
		{name: "api key/stripe restricted", value: "rk_test_51H8abcDEFghiJKLmnoPQ", want: []Kind{KindAPIKey}},
		{name: "api key/github classic", value: "ghp_16C7e42F292c6912E7710c838347Ae178B4a", want: []Kind{KindAPIKey}},
		{name: "api key/github fine grained", value: "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", want: []Kind{KindAPIKey}},
		{name: "api key/gitlab", value: "glpat-xxxxxxxxxxxxxxxxxxxx", want: []Kind{KindAPIKey}},
		{name: "api key/slack bot", value: "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", want: []Kind{KindAPIKey}},
		{name: "api key/slack user", value: "token xoxp-1234567890-abcdefghij", want: []Kind{KindAPIKey, KindCredential}},
		{name: "api key/aws", value: "AKIAIOSFODNN7EXAMPLE", want: []Kind{KindAPIKey}},
		{name: "api key/aws sts", value: "key=ASIAY34FZKBOKMUTVV7A", want: []Kind{KindAPIKey}},
		{name: "api key/google", value: "AIzaSyA-1234567890abcdefghijklmnopqrstu", want: []Kind{KindAPIKey}},
		{name: "api key/openai project", value: "sk-proj-abcdefghij0123456789ABCDEFGHIJ", want: []Kind{KindAPIKey}},
		{name: "api key/anthropic", value: "sk-ant-api03-abcdefghij0123456789_ABCDEFG", want: []Kind{KindAPIKey}},

		{name: "several/email and ip", value: "bob@example.com from 203.0.113.9", want: []Kind{KindEmail, KindIPAddress}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, piiKindsIn(tt.value))
		})
	}
}

func TestCheckIgnoresLookAlikes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
	}{
		{name: "pseudonym/sdk", value: "k1:Xc9_0-aBcDeFgHiJkLmNoP"},
		{name: "pseudonym/digits inside base64", value: "k1:ab123456789012345678cd"},
		{name: "pseudonym/phone-like digits glued to base64", value: "k1:ab-0151-12345678-xy"},
		{name: "pseudonym/eyJ not a header", value: "k1:eyJ___________________"},
		{name: "pseudonym/eyJ mid-word", value: "k1:abceyJhbGciOiJIUzI1NiJ9"},
		{name: "pseudonym/key id of digits", value: "2026:Xc9_0-aBcDeFgHiJkLmNoP"},
		{name: "uuid", value: "123e4567-e89b-12d3-a456-426614174000"},
		{name: "uuid/all digit groups", value: "12345678-1234-1234-1234-123456789012"},
		{name: "ulid", value: "01JD8QW6X0T8K7N4ZQ6XJ9F3V5"},
		{name: "time/rfc3339", value: "2026-11-25T10:00:00.000Z"},
		{name: "time/with offset", value: "2026-11-25T10:00:00.123+01:00"},
		{name: "time/sql", value: "2026-11-25 10:00:00"},
		{name: "time/clock", value: "10:00:00"},
		{name: "date/iso", value: "2026-11-25"},
		{name: "date/european", value: "25.11.2026"},
		{name: "date/european with time", value: "25.11.2026 10:30"},
		{name: "date/us", value: "11/25/2026"},
		{name: "version/v prefix", value: "v1.2.3.4"},
		{name: "version/five parts", value: "1.2.3.4.5"},
		{name: "version/three parts", value: "Chrome/131.0.6778"},
		{name: "version/build suffix", value: "1.2.3.4-beta"},
		{name: "number/epoch millis", value: "1700000000123"},
		{name: "number/bare international digits", value: "4915112345678"},
		{name: "number/zero padded", value: "0012345678"},
		{name: "number/zero padded long", value: "000123456789012"},
		{name: "number/amount", value: "price 1,234.56 EUR"},
		{name: "number/status codes", value: "codes 0 404 500 502 503"},
		{name: "number/plus small", value: "+10 points"},
		{name: "number/timezone", value: "+05:30"},
		{name: "number/three octets", value: "192.168.1"},
		{name: "text/reason", value: "too many failed attempts (5) within 60 s"},
		{name: "text/protocol", value: "HTTP/1.1 200 port 8080"},
		{name: "email/localhost", value: "user@localhost"},
		{name: "email/handle", value: "@alice.smith"},
		{name: "email/no tld", value: "foo@bar"},
		{name: "email/numeric tld", value: "pkg@1.2.3"},
		{name: "bearer/word", value: "Bearer token missing"},
		{name: "bearer/letters only short", value: "Bearer authentication_required"},
		{name: "bearer/snake case", value: "bearer_token_expired_0123456789"},
		{name: "network/v4", value: "203.0.113.0/24"},
		{name: "network/v4 wide", value: "10.0.0.0/8"},
		{name: "network/v6", value: "2001:db8:1::/48"},
		{name: "address/unspecified v4", value: "0.0.0.0"},
		{name: "address/unspecified v6", value: "::"},
		{name: "mac", value: "00:1a:2b:3c:4d:5e"},
		{name: "cpp scope", value: "std::vector"},
		{name: "api key/no word start", value: "task_live_abcdef0123456789abcd"},
		{name: "api key/too short", value: "sk_live_short"},
		{name: "api key/publishable", value: "pk_live_4eC39HqLyjWDarjtT1zdp7dc"},
		{name: "api key/aws too short", value: "AKIAIOSFODNN7EXAMPL"},
		{name: "api key/aws lower case", value: "AKIAiosfodnn7example"},
		{name: "city/accents", value: "Saint-Étienne"},
		{name: "city/space", value: "São Paulo"},
		{name: "redacted placeholder", value: "[redacted:email,phone,ip_address,jwt,bearer_token,api_key]"},
		{name: "empty", value: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Empty(t, piiKindsIn(tt.value))
		})
	}
}

// TestCheckIgnoresGeneratedIDs checks many random SDK pseudonyms, longer
// base64url ids and UUIDs: none may be flagged.
func TestCheckIgnoresGeneratedIDs(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := range 50000 {
		id := make([]byte, 1+r.IntN(16))
		for j := range id {
			id[j] = alnum[r.IntN(len(alnum))]
		}
		long := make([]byte, 32)
		for j := range long {
			long[j] = byte(r.Uint32())
		}
		uuid := make([]byte, 16)
		for j := range uuid {
			uuid[j] = byte(r.Uint32())
		}
		for _, v := range []string{
			guardTestPseudonym(r, string(id)),
			base64.RawURLEncoding.EncodeToString(long),
			fmt.Sprintf("%x-%x-%x-%x-%x", uuid[0:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:]),
		} {
			require.Zero(t, scanPII(v), "case %d: %q", i, v)
		}
	}
}

func TestCheckFields(t *testing.T) {
	t.Parallel()
	clean := "k1:Xc9_0-aBcDeFgHiJkLmNoP"
	tests := []struct {
		name  string
		event schemas.Event
		want  []Finding
	}{
		{
			name: "pseudonymous fields",
			event: schemas.Event{
				Subject:         "alice@example.com",
				Session:         "2001:db8::1",
				PreviousSession: "+4915112345678",
				Client:          &schemas.Client{Device: "eyJhbGciOiJIUzI1NiJ9", IPHash: "198.51.100.7"},
				Token:           &schemas.Token{ID: "sk_live_4eC39HqLyjWDarjtT1zdp7dc", Family: clean, Parent: "AKIAIOSFODNN7EXAMPLE"},
			},
			want: []Finding{
				{Field: "subject", Kind: KindEmail},
				{Field: "session", Kind: KindIPAddress},
				{Field: "previous_session", Kind: KindPhone},
				{Field: "client.device", Kind: KindJWT},
				{Field: "client.ip_hash", Kind: KindIPAddress},
				{Field: "token.id", Kind: KindAPIKey},
				{Field: "token.parent", Kind: KindAPIKey},
			},
		},
		{
			name: "free text fields",
			event: schemas.Event{
				Subject: clean,
				Reason:  "locked after login from 203.0.113.9 by bob@example.com",
				Action:  &schemas.Action{Name: "export for carol@example.org"},
				Client:  &schemas.Client{City: "call 030 1234567"},
			},
			want: []Finding{
				{Field: "reason", Kind: KindEmail},
				{Field: "reason", Kind: KindIPAddress},
				{Field: "client.city", Kind: KindPhone},
				{Field: "action.name", Kind: KindEmail},
			},
		},
		{
			name: "attrs keys and values in key order",
			event: schemas.Event{
				Subject: clean,
				Attrs: map[string]string{
					"plan":              "pro",
					"email":             "dave@example.com",
					"bob@example.com":   "x",
					"ann@example.com":   "y",
					"note":              "Bearer abcdef0123456789xyz",
					"[redacted:email]":  "kept",
					"zz.phone":          "+1 (555) 123-4567",
					"2001:db8::42":      "z",
					"requested_at":      "2026-11-25T10:00:00.000Z",
					"sdk_version":       "v1.2.3.4",
					"previous_location": "10.0.0.0/8",
				},
			},
			want: []Finding{
				{Field: "attrs.[redacted:ip_address]", Kind: KindIPAddress},
				{Field: "attrs.[redacted:email:2]", Kind: KindEmail},
				{Field: "attrs.[redacted:email:3]", Kind: KindEmail},
				{Field: "attrs.email", Kind: KindEmail},
				{Field: "attrs.note", Kind: KindBearerToken},
				{Field: "attrs.zz.phone", Kind: KindPhone},
			},
		},
		{
			name:  "ip prefix host address",
			event: schemas.Event{Subject: clean, Client: &schemas.Client{IPPrefix: "203.0.113.7"}},
			want:  []Finding{{Field: "client.ip_prefix", Kind: KindIPAddress}},
		},
		{
			name:  "ip prefix network",
			event: schemas.Event{Subject: clean, Client: &schemas.Client{IPPrefix: "203.0.113.0/24"}},
		},
		{
			name: "user agent versions and identifiers",
			event: schemas.Event{
				Subject: clean,
				Client:  &schemas.Client{UserAgent: "Mozilla/5.0 Chrome/131.0.0.0 Safari/537.36 bob@example.com"},
				Token:   &schemas.Token{KID: "2026-11", Claims: []string{"email"}},
			},
			want: []Finding{{Field: "client.user_agent", Kind: KindEmail}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Check(&tt.event))
		})
	}
}

func TestCheckNil(t *testing.T) {
	t.Parallel()
	require.Nil(t, Check(nil))
	require.Nil(t, Check(guardTestEvent()))
}

// TestIPPrefixAgreesWithValidate keeps the guard's ip_prefix rule in step
// with schemas.Validate: a value that parses as an address flags exactly
// when Validate rejects it.
func TestIPPrefixAgreesWithValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		prefix    string
		wantGuard bool
	}{
		{name: "v4/24", prefix: "203.0.113.0/24"},
		{name: "v4/16", prefix: "198.51.0.0/16"},
		{name: "v4/0", prefix: "0.0.0.0/0"},
		{name: "v4/25", prefix: "203.0.113.0/25", wantGuard: true},
		{name: "v4/32", prefix: "203.0.113.7/32", wantGuard: true},
		{name: "v4 host bits", prefix: "203.0.113.7/24", wantGuard: true},
		{name: "v4 bare", prefix: "203.0.113.7", wantGuard: true},
		{name: "v6/48", prefix: "2001:db8:1::/48"},
		{name: "v6/32", prefix: "2001:db8::/32"},
		{name: "v6/64", prefix: "2001:db8:1:2::/64", wantGuard: true},
		{name: "v6 host bits", prefix: "2001:db8:1::1/48", wantGuard: true},
		{name: "v6 bare", prefix: "2001:db8::1", wantGuard: true},
		{name: "v4 mapped", prefix: "::ffff:203.0.113.0/120", wantGuard: true},
		// Not an address at all: a schema error, not personal data.
		{name: "garbage", prefix: "not-a-prefix"},
		{name: "email in prefix", prefix: "bob@example.com", wantGuard: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := guardTestEvent()
			e.Client.IPPrefix = tt.prefix
			var validateRejects bool
			if err := e.Validate(now); err != nil {
				var ve *schemas.ValidationError
				require.ErrorAs(t, err, &ve)
				validateRejects = slices.Contains(ve.Fields(), "client.ip_prefix")
			}
			guardFlags := slices.ContainsFunc(Check(e), func(f Finding) bool { return f.Field == "client.ip_prefix" })
			require.Equal(t, tt.wantGuard, guardFlags)
			if tt.name != "garbage" && tt.name != "email in prefix" {
				require.Equal(t, validateRejects, guardFlags, "guard and schemas.Validate disagree")
			} else {
				require.True(t, validateRejects)
			}
		})
	}
}

func TestRedactJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		in           string
		want         string
		wantFindings []Finding
	}{
		{
			name: "valid event",
			in:   `{"id":"e1","subject":"alice@example.com","client":{"ip_prefix":"203.0.113.7","user_agent":"Chrome/131.0.0.0","asn":64500},"attrs":{"n":"+4915112345678","ok":"2026-11-25T10:00:00.000Z"}}`,
			want: `{"id":"e1","subject":"[redacted:email]","client":{"ip_prefix":"[redacted:ip_address]","user_agent":"Chrome/131.0.0.0","asn":64500},"attrs":{"n":"[redacted:phone]","ok":"2026-11-25T10:00:00.000Z"}}`,
			wantFindings: []Finding{
				{Field: "attrs.n", Kind: KindPhone},
				{Field: "client.ip_prefix", Kind: KindIPAddress},
				{Field: "subject", Kind: KindEmail},
			},
		},
		{
			name: "unknown fields are all scanned",
			in:   `{"subject":"k1:Xc9_0-aBcDeFgHiJkLmNoP","user":{"email":"bob@example.com","ips":["198.51.100.1","v1.2.3.4.5"]},"big":12345678901234567890}`,
			want: `{"subject":"k1:Xc9_0-aBcDeFgHiJkLmNoP","user":{"email":"[redacted:email]","ips":["[redacted:ip_address]","v1.2.3.4.5"]},"big":12345678901234567890}`,
			wantFindings: []Finding{
				{Field: "user.email", Kind: KindEmail},
				{Field: "user.ips[0]", Kind: KindIPAddress},
			},
		},
		{
			name:         "flagged keys",
			in:           `{"attrs":{"bob@example.com":"x"},"carol@example.com":{"a":"b"}}`,
			want:         `{"attrs":{"[redacted:email]":"[redacted:email]"},"[redacted:email]":"[redacted:email]"}`,
			wantFindings: []Finding{{Field: "[redacted:email]", Kind: KindEmail}, {Field: "attrs.[redacted:email]", Kind: KindEmail}},
		},
		{
			name:         "not an object",
			in:           `"alice@example.com"`,
			want:         `"[redacted:email]"`,
			wantFindings: []Finding{{Field: "(event)", Kind: KindEmail}},
		},
		{
			name: "fields validation constrains are scanned too",
			in:   `{"id":"203.0.113.77","app":"ip-203-0-113-77","client":{"user_agent":"Mozilla/5.0 (bob@example.com) Chrome/120.0.0.0"}}`,
			want: `{"id":"[redacted:ip_address]","app":"[redacted:ip_address]","client":{"user_agent":"[redacted:email]"}}`,
			wantFindings: []Finding{
				{Field: "id", Kind: KindIPAddress},
				{Field: "app", Kind: KindIPAddress},
				{Field: "client.user_agent", Kind: KindEmail},
			},
		},
		{
			name: "every copy of a duplicate key",
			in:   `{"action":{"name":"bob@example.com"},"action":{"name":"transfer.create"},"subject":"x","subject":"+4915112345678"}`,
			want: `{"action":{"name":"[redacted:email]"},"action":{"name":"transfer.create"},"subject":"x","subject":"[redacted:phone]"}`,
			wantFindings: []Finding{
				{Field: "action.name", Kind: KindEmail},
				{Field: "subject", Kind: KindPhone},
			},
		},
		{
			name: "numbers and strings under telling keys",
			in:   `{"phone":5551234567,"attrs":{"client_ip":"3405803853","mobile":"555 123 4567","ip_count":"20000000"},"n":[1,2]}`,
			want: `{"phone":"[redacted:phone]","attrs":{"client_ip":"[redacted:ip_address]","mobile":"[redacted:phone]","ip_count":"20000000"},"n":[1,2]}`,
			wantFindings: []Finding{
				{Field: "phone", Kind: KindPhone},
				{Field: "attrs.client_ip", Kind: KindIPAddress},
				{Field: "attrs.mobile", Kind: KindPhone},
			},
		},
		{
			name: "html is not escaped",
			in:   `{"reason":"a<b>&c"}`,
			want: `{"reason":"a<b>&c"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, findings, err := RedactJSON([]byte(tt.in))
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
			require.Equal(t, tt.want, string(got))
			require.ElementsMatch(t, tt.wantFindings, findings)
		})
	}
}

// TestRedactJSONMatchesCheck checks that a decoded event and its JSON
// give the same findings.
func TestRedactJSONMatchesCheck(t *testing.T) {
	t.Parallel()
	e := guardTestEvent()
	e.Subject = "alice@example.com"
	e.Client.IPPrefix = "2001:db8::1"
	e.Client.City = "+1 (555) 123-4567"
	e.Token.ID = "AKIAIOSFODNN7EXAMPLE"
	e.Attrs["203.0.113.5"] = "x"
	e.Attrs["token"] = "eyJhbGciOiJIUzI1NiJ9"
	b, err := schemas.Encode(e)
	require.NoError(t, err)
	_, findings, err := RedactJSON(b)
	require.NoError(t, err)
	require.ElementsMatch(t, Check(e), findings)
}

func TestRedactJSONRejectsNonJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
	}{
		{name: "syntax", in: `{"subject":"alice@example.com"`},
		{name: "trailing", in: `{"a":"b"} {"c":"d"}`},
		{name: "empty", in: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, findings, err := RedactJSON([]byte(tt.in))
			require.Error(t, err)
			require.Nil(t, got)
			require.Nil(t, findings)
			require.NotContains(t, err.Error(), "alice@example.com")
		})
	}
}

func TestRedactRaw(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		in           string
		want         string
		wantRedacted bool
	}{
		{name: "clean json kept byte for byte", in: `{"z":1, "a":"k1:Xc9_0-aBcDeFgHiJkLmNoP"}`, want: `{"z":1, "a":"k1:Xc9_0-aBcDeFgHiJkLmNoP"}`},
		{name: "json with an email", in: `{"subject":"alice@example.com","extra":1}`, want: `{"subject":"[redacted:email]","extra":1}`, wantRedacted: true},
		{name: "duplicate key, the last clean", in: `{"subject":"alice@example.com","subject":"k1:Xc9_0-aBcDeFgHiJkLmNoP"}`, want: `{"subject":"[redacted:email]","subject":"k1:Xc9_0-aBcDeFgHiJkLmNoP"}`, wantRedacted: true},
		{name: "duplicate key, both clean, re-encoded", in: `{"a":"x",  "a":"y"}`, want: `{"a":"x","a":"y"}`, wantRedacted: true},
		{name: "personal data in a field validation constrains", in: `{"id":"bob@example.com","app":"a"}`, want: `{"id":"[redacted:email]","app":"a"}`, wantRedacted: true},
		{name: "user agent", in: `{"client":{"user_agent":"Mozilla/5.0 203.0.113.77"}}`, want: `{"client":{"user_agent":"[redacted:ip_address]"}}`, wantRedacted: true},
		{name: "trailing data dropped", in: `{"a":"x"} {"b":"bob@example.com"}`, want: `{"a":"x"}`, wantRedacted: true},
		{name: "trailing clean data dropped", in: `{"a":"x"} 1`, want: `{"a":"x"}`, wantRedacted: true},
		{name: "invalid utf-8 in json re-encoded", in: "{\"a\":\"x\xffy\"}", want: "{\"a\":\"x\uFFFDy\"}", wantRedacted: true},
		{name: "invalid utf-8 text dropped", in: "not json \xff", want: "", wantRedacted: true},
		{name: "invalid json number", in: `{"phone":0301234567}`, want: `[redacted:phone]`, wantRedacted: true},
		{name: "truncated json with a telling key", in: `{"phone":"555 123 4567","x":`, want: `[redacted:phone]`, wantRedacted: true},
		{name: "clean text kept", in: `{"subject":"k1:Xc9_0-aBcDeFgHiJkLmNoP"`, want: `{"subject":"k1:Xc9_0-aBcDeFgHiJkLmNoP"`},
		{name: "text with personal data dropped", in: `{"subject":"alice@example.com","ip":"203.0.113.9"`, want: `[redacted:email,ip_address]`, wantRedacted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, redacted := RedactRaw([]byte(tt.in))
			require.Equal(t, tt.want, string(got))
			require.Equal(t, tt.wantRedacted, redacted)
		})
	}
}

func TestRedactText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "schema error quoting a key", in: "attrs.bob@example.com: key must be 1-64 characters", want: "[redacted:email]"},
		{name: "clean error", in: "client.ip_prefix: must have its host bits zero", want: "client.ip_prefix: must have its host bits zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, RedactText(tt.in))
		})
	}
	t.Run("schema errors without personal data are kept", func(t *testing.T) {
		t.Parallel()
		e := guardTestEvent()
		e.Client.IPPrefix = "203.0.113.7/24"
		e.Client.Country = "Germany"
		e.Token.Kind = "session"
		e.Policy = &schemas.Policy{IdleTimeoutS: -1}
		e.Attrs["bad key"] = "x"
		err := e.Validate(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
		require.Error(t, err)
		require.Equal(t, err.Error(), RedactText(err.Error()))
		for _, data := range []string{`{"time":"2026-11-25T10:00:00Z"}`, `{"unknown":1}`, `{`} {
			_, err := schemas.Decode([]byte(data), time.Now())
			require.Error(t, err)
			require.Equal(t, err.Error(), RedactText(err.Error()))
		}
	})
}

func TestRedactFieldPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "schema field", path: "client.ip_prefix", want: "client.ip_prefix"},
		{name: "clean attrs key", path: "attrs.zz.phone", want: "attrs.zz.phone"},
		{name: "attrs key", path: "attrs.bob@example.com", want: "attrs.[redacted:email]"},
		{name: "attrs key shortened by schemas", path: "attrs.bob.smith.the.third@examp...", want: "attrs.[redacted:email]"},
		{name: "unknown field in a block", path: "client.203.0.113.9", want: "client.[redacted:ip_address]"},
		{name: "unknown top-level field", path: "+4915112345678", want: "[redacted:phone]"},
		{name: "clean unknown field", path: "client.colour", want: "client.colour"},
		{name: "array index", path: "token.claims[3]", want: "token.claims[3]"},
		{name: "whole event", path: "(event)", want: "(event)"},
		{name: "already redacted", path: "attrs.[redacted:email:2]", want: "attrs.[redacted:email:2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, RedactFieldPath(tt.path))
		})
	}
}

func TestRedactSchemaError(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	valid, err := schemas.Encode(guardTestEvent())
	require.NoError(t, err)
	withAttr := func(key string) []byte {
		return []byte(strings.Replace(string(valid), `"attrs":{`, `"attrs":{"`+key+`":"x",`, 1))
	}
	tests := []struct {
		name       string
		data       []byte
		wantFields []string
		secret     string
	}{
		{
			name:       "attrs key",
			data:       withAttr("bob@example.org"),
			wantFields: []string{"attrs.[redacted:email]"},
			secret:     "bob@example.org",
		},
		{
			name:       "long attrs key",
			data:       withAttr("robert.the.third.smith.jr@example.org"),
			wantFields: []string{"attrs.[redacted:email]"},
			secret:     "robert.the.third",
		},
		{
			name:       "unknown field",
			data:       []byte(strings.Replace(string(valid), `"app":`, `"carol@example.com":1,"app":`, 1)),
			wantFields: []string{"[redacted:email]"},
			secret:     "carol@example.com",
		},
		{
			name:       "clean error",
			data:       []byte(strings.Replace(string(valid), `"app":"shop"`, `"app":"a b"`, 1)),
			wantFields: []string{"app"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := schemas.Decode(tt.data, now)
			require.Error(t, err)
			fields, msg := RedactSchemaError(err)
			require.Equal(t, tt.wantFields, fields)
			require.True(t, strings.HasPrefix(msg, "invalid event: "+tt.wantFields[0]+": "), msg)
			if tt.secret != "" {
				require.Contains(t, err.Error(), tt.secret, "the test must start from an error that quotes the key")
				require.NotContains(t, msg, tt.secret)
			}
		})
	}
	t.Run("other errors", func(t *testing.T) {
		t.Parallel()
		fields, msg := RedactSchemaError(errors.New("decode alice@example.com"))
		require.Nil(t, fields)
		require.Equal(t, "[redacted:email]", msg)
	})
}

func TestFoundError(t *testing.T) {
	t.Parallel()
	err := &FoundError{Findings: []Finding{{Field: "subject", Kind: KindEmail}, {Field: "attrs.ip", Kind: KindIPAddress}}}
	require.Equal(t, "personal data in event: subject: email; attrs.ip: ip_address", err.Error())
	b, mErr := json.Marshal(err.Findings[0])
	require.NoError(t, mErr)
	require.JSONEq(t, `{"field":"subject","kind":"email"}`, string(b))
}

// guardTestEvent is a clean event as the SDK sends it.
func guardTestEvent() *schemas.Event {
	lat, lon := 52.52, 13.405
	return &schemas.Event{
		ID:            "01JD8QW6X0T8K7N4ZQ6XJ9F3V5",
		SchemaVersion: schemas.SchemaVersion,
		Type:          schemas.TokenRefreshed,
		Time:          schemas.At(time.Date(2026, 11, 25, 9, 59, 0, 0, time.UTC)),
		App:           "shop",
		Subject:       "k1:3q2-7wEjRZ8pLn0uVb4xTg",
		Session:       "k1:Q9vN_s8Xk2LmZp4rT6yWbA",
		Client: &schemas.Client{
			Device:    "k1:aF3-9kLmNb2Xq7Rt5VwYzA",
			IPPrefix:  "203.0.113.0/24",
			IPHash:    "k1:Zx8_Lm3Nq9Rt2Vw5Yb7Cda",
			Country:   "DE",
			City:      "Berlin",
			Lat:       &lat,
			Lon:       &lon,
			UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		},
		Token: &schemas.Token{
			ID:     "k1:Jt7_xQ2mN8bV4cZ6LpR0wA",
			Kind:   schemas.TokenRefresh,
			Family: "k1:Fm4-Kp9Lq2Wx7Zr5Nb3TvA",
			Parent: "k1:Pr2_Hs8Gd4Jk6Lz0Xc5VbA",
		},
		Attrs: map[string]string{
			"plan":         "pro",
			"tenant":       "acme-eu",
			"request_id":   "req_01JD8QW6X0T8K7N4ZQ6XJ9F3V5",
			"requested_at": "2026-11-25T09:58:59.120Z",
		},
	}
}

func BenchmarkCheck(b *testing.B) {
	e := guardTestEvent()
	b.ReportAllocs()
	for b.Loop() {
		if f := Check(e); f != nil {
			b.Fatal(f)
		}
	}
}

// redactedKeyField matches a flagged attrs key's path.
var redactedKeyField = regexp.MustCompile(`^attrs\.\[redacted:[a-z_,]+(:[0-9]+)?\]$`)

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "+49 151 12345678", "(555) 123-4567", "203.0.113.7", "2001:db8::1",
		"eyJhbGciOiJIUzI1NiJ9.e30.sig", "Bearer abcdef0123456789xyz", "AKIAIOSFODNN7EXAMPLE",
		"k1:Xc9_0-aBcDeFgHiJkLmNoP", "2026-11-25T10:00:00.000Z", "203.0.113.0/24", "bob%40example.com",
		"[redacted:email]", "", "note",
	} {
		f.Add(s)
	}
	fields := []string{"subject", "session", "reason", "client.device", "client.ip_prefix", "client.city", "token.id", "action.name", "attrs.note"}
	f.Fuzz(func(t *testing.T, s string) {
		e := &schemas.Event{
			Subject: s,
			Session: s,
			Reason:  s,
			Client:  &schemas.Client{Device: s, IPPrefix: s, City: s},
			Token:   &schemas.Token{ID: s},
			Action:  &schemas.Action{Name: s},
			Attrs:   map[string]string{"note": s, s: "x"},
		}
		findings := Check(e)
		for _, fd := range findings {
			require.Contains(t, piiKinds[:], fd.Kind)
			if !slices.Contains(fields, fd.Field) {
				// The only other path is a flagged key's placeholder,
				// never the key itself.
				require.Regexp(t, redactedKeyField, fd.Field)
			}
		}
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		red, jf, err := RedactJSON(b)
		require.NoError(t, err)
		require.ElementsMatch(t, findings, jf)
		again, jf2, err := RedactJSON(red)
		require.NoError(t, err)
		require.Empty(t, jf2, "a redacted event must be clean")
		require.Equal(t, string(red), string(again))
		if scanPII(s) != 0 {
			require.NotContains(t, string(red), s)
		}

		// s as a raw body and as text.
		body, redacted := RedactRaw([]byte(s))
		if !redacted {
			require.Equal(t, s, string(body))
		}
		require.Zero(t, scanPII(RedactText(s)))
	})
}

// TestUserAgentScanCached: a User-Agent's scan is cached, and the cached
// answer is the scan's, for a clean string and for a personal one alike.
func TestUserAgentScanCached(t *testing.T) {
	for _, ua := range []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 cached-test",
		"Mozilla/5.0 (cached-test; alice@example.com)",
	} {
		want := scanText(ua, modeUserAgent)
		for range 3 {
			require.Equal(t, want, scanUserAgent(ua), ua)
		}
		got, ok := userAgentScans.Get(ua)
		require.True(t, ok, "cached")
		require.Equal(t, want, got)
	}
	e := &schemas.Event{Client: &schemas.Client{UserAgent: "Mozilla/5.0 (cached-test; alice@example.com)"}}
	require.Equal(t, []Finding{{Field: "client.user_agent", Kind: KindEmail}}, Check(e))
	require.Equal(t, []Finding{{Field: "client.user_agent", Kind: KindEmail}}, Check(e), "the second, cached, scan finds it too")
}
