package sdk

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

// stdlibJSON is how encode wrote events before appendJSON: encoding/json
// without HTML escaping, newline trimmed. appendJSON must match it.
func stdlibJSON(w *wireEvent) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkSameJSON checks that appendJSON writes w byte for byte as
// encoding/json does, both into an empty buffer and after other bytes.
func checkSameJSON(t testing.TB, w *wireEvent) {
	t.Helper()
	want, err := stdlibJSON(w)
	check.NoError(t, err)
	if got := w.appendJSON(nil); !bytes.Equal(want, got) {
		t.Fatalf("appendJSON differs from encoding/json:\nwant: %s\n got: %s", want, got)
	}
	prefix := []byte(`[1,`)
	if got := w.appendJSON(prefix); !bytes.Equal(append(prefix, want...), got) {
		t.Fatalf("appendJSON after a prefix differs from encoding/json:\nwant: %s%s\n got: %s", prefix, want, got)
	}
}

// trickyStrings need every kind of escape encoding/json knows.
var trickyStrings = []string{
	"",
	"plain",
	`say "hi"`,
	`back\slash\\`,
	"line\nfeed\r\ttab\b\f",
	"\x00\x01\x07\x0b\x0e\x1b\x1f\x7f",
	"<script>&amp;</script>",
	"line\u2028separator\u2029paragraph",
	"emoji 😀 and accents éü and CJK 日本",
	"\ufffd replacement as such",
	"bad \xff byte",
	"cut \xe2\x80 rune",
	"surrogate \xed\xa0\x80 half",
	"overlong \xc0\xaf slash",
	"\xe2\x80\xa8\xe2\x80\xa9",
	"trailing \xf0\x9f\x98",
	strings.Repeat("x", 300),
}

// fullEvent returns a new event with every field set, nested ones too.
func fullEvent() *wireEvent {
	at := wireTime{time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC)}
	issued := wireTime{time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	expires := wireTime{time.Date(2026, 11, 25, 11, 0, 0, 123_456_789, time.UTC)}
	last := wireTime{time.Date(2026, 11, 24, 8, 30, 0, 1_000, time.FixedZone("CET", 3600))}
	lat, lon := 52.5, 13.404954
	mfa, secure, httpOnly := true, true, false
	return &wireEvent{
		ID: "01JDEMO", SchemaVersion: SchemaVersion, Type: SessionStarted, Time: at, App: "shop",
		Subject: "k1:TC0MKYu4yNSSboC78x8g7A", Session: "k1:WyGVRXuG3yPd8-AKOIrvkA",
		PreviousSession: "k1:AAAAAAAAAAAAAAAAAAAAAA", Reason: "login",
		Client: &wireClient{
			Device: "k1:dddddddddddddddddddddd", IPPrefix: "203.0.113.0/24", IPHash: "k1:hhhhhhhhhhhhhhhhhhhhhh",
			ASN: 64500, Country: "DE", City: "Berlin", Lat: &lat, Lon: &lon, AccuracyKM: 20,
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) <&>",
		},
		Token: &wireToken{
			ID: "k1:tttttttttttttttttttttt", Kind: TokenRefresh, Family: "k1:ffffffffffffffffffffff",
			Parent: "k1:pppppppppppppppppppppp", IssuedAt: &issued, ExpiresAt: &expires,
			KID: "sig-2026", Alg: "EdDSA", Claims: []string{"sub", "exp", "https://example.com/role"},
		},
		Auth:   &wireAuth{Method: "password", MFA: &mfa, LastAuthAt: &last},
		Cookie: &wireCookie{Name: "sid", Secure: &secure, HTTPOnly: &httpOnly, SameSite: SameSiteLax},
		Policy: &wirePolicy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 43200, ReauthWindowS: 300},
		Action: &wireAction{Name: "change_email", Sensitive: true},
		Key:    &wireKey{KID: "old-key"},
		Attrs:  map[string]string{"plan": "pro", "region": "eu", "a.b": "1", "Z_last": "", "tier-2": "gold"},
	}
}

