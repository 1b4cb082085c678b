package pii

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// TestScanFindsDisguisedValues covers personal data written so that a
// plain scan for "@", dotted quads and separated phone numbers misses it.
func TestScanFindsDisguisedValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
		want  Kind
	}{
		{name: "email/fullwidth at", value: "bob＠example.com", want: KindEmail},
		{name: "email/fullwidth everything", value: "ｂｏｂ＠ｅｘａｍｐｌｅ．ｃｏｍ", want: KindEmail},
		{name: "email/small commercial at", value: "bob﹫example.com", want: KindEmail},
		{name: "email/ideographic full stop", value: "bob@example。com", want: KindEmail},
		{name: "email/percent encoded", value: "bob%40example.com", want: KindEmail},
		{name: "email/percent encoded lower hex dot", value: "bob%40example%2ecom", want: KindEmail},
		{name: "email/double percent encoded", value: "bob%2540example.com", want: KindEmail},
		{name: "email/decimal entity", value: "bob&#64;example.com", want: KindEmail},
		{name: "email/hex entity", value: "bob&#x40;example.com", want: KindEmail},
		{name: "email/named entity", value: "bob&commat;example.com", want: KindEmail},
		{name: "email/unicode escape", value: `bob\u0040example.com`, want: KindEmail},
		{name: "email/zero width space", value: "bob\u200b@example.com", want: KindEmail},
		{name: "email/quoted local part", value: `"john doe"@example.com`, want: KindEmail},
		{name: "email/quoted local part with at", value: `"john@home"@example.com`, want: KindEmail},
		{name: "email/idn domain", value: "bob@bücher.de", want: KindEmail},
		{name: "email/idn tld", value: "ivan@пример.рф", want: KindEmail},
		{name: "email/punycode tld", value: "ivan@xn--e1afmkfd.xn--p1ai", want: KindEmail},
		{name: "email/non-ascii local part", value: "josé@example.com", want: KindEmail},
		{name: "email/all non-ascii", value: "用户@例子.广告", want: KindEmail},
		{name: "email/glued to text", value: "contact:bob@example.com是", want: KindEmail},

		{name: "ip/leading zeros", value: "203.000.113.077", want: KindIPAddress},
		{name: "ip/leading zeros in text", value: "from 010.001.002.003 today", want: KindIPAddress},
		{name: "ip/host name", value: "ip-203-0-113-77", want: KindIPAddress},
		{name: "ip/ec2 host name", value: "ec2-203-0-113-77.compute-1.amazonaws.com", want: KindIPAddress},
		{name: "ip/underscores", value: "203_0_113_77", want: KindIPAddress},
		{name: "ip/fullwidth dots", value: "203．0．113．77", want: KindIPAddress},
		{name: "ip/integer after label", value: "ip=3405803853", want: KindIPAddress},
		{name: "ip/integer after label with space", value: "client ip: 3405803853", want: KindIPAddress},
		{name: "ip/integer url host", value: "http://3405803853/login", want: KindIPAddress},

		{name: "phone/bare german", value: "0301234567", want: KindPhone},
		{name: "phone/bare german mobile", value: "015112345678", want: KindPhone},
		{name: "phone/bare french", value: "0612345678", want: KindPhone},
		{name: "phone/bare uk", value: "07700900123", want: KindPhone},
		{name: "phone/bare in text", value: "call 0612345678 now", want: KindPhone},
		{name: "phone/labelled us", value: "tel:5551234567", want: KindPhone},
		{name: "phone/labelled with spaces", value: "phone: 555 123 4567", want: KindPhone},
		{name: "phone/fullwidth digits", value: "＋４９１５１１２３４５６７８", want: KindPhone},

		{name: "credential/basic", value: "Basic dXNlcjpwYXNzd29yZA==", want: KindCredential},
		{name: "credential/basic lower case", value: "basic YWxpY2U6c2VjcmV0", want: KindCredential},
		{name: "credential/basic short", value: "Basic dTpw", want: KindCredential},
		{name: "credential/authorization header", value: "Authorization: Negotiate YIIB", want: KindCredential},
		{name: "credential/digest", value: `Digest username="bob", realm="x", response="6629fae4"`, want: KindCredential},
		{name: "credential/aws", value: "AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/s3/aws4_request", want: KindCredential},
		{name: "credential/token scheme", value: "Token 9f86d081884c7d659a2feaa0c55ad015", want: KindCredential},
		{name: "credential/ntlm", value: "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==", want: KindCredential},
		{name: "credential/api key header", value: "x-api-key: 0a1b2c3d", want: KindCredential},
		{name: "credential/oauth 1", value: `OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog"`, want: KindCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Contains(t, piiKindsIn(tt.value), tt.want)
			// The same in every free-text field of a valid event.
			for field, e := range eventsWith(tt.value) {
				require.NotEmpty(t, Check(e), field)
			}
		})
	}
}