// emptyEvent returns an event with no field set but every nested struct
// present.
func emptyEvent() *wireEvent {
	return &wireEvent{
		Client: &wireClient{}, Token: &wireToken{}, Auth: &wireAuth{}, Cookie: &wireCookie{},
		Policy: &wirePolicy{}, Action: &wireAction{}, Key: &wireKey{},
	}
}

// leafPaths lists the field index paths of every value of a wireEvent,
// descending into its nested struct pointers.
func leafPaths() [][]int {
	var paths [][]int
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			path := append(append([]int(nil), prefix...), i)
			if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != reflect.TypeOf(wireTime{}) {
				walk(f.Type.Elem(), path)
				continue
			}
			paths = append(paths, path)
		}
	}
	walk(reflect.TypeOf(wireEvent{}), nil)
	return paths
}

func pathName(path []int) string {
	t := reflect.TypeOf(wireEvent{})
	var parts []string
	for _, i := range path {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		f := t.Field(i)
		parts = append(parts, f.Name)
		t = f.Type
	}
	return strings.Join(parts, ".")
}

func TestAppendJSONEveryField(t *testing.T) {
	t.Parallel()
	paths := leafPaths()
	check.True(t, len(paths) > 40, "found %d fields", len(paths))
	// A field added to wireEvent must be set here, so that the comparisons
	// below catch an appendJSON that leaves it out.
	for _, path := range paths {
		check.False(t, reflect.ValueOf(fullEvent()).Elem().FieldByIndex(path).IsZero(), "fullEvent sets %s", pathName(path))
	}
	checkSameJSON(t, fullEvent())
	checkSameJSON(t, emptyEvent())
	checkSameJSON(t, &wireEvent{})
	for _, path := range paths {
		t.Run("unset/"+pathName(path), func(t *testing.T) {
			w := fullEvent()
			f := reflect.ValueOf(w).Elem().FieldByIndex(path)
			f.SetZero()
			checkSameJSON(t, w)
		})
		t.Run("set alone/"+pathName(path), func(t *testing.T) {
			w := emptyEvent()
			reflect.ValueOf(w).Elem().FieldByIndex(path).Set(reflect.ValueOf(fullEvent()).Elem().FieldByIndex(path))
			checkSameJSON(t, w)
		})
		t.Run("set alone, no other nested struct/"+pathName(path), func(t *testing.T) {
			w := &wireEvent{}
			if len(path) > 1 {
				// Make the one nested struct the path goes through.
				v := reflect.ValueOf(w).Elem().Field(path[0])
				v.Set(reflect.New(v.Type().Elem()))
			}
			reflect.ValueOf(w).Elem().FieldByIndex(path).Set(reflect.ValueOf(fullEvent()).Elem().FieldByIndex(path))
			checkSameJSON(t, w)
		})
	}
	for _, name := range []string{"Client", "Token", "Auth", "Cookie", "Policy", "Action", "Key"} {
		t.Run("only empty "+name, func(t *testing.T) {
			w := fullEvent()
			v := reflect.ValueOf(w).Elem().FieldByName(name)
			v.Set(reflect.New(v.Type().Elem()))
			checkSameJSON(t, w)
		})
	}
}

func TestAppendJSONStrings(t *testing.T) {
	t.Parallel()
	var stringPaths [][]int
	for _, path := range leafPaths() {
		if reflect.ValueOf(fullEvent()).Elem().FieldByIndex(path).Kind() == reflect.String {
			stringPaths = append(stringPaths, path)
		}
	}
	check.Equal(t, 24, len(stringPaths), "string fields")
	for _, s := range trickyStrings {
		for _, path := range stringPaths {
			w := fullEvent()
			reflect.ValueOf(w).Elem().FieldByIndex(path).SetString(s)
			checkSameJSON(t, w)
		}
		w := fullEvent()
		w.Token.Claims = []string{s, "sub", s}
		w.Attrs = map[string]string{s: s, "plan": s, s + "~": "x"}
		checkSameJSON(t, w)
	}
	// Every byte on its own, after a multi-byte rune, and at every offset
	// of the eight bytes appendString tests at once.
	for c := range 256 {
		w := fullEvent()
		w.Reason = string([]byte{byte(c)})
		w.Client.UserAgent = "é" + string([]byte{byte(c)}) + "x"
		w.Attrs = map[string]string{string([]byte{byte(c)}): "v"}
		checkSameJSON(t, w)
		for n := range 17 {
			w.Reason = strings.Repeat("a", n) + string([]byte{byte(c)}) + strings.Repeat("~", 16-n)
			checkSameJSON(t, w)
		}
	}
}

func TestSafe8(t *testing.T) {
	t.Parallel()
	want := func(s string) bool {
		for i := range len(s) {
			if s[i] >= utf8.RuneSelf || !jsonSafe[s[i]] {
				return false
			}
		}
		return true
	}
	// Two bytes of every value next to each other at every offset, among
	// fillers next to the bounds the test subtracts.
	for _, filler := range []byte{'a', ' ', '!', '#', '[', ']', '~', 0x7f} {
		for c1 := range 256 {
			for c2 := range 256 {
				for p := range 7 {
					b := bytes.Repeat([]byte{filler}, 8)
					b[p], b[p+1] = byte(c1), byte(c2)
					if s := string(b); safe8(s) != want(s) {
						t.Fatalf("safe8(%q) = %v", s, safe8(s))
					}
				}
			}
		}
	}
}

func TestAppendJSONCollections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		attrs  map[string]string
		claims []string
	}{
		{name: "nil"},
		{name: "empty, not nil", attrs: map[string]string{}, claims: []string{}},
		{name: "one", attrs: map[string]string{"plan": "pro"}, claims: []string{"sub"}},
		{name: "keys in reverse order", attrs: map[string]string{"z": "1", "y": "2", "x": "3", "b": "4", "a": "5", "B": "6", "A": "7", "0": "8", "_": "9", "-": "10", ".": "11"}},
		{name: "prefixes", attrs: map[string]string{"ab": "1", "a": "2", "abc": "3", "a.b": "4", "a-b": "5", "a_b": "6"}},
		{name: "more than MaxAttrs", attrs: func() map[string]string {
			m := map[string]string{}
			for i := range 3 * MaxAttrs {
				m[strings.Repeat("k", i+1)] = strings.Repeat("v", i)
			}
			return m
		}()},
		{name: "claims", claims: []string{"sub", "exp", "iat", "scope", "urn:example:role", "a/b"}},
		{name: "empty claim", claims: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := fullEvent()
			w.Attrs, w.Token.Claims = tt.attrs, tt.claims
			for range 20 { // map order varies from run to run
				checkSameJSON(t, w)
			}
		})
	}
}

func TestAppendJSONNumbers(t *testing.T) {
	t.Parallel()
	floats := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, -0.5, 52.5, 13.404954, -33.8688, 151.2093, 20, 20038, 1e-6, 9.99e-7, 1e-7,
		-1e-7, 1.5e-10, 1e-100, 5e-324, math.SmallestNonzeroFloat64, 1e20, 999999999999999999999, 1e21, -1e21,
		1.7976931348623157e308, 123456789.123456789, 0.000001234, 1 / 3.0, 2.5e-8,
	}
	for _, f := range floats {
		w := fullEvent()
		lat, lon := f, -f
		w.Client.Lat, w.Client.Lon, w.Client.AccuracyKM = &lat, &lon, f
		checkSameJSON(t, w)
	}
	for _, asn := range []uint32{0, 1, 64500, math.MaxUint32} {
		w := fullEvent()
		w.Client.ASN = asn
		checkSameJSON(t, w)
	}
	for _, n := range []int64{0, 1, -1, maxPolicySeconds, math.MaxInt64, math.MinInt64} {
		w := fullEvent()
		w.Policy = &wirePolicy{IdleTimeoutS: n, AbsoluteTimeoutS: -n, ReauthWindowS: n / 2}
		w.SchemaVersion = int(n)
		checkSameJSON(t, w)
	}
	for _, b := range []bool{false, true} {
		w := fullEvent()
		w.Auth.MFA, w.Cookie.Secure, w.Cookie.HTTPOnly, w.Action.Sensitive = &b, &b, &b, b
		checkSameJSON(t, w)
	}
}