// TestScanKeepsLegitimateValues covers values apps send that look a little
// like personal data and are not.
func TestScanKeepsLegitimateValues(t *testing.T) {
	t.Parallel()
	values := []string{
		// Key ids, algorithms, claim names, methods, cookie and action names.
		"2024-01-rsa", "2026-11", "kid-2024-01-15", "rsa-2048-v3", "RS256", "ES384", "EdDSA",
		"email", "phone_number", "email_verified", "https://example.com/claims/roles", "urn:example:claim",
		"password", "webauthn", "totp", "sms", "basic", "oidc", "saml", "magic_link", "passkey",
		"__Host-session", "__Secure-sid", "JSESSIONID", "connect.sid",
		"transfer.create", "account.delete", "admin.users.export", "payment.refund.v2",
		// Reasons and text.
		"basic auth disabled", "token refreshed", "token expired after 3600 s", "Token 2024-01-rsa",
		"digest algorithm sha256", "bearer token missing", "authorization failed", "ip changed",
		"ip address changed 3 times", "phone verified", "mobile app", "tel link clicked",
		"ip_count 20000000", "retry 12345678 ms", "order 1733543333", "at 1733543333000",
		// Numbers and ids.
		"0000012345", "000123456789012", "1733543333", "4294967296", "12345678",
		"01HGW2N7ZK8Q3V6T9X1B4C5D7E", "123e4567-e89b-12d3-a456-426614174000",
		"0.0123456789", "3.14159265358", "v1-2-3-4", "1-2-3-4", "steps 1-2-3", "2026-11-25-10-30",
		"1.2.3.4.5", "1.2.3.4-beta", "192.168.1", "10.0.0.0/8", "1-800-555-1234x",
		// URLs without personal data.
		"https://example.com/a%20b", "a &amp; b", `C:\users\public`, "&#60;tag&#62;",
		"caf&eacute;", "100%", "%zz", "50% off",
	}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			require.Empty(t, piiKindsIn(v))
		})
	}
}

// realUserAgents are User-Agent headers of current browsers, apps and bots.
var realUserAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/105.0.0.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/23.11.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/441.0.0.36.108;FBBV/546437770;FBDV/iPhone14,5]",
	"Mozilla/5.0 (Linux; Android 12; Pixel 6 Build/SD1A.210817.036; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/94.0.4606.71 Mobile Safari/537.36 Instagram 311.0.0.32.118 Android",
	"Dalvik/2.1.0 (Linux; U; Android 11; 2201117TG Build/RKQ1.211001.001)",
	"okhttp/4.12.0", "curl/8.4.0", "python-requests/2.31.0", "Go-http-client/2.0",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"MyApp/4.0.249.0 CFNetwork/1474 Darwin/23.0.0",
}