func TestAppendJSONTimes(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Now(), // with a monotonic reading
		time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC),
		time.Date(2026, 11, 25, 10, 0, 0, 1, time.UTC),
		time.Date(2026, 11, 25, 10, 0, 0, 1_000, time.UTC),
		time.Date(2026, 11, 25, 10, 0, 0, 999_999_999, time.UTC),
		time.Date(2026, 11, 25, 10, 0, 0, 120_000_000, time.FixedZone("CET", 3600)),
		time.Date(2026, 1, 1, 0, 30, 0, 0, time.FixedZone("X", -(9*3600+30*60))),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC),
		time.Date(-1, 6, 15, 12, 0, 0, 0, time.UTC),
		time.Date(123456, 6, 15, 12, 0, 0, 7_000_000, time.UTC),
		time.Unix(math.MaxInt32, 0),
	}
	for _, at := range times {
		w := fullEvent()
		w.Time = wireTime{at}
		w.Token.IssuedAt, w.Token.ExpiresAt, w.Auth.LastAuthAt = &wireTime{at}, &wireTime{at.Add(time.Millisecond)}, &wireTime{at.Add(time.Microsecond)}
		checkSameJSON(t, w)
	}
}

// The SDK's own events: those of the package tests and examples, through
// Event.wire as Publish converts them.
func TestAppendJSONSDKEvents(t *testing.T) {
	t.Parallel()
	p, err := NewPseudonymizer("k1", []byte("0123456789abcdef0123456789abcdef"))
	check.NoError(t, err)
	at := time.Date(2026, 11, 25, 11, 0, 0, 123_000_000, time.FixedZone("CET", 3600))
	mfa, secure, no := true, true, false
	lat, lon := 48.85, 2.35
	ci := ClientInfo{
		Device: p.Device("d-1"), IPPrefix: netip.MustParsePrefix("203.0.113.7/32"),
		IPHash: p.IPHash(netip.MustParseAddr("203.0.113.7")), ASN: 64500, Country: "FR", City: "Paris",
		Lat: &lat, Lon: &lon, AccuracyKM: 20, UserAgent: "Mozilla/5.0 <&>",
	}
	events := map[string]*Event{
		"example": {ID: "01JDEMO", Type: LoginSucceeded, Time: time.Date(2026, 11, 25, 11, 0, 0, 0, time.FixedZone("CET", 3600)),
			Subject: p.Subject("user-42"), Session: p.Session("8f14e45fceea167a"), Client: &ClientInfo{IPPrefix: netip.MustParsePrefix("203.0.113.7/32")}},
		"login failed":    {Type: LoginFailed, Subject: p.Subject("bob"), Reason: "bad_credentials", Client: &ci},
		"login succeeded": {Type: LoginSucceeded, Subject: p.Subject("u"), Session: p.Session("s"), Client: &ci, Auth: &Auth{Method: "password", MFA: &no}},
		"session started": {Type: SessionStarted, Subject: p.Subject("u"), Session: p.Session("s"), PreviousSession: p.Session("old"), Client: &ci,
			Cookie: &Cookie{Name: "sid", Secure: &secure, HTTPOnly: &secure, SameSite: SameSiteLax}, Policy: &Policy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 12 * 3600}},
		"ipv6 client": {Type: SessionActivity, Subject: p.Subject("u"), Session: p.Session("s"), Client: &ClientInfo{IPPrefix: netip.MustParsePrefix("2001:db8:1:2::7/128"), ASN: 1}},
		"token": {Type: TokenUsed, Subject: p.Subject("u"), Client: &ClientInfo{UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"},
			Token: &Token{ID: p.TokenID("t"), Kind: TokenAccess, KID: "2024-01-rsa", Alg: "RS256"}},
		"all fields": {ID: "ev-1", Type: SessionStarted, Time: at, Subject: p.Subject("user-1"), Session: p.Session("s-new"),
			PreviousSession: p.Session("s-old"), Reason: "login", Client: &ci,
			Token: &Token{ID: p.TokenID("jti-2"), Family: p.TokenID("jti-1"), Parent: p.TokenID("jti-1"), Kind: TokenRefresh,
				IssuedAt: at, ExpiresAt: at.Add(time.Hour + 1), KID: "sig-2026", Alg: "EdDSA", Claims: []string{"sub", "exp"}},
			Auth:   &Auth{Method: "password", MFA: &mfa, LastAuthAt: at.Add(-time.Hour)},
			Cookie: &Cookie{Name: "sid", Secure: &secure, SameSite: SameSiteLax}, Policy: &Policy{IdleTimeoutS: 1800},
			Action: &Action{Name: "change_email", Sensitive: true}, Key: &Key{KID: "old-key"}, Attrs: map[string]string{"plan": "pro"}},
		"action":      {Type: ActionPerformed, Subject: p.Subject("u"), Session: p.Session("s"), Action: &Action{Name: "export"}},
		"key retired": {Type: KeyRetired, Subject: p.Subject("svc"), Key: &Key{KID: "k0"}},
		"session ended": {Type: SessionEnded, Subject: p.Subject("u"), Session: p.Session("s"), Reason: "logout",
			Attrs: map[string]string{"plan": "pro", "app_version": "1.2.3", "region": "eu-west-1"}},
	}
	for name, ev := range events {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := ev.wire("shop")
			checkSameJSON(t, w)
			data, err := w.encode(time.Now())
			check.NoError(t, err)
			want, err := stdlibJSON(w)
			check.NoError(t, err)
			check.Equal(t, string(want), string(data))
		})
	}
}