func TestUserAgentsAreClean(t *testing.T) {
	t.Parallel()
	for _, ua := range realUserAgents {
		e := &schemas.Event{Client: &schemas.Client{UserAgent: ua}}
		require.Empty(t, Check(e), ua)
		body := `{"client":{"user_agent":` + quoteJSON(ua) + `}}`
		out, redacted := RedactRaw([]byte(body))
		require.False(t, redacted, ua)
		require.Equal(t, body, string(out))
	}
	// An address is still an address in a User-Agent, outside a version.
	for _, ua := range []string{"Mozilla/5.0 (203.0.113.77)", "curl/8.4.0 from 203.0.113.77", "Mozilla/5.0 ip-203-0-113-77"} {
		require.Equal(t, []Finding{{Field: "client.user_agent", Kind: KindIPAddress}},
			Check(&schemas.Event{Client: &schemas.Client{UserAgent: ua}}), ua)
	}
}

// TestCheckScansEveryFreeTextField puts an address in each string field of
// a valid event in turn.
func TestCheckScansEveryFreeTextField(t *testing.T) {
	t.Parallel()
	const email = "bob@example.com"
	for field, e := range eventsWith(email) {
		require.Equal(t, []Finding{{Field: field, Kind: KindEmail}}, Check(e), field)
	}
	e := &schemas.Event{Token: &schemas.Token{Claims: []string{"sub", "203.0.113.77"}}}
	require.Equal(t, []Finding{{Field: "token.claims[1]", Kind: KindIPAddress}}, Check(e))
	e = &schemas.Event{ID: "0301234567", App: "ip-10-1-2-3"}
	require.Equal(t, []Finding{{Field: "id", Kind: KindPhone}, {Field: "app", Kind: KindIPAddress}}, Check(e))
	e = &schemas.Event{Attrs: map[string]string{"client_ip": "3405803853", "phone": "5551234567", "count": "3405803853"}}
	require.Equal(t, []Finding{{Field: "attrs.client_ip", Kind: KindIPAddress}, {Field: "attrs.phone", Kind: KindPhone}}, Check(e))
}

// eventsWith returns, by field path, events that carry v in one free-text
// field each.
func eventsWith(v string) map[string]*schemas.Event {
	return map[string]*schemas.Event{
		"id":                {ID: v},
		"reason":            {Reason: v},
		"client.city":       {Client: &schemas.Client{City: v}},
		"client.user_agent": {Client: &schemas.Client{UserAgent: v}},
		"token.kid":         {Token: &schemas.Token{KID: v}},
		"token.alg":         {Token: &schemas.Token{Alg: v}},
		"auth.method":       {Auth: &schemas.Auth{Method: v}},
		"cookie.name":       {Cookie: &schemas.Cookie{Name: v}},
		"action.name":       {Action: &schemas.Action{Name: v}},
		"key.kid":           {Key: &schemas.Key{KID: v}},
		"attrs.note":        {Attrs: map[string]string{"note": v}},
	}
}

func quoteJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// TestRedactRawHostileShapes: deep nesting, many findings and oversized
// messages stay cheap.
func TestRedactRawHostileShapes(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 9000) + `"203.0.113.7"` + strings.Repeat("]", 9000)
	start := time.Now()
	body, redacted := RedactRaw([]byte(deep))
	require.True(t, redacted)
	require.NotContains(t, string(body), "203.0.113.7")
	require.Contains(t, string(body), "[redacted:ip_address]")

	many := "[" + strings.Repeat(`"bob@example.com",`, 3000) + `"x"]`
	body, redacted = RedactRaw([]byte(many))
	require.True(t, redacted)
	require.NotContains(t, string(body), "bob@")
	_, findings, err := RedactJSON([]byte(many))
	require.NoError(t, err)
	require.Len(t, findings, maxRedactFindings)
	require.Less(t, time.Since(start), 5*time.Second)

	body, redacted = RedactRaw([]byte(`{"a":"` + strings.Repeat("x", MaxRawBytes) + `"}`))
	require.True(t, redacted)
	require.Nil(t, body)
}