// encode allocates once: the size estimate holds the whole event.
func TestEncodeAllocatesOnce(t *testing.T) {
	w := fullEvent()
	now := w.Time.Add(time.Hour)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := w.encode(now); err != nil {
			t.Fatal(err)
		}
	})
	check.Equal(t, 1.0, allocs)
	longest := fullEvent()
	longest.Time = wireTime{time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)}
	longest.Token.IssuedAt, longest.Token.ExpiresAt, longest.Auth.LastAuthAt = &longest.Time, &longest.Time, &longest.Time
	lat := -0.00000123456789012345
	longest.Client.Lat, longest.Client.Lon, longest.Client.AccuracyKM, longest.Client.ASN = &lat, &lat, -1.7976931348623157e308, math.MaxUint32
	longest.Policy = &wirePolicy{IdleTimeoutS: math.MinInt64, AbsoluteTimeoutS: math.MinInt64, ReauthWindowS: math.MinInt64}
	mfa := false
	longest.Auth.MFA, longest.Cookie.Secure, longest.Cookie.HTTPOnly = &mfa, &mfa, &mfa
	for _, w := range []*wireEvent{fullEvent(), emptyEvent(), {}, longest} {
		check.True(t, len(w.appendJSON(nil)) <= w.sizeHint(), "size hint %d for %s", w.sizeHint(), w.appendJSON(nil))
	}
}

// encode still refuses what validate refuses and events too large to send.
func TestEncodeChecks(t *testing.T) {
	t.Parallel()
	w := fullEvent()
	w.Type = "login"
	_, err := w.encode(w.Time.Time)
	check.ErrorIs(t, err, ErrInvalidEvent)

	w = fullEvent()
	w.Attrs = map[string]string{}
	for i := range MaxAttrs {
		w.Attrs[string(rune('a'+i))] = strings.Repeat("\x01", MaxAttrValueBytes) // six bytes each in JSON
	}
	_, err = w.encode(w.Time.Time)
	var ve *ValidationError
	check.ErrorAs(t, err, &ve)
	check.Equal(t, []string{"(event)"}, ve.Fields())
}

// oldMatches is matches as it was, with the extra bytes in a string.
func oldMatches(s string, min, max int, extra string) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte(extra, b) >= 0) {
			return false
		}
	}
	return true
}

func TestMatchesSets(t *testing.T) {
	t.Parallel()
	sets := []struct {
		name  string
		set   *byteSet
		extra string
	}{
		{name: "id", set: idBytes, extra: "_:.~-"},
		{name: "pseudonym", set: pseudonymBytes, extra: "_:~-"},
		{name: "claim", set: claimBytes, extra: "_:./-"},
		{name: "attr key", set: attrKeyBytes, extra: "_.-"},
	}
	for _, s := range sets {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			for c := range 256 {
				for _, in := range []string{string([]byte{byte(c)}), "ab" + string([]byte{byte(c)}) + "cd"} {
					check.Equal(t, oldMatches(in, 1, 64, s.extra), matches(in, 1, 64, s.set), "byte %#x in %q", c, in)
				}
			}
			for _, in := range []string{"", "a", "abcdefgh", strings.Repeat("a", 64), strings.Repeat("a", 65), "k1:AbC_-~.x/z", "é"} {
				for _, lim := range [][2]int{{1, 64}, {8, 128}, {0, 0}} {
					check.Equal(t, oldMatches(in, lim[0], lim[1], s.extra), matches(in, lim[0], lim[1], s.set), "%q in %v", in, lim)
				}
			}
		})
	}
}

func FuzzAppendJSON(f *testing.F) {
	for i, s := range trickyStrings {
		f.Add(s, trickyStrings[(i+1)%len(trickyStrings)], "plan", "k1:x", 52.5, uint32(i), int64(1764064800+i), int64(i*1_000_001))
	}
	f.Add("", "", "", "", 1e-7, uint32(math.MaxUint32), int64(-62135596800), int64(0))
	f.Add("a", "b", "c", "d", 1e21, uint32(0), int64(253402300799), int64(999_999_999))
	f.Fuzz(func(t *testing.T, a, b, c, d string, f float64, asn uint32, sec, nsec int64) {
		w := fullEvent()
		w.ID, w.Subject, w.Reason, w.Type = a, b, c, Type(d)
		w.Time = wireTime{time.Unix(sec, nsec)}
		w.Client.City, w.Client.UserAgent, w.Client.ASN = d, a+c, asn
		w.Client.Lat, w.Client.AccuracyKM = &f, math.Abs(f)
		w.Token.KID, w.Token.Claims = c, []string{a, b, d}
		w.Auth.Method, w.Cookie.Name, w.Action.Name, w.Key.KID = b, c, d, a
		w.Attrs = map[string]string{a: b, c: d, "plan": a}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// encoding/json refuses them; validate keeps them out.
			_, err := stdlibJSON(w)
			check.True(t, err != nil, "encoding/json refuses %v", f)
			check.ErrorIs(t, w.validate(w.Time.Time), ErrInvalidEvent)
			return
		}
		checkSameJSON(t, w)
	})
}

// BenchmarkEncode compares encoding/json, as encode used it, with
// appendJSON on a typical login event, and times the whole of encode
// (validate, then appendJSON).
func BenchmarkEncode(b *testing.B) {
	p, err := NewPseudonymizer("k1", []byte("0123456789abcdef0123456789abcdef"))
	check.NoError(b, err)
	lat, lon := 52.5, 13.404954
	mfa := true
	w := (&Event{
		Type: LoginSucceeded, Time: time.Date(2026, 11, 25, 11, 0, 0, 123_000_000, time.UTC),
		Subject: p.Subject("user-1"), Session: p.Session("s-1"), Reason: "password",
		Client: &ClientInfo{
			Device: p.Device("d"), IPPrefix: netip.MustParsePrefix("203.0.113.0/24"),
			IPHash: p.IPHash(netip.MustParseAddr("203.0.113.7")), ASN: 64500, Country: "DE", City: "Berlin",
			Lat: &lat, Lon: &lon, AccuracyKM: 20,
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		},
		Auth:  &Auth{Method: "password", MFA: &mfa},
		Attrs: map[string]string{"plan": "pro", "region": "eu"},
	}).wire("shop")
	now := w.Time.Add(time.Minute)
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := stdlibJSON(w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = w.appendJSON(make([]byte, 0, w.sizeHint()))
		}
	})
	b.Run("validate", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if err := w.validate(now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := w.encode(now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMatches compares the byte tables with the search of the extra
// bytes matches did before, on a pseudonym.
func BenchmarkMatches(b *testing.B) {
	s := "k1:TC0MKYu4yNSSboC78x8g7A"
	b.Run("index_byte", func(b *testing.B) {
		for range b.N {
			if !oldMatches(s, 8, 128, "_:~-") {
				b.Fatal("no match")
			}
		}
	})
	b.Run("table", func(b *testing.B) {
		for range b.N {
			if !matches(s, 8, 128, pseudonymBytes) {
				b.Fatal("no match")
			}
		}
	})
}
