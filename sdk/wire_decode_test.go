package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

// decodeWireJSON is decodeWire as it was, with encoding/json. decodeWire
// must give the same event for every input this accepts (whose member
// names have the exact case) and refuse every input this refuses.
func decodeWireJSON(data []byte) (*wireEvent, error) {
	if len(data) > MaxEventBytes {
		return nil, &ValidationError{Errors: []*FieldError{{
			Field: "(event)",
			Rule:  fmt.Sprintf("must be at most %d bytes (got %d)", MaxEventBytes, len(data)),
		}}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	w := new(wireEvent)
	if err := dec.Decode(w); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			return nil, &ValidationError{Errors: []*FieldError{{Field: truncateID(strings.TrimSuffix(name, `"`)), Rule: "is not a field of schema v1"}}}
		}
		return nil, &ValidationError{Errors: []*FieldError{{Field: "(event)", Rule: "must be one JSON object of schema v1: " + err.Error()}}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Errors: []*FieldError{{Field: "(event)", Rule: "must be one JSON object, without trailing data"}}}
	}
	return w, nil
}

// memberNames are the names of the members of a wireEvent and of its
// nested objects.
var memberNames = func() []string {
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			names = append(names, strings.Split(f.Tag.Get("json"), ",")[0])
			if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != reflect.TypeOf(wireTime{}) {
				walk(f.Type.Elem())
			}
		}
	}
	walk(reflect.TypeOf(wireEvent{}))
	return names
}()

// foldsToMember reports whether name is a member name in another case,
// which encoding/json accepts and decodeWire does not.
func foldsToMember(name string) bool {
	for _, m := range memberNames {
		if name != m && strings.EqualFold(name, m) {
			return true
		}
	}
	return false
}

// checkDecodeSame decodes data with both decoders and checks they agree.
// It returns whether they accepted it.
func checkDecodeSame(t testing.TB, data []byte) bool {
	t.Helper()
	want, wantErr := decodeWireJSON(data)
	got, err := decodeWire(data)
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 {
			t.Fatalf("decodeWire(%q): error %v is not one field error", data, err)
		}
		fe := ve.Errors[0]
		if fe.Field == "(event)" {
			if !strings.HasPrefix(fe.Rule, "must be one JSON object") && !strings.HasPrefix(fe.Rule, "must be at most") {
				t.Fatalf("decodeWire(%q): rule %q", data, fe.Rule)
			}
		} else if fe.Rule != "is not a field of schema v1" {
			t.Fatalf("decodeWire(%q): field %q rule %q", data, fe.Field, fe.Rule)
		}
		if wantErr == nil {
			// The only inputs decodeWire refuses beyond encoding/json: a
			// member name in another case, and null for the whole event.
			if fe.Rule == "is not a field of schema v1" && foldsToMember(fe.Field) {
				return false
			}
			if string(bytes.TrimSpace(data)) == "null" {
				return false
			}
			t.Fatalf("decodeWire(%q) refuses what encoding/json accepts: %v", data, err)
		}
		return false
	}
	if wantErr != nil {
		t.Fatalf("decodeWire(%q) accepts what encoding/json refuses (%v): %+v", data, wantErr, got)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("decodeWire(%q) differs:\nwant: %s\n got: %s", data, dump(want), dump(got))
	}
	return true
}

func dump(w *wireEvent) string {
	b, _ := json.Marshal(w)
	return fmt.Sprintf("%s %#v", b, *w)
}

// decodeTestEvents returns the events of the encoder tests.
func decodeTestEvents(t testing.TB) []*wireEvent {
	events := []*wireEvent{fullEvent(), emptyEvent(), {}}
	for _, path := range leafPaths() {
		w := fullEvent()
		reflect.ValueOf(w).Elem().FieldByIndex(path).SetZero()
		events = append(events, w)
		w = emptyEvent()
		reflect.ValueOf(w).Elem().FieldByIndex(path).Set(reflect.ValueOf(fullEvent()).Elem().FieldByIndex(path))
		events = append(events, w)
	}
	for _, s := range trickyStrings {
		for _, path := range leafPaths() {
			if f := reflect.ValueOf(fullEvent()).Elem().FieldByIndex(path); f.Kind() == reflect.String {
				w := fullEvent()
				reflect.ValueOf(w).Elem().FieldByIndex(path).SetString(s)
				events = append(events, w)
			}
		}
		w := fullEvent()
		w.Token.Claims = []string{s, "sub", s}
		w.Attrs = map[string]string{s: s, "plan": s, s + "~": "x"}
		events = append(events, w)
	}
	for c := range 256 {
		w := fullEvent()
		w.Reason = string([]byte{byte(c)})
		w.Client.UserAgent = "é" + string([]byte{byte(c)}) + "x"
		w.Attrs = map[string]string{string([]byte{byte(c)}): "v"}
		events = append(events, w)
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -0.5, 13.404954, 1e-7, 5e-324, 1e21, 1.7976931348623157e308, 1 / 3.0} {
		w := fullEvent()
		lat, lon := f, -f
		w.Client.Lat, w.Client.Lon, w.Client.AccuracyKM = &lat, &lon, f
		events = append(events, w)
	}
	for _, n := range []int64{0, 1, -1, maxPolicySeconds, math.MaxInt64, math.MinInt64} {
		w := fullEvent()
		w.Policy = &wirePolicy{IdleTimeoutS: n, AbsoluteTimeoutS: -n, ReauthWindowS: n / 2}
		w.SchemaVersion = int(n)
		w.Client.ASN = uint32(n)
		events = append(events, w)
	}
	for _, at := range []time.Time{{}, time.Unix(0, 0), time.Now(), time.Date(2026, 11, 25, 10, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(-1, 6, 15, 12, 0, 0, 0, time.UTC)} {
		w := fullEvent()
		w.Time = wireTime{at}
		w.Token.IssuedAt, w.Auth.LastAuthAt = &wireTime{at}, &wireTime{at.Add(time.Microsecond)}
		events = append(events, w)
	}
	p, err := NewPseudonymizer("k1", []byte("0123456789abcdef0123456789abcdef"))
	check.NoError(t, err)
	events = append(events, benchWire(p))
	for _, ev := range []*Event{
		{Type: LoginFailed, Subject: p.Subject("bob"), Reason: "bad_credentials", Client: &ClientInfo{IPPrefix: netip.MustParsePrefix("2001:db8::1/128"), ASN: 1}},
		{Type: TokenUsed, Subject: p.Subject("u"), Token: &Token{ID: p.TokenID("t"), Kind: TokenAccess, KID: "2024-01-rsa", Alg: "RS256", Claims: []string{}}},
		{Type: SessionEnded, Subject: p.Subject("u"), Session: p.Session("s"), Reason: "logout", Attrs: map[string]string{}},
	} {
		events = append(events, ev.wire("shop"))
	}
	return events
}

func benchWire(p *Pseudonymizer) *wireEvent {
	lat, lon := 52.5, 13.404954
	mfa := true
	return (&Event{
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
}

func TestDecodeWireEvents(t *testing.T) {
	t.Parallel()
	accepted := 0
	for _, w := range decodeTestEvents(t) {
		data := w.appendJSON(nil)
		if checkDecodeSame(t, data) {
			accepted++
		}
		// The same with whitespace around.
		checkDecodeSame(t, append(append([]byte(" \n\t"), data...), "\r\n "...))
	}
	check.True(t, accepted > 700, "accepted %d events", accepted)
}

// decodeEdgeCases are inputs either decoder may refuse; the first is a
// valid event.
var decodeEdgeCases = []string{
	`{"id":"a","schema_version":1,"type":"login.succeeded","time":"2026-11-25T10:00:00.123Z","app":"shop","subject":"k1:x"}`,
	"", " ", "null", " null ", "true", "1", `"x"`, "[]", "{}", " {} ", "{}\n", "{} {}", "{}x", "{}}", "{},", "{}\x00", "\ufeff{}",
	`{`, `{"`, `{"id"`, `{"id":`, `{"id":"`, `{"id":"a"`, `{"id":"a",}`, `{,}`, `{"id" "a"}`, `{"id":"a" "app":"b"}`, `{'id':'a'}`, `{id:"a"}`,
	// escapes and unicode
	`{"id":"a\"b\\c\/d\b\f\n\r\te"}`, `{"id":"\u0041\u00e9\u20ac\uFFFD\u0000"}`, `{"id":"\ud83d\ude00"}`, `{"id":"\ud83d"}`, `{"id":"\ude00"}`,
	`{"id":"\ud83dx"}`, `{"id":"\ud83d\u0041"}`, `{"id":"\ud83d\ud83d\ude00"}`, `{"id":"\ude00\ud83d"}`, `{"id":"\u12"}`, `{"id":"\u12G4"}`,
	`{"id":"\x"}`, `{"id":"\'"}`, `{"id":"\`, `{"id":"\u`, "{\"id\":\"a\x01\"}", "{\"id\":\"a\nb\"}", "{\"id\":\"\x7f\"}",
	"{\"id\":\"bad \xff byte\"}", "{\"id\":\"cut \xe2\x80\"}", "{\"id\":\"\xed\xa0\x80\"}", "{\"id\":\"\xc0\xaf\"}", "{\"id\":\"\xef\xbf\xbd\"}",
	"{\"attrs\":{\"\xff\":\"\xfe\"}}", `{"\u0069d":"a"}`, `{"i\u0064":"a","id":"b"}`, "{\"id\xff\":\"a\"}", `{"attrs":{"\ud800":"x","\ud800\udc00":"y"}}`,
	// null members and duplicates
	`{"id":null,"type":null,"time":null}`, `{"time":null}`, `{"client":null}`, `{"client":{},"client":null}`, `{"client":null,"client":{"asn":1}}`,
	`{"client":{"asn":1},"client":{"city":"x"}}`, `{"client":{"lat":null,"lon":1,"asn":null,"accuracy_km":null}}`, `{"client":{"lat":1},"client":{"lat":null}}`,
	`{"token":{"issued_at":null,"expires_at":"2026-11-25T10:00:00Z"}}`, `{"token":{"claims":null}}`, `{"token":{"claims":[]}}`, `{"token":{"claims":[null]}}`,
	`{"token":{"claims":["a","b","c"]},"token":{"claims":["x"]},"token":{"claims":[null,null,null]}}`, `{"token":{"claims":["a",1]}}`,
	`{"token":{"claims":"a"}}`, `{"token":{"claims":[["a"]]}}`, `{"auth":{"mfa":null,"last_auth_at":null}}`, `{"auth":{"mfa":true},"auth":{"mfa":false}}`,
	`{"cookie":{"secure":null,"http_only":true}}`, `{"action":{"sensitive":null}}`, `{"action":{"sensitive":"true"}}`, `{"action":{"sensitive":1}}`,
	`{"attrs":null}`, `{"attrs":{}}`, `{"attrs":{"a":null}}`, `{"attrs":{"a":"1"},"attrs":{"b":"2"}}`, `{"attrs":{"a":"1","a":"2"}}`, `{"attrs":{"a":1}}`,
	`{"attrs":{"a":{}}}`, `{"attrs":[]}`, `{"attrs":"x"}`, `{"id":"a","id":"b"}`, `{"id":"a","id":null}`, `{"schema_version":1,"schema_version":null}`,
	`{"client":{},"token":{},"auth":{},"cookie":{},"policy":{},"action":{},"key":{}}`, `{"key":{"kid":null}}`, `{"key":[]}`, `{"key":"x"}`,
	// numbers
	`{"schema_version":1e2}`, `{"schema_version":-0}`, `{"schema_version":1.5}`, `{"schema_version":1.0}`, `{"schema_version":01}`, `{"schema_version":-}`,
	`{"schema_version":+1}`, `{"schema_version":1.}`, `{"schema_version":.5}`, `{"schema_version":1e}`, `{"schema_version":"1"}`, `{"schema_version":true}`,
	`{"schema_version":9223372036854775807}`, `{"schema_version":9223372036854775808}`, `{"schema_version":-9223372036854775808}`, `{"schema_version":-9223372036854775809}`,
	`{"client":{"asn":4294967295}}`, `{"client":{"asn":4294967296}}`, `{"client":{"asn":-1}}`, `{"client":{"asn":-0}}`, `{"client":{"asn":1e0}}`,
	`{"client":{"lat":1e2,"lon":-0,"accuracy_km":1E+2}}`, `{"client":{"lat":1e400}}`, `{"client":{"lat":-1e400}}`, `{"client":{"lat":1e-400}}`, `{"client":{"lat":"1"}}`,
	`{"client":{"accuracy_km":1.7976931348623157e308}}`, `{"client":{"accuracy_km":1.7976931348623159e308}}`, `{"client":{"lat":0.1e-5,"lon":123456789012345678901234567890}}`,
	`{"policy":{"idle_timeout_s":1.5}}`, `{"policy":{"idle_timeout_s":1e3}}`, `{"policy":{"idle_timeout_s":-5,"absolute_timeout_s":null,"reauth_window_s":0}}`,
	// times
	`{"time":"2026-11-25T10:00:00Z"}`, `{"time":"2026-11-25T10:00:00.123456789+01:00"}`, `{"time":"2026-11-25T10:00:00"}`, `{"time":"2026-11-25"}`,
	`{"time":""}`, `{"time":1}`, `{"time":{}}`, `{"time":[]}`, `{"time":true}`, `{"time":"2026-11-25T10:00:00\u005a"}`, `{"time":"2026-11-25t10:00:00z"}`,
	`{"time":"2026-13-25T10:00:00Z"}`, `{"time":"2026-11-25T24:00:00Z"}`, `{"time":"2026-11-25T10:00:00.Z"}`, `{"time":"2026-11-25T10:00:00,5Z"}`,
	`{"token":{"issued_at":5}}`, `{"auth":{"last_auth_at":"x"}}`, `{"time":{"a":[1,2,{"b":null}]}}`,
	// types and unknown members
	`{"id":1}`, `{"id":true}`, `{"id":{}}`, `{"id":[]}`, `{"id":["a"]}`, `{"client":"x"}`, `{"client":[]}`, `{"client":1}`, `{"client":true}`,
	`{"extra":1}`, `{"extra":{"deep":[1,2,3]}}`, `{"ID":"a"}`, `{"Id":"a","id":"b"}`, `{"client":{"ASN":1}}`, `{"client":{"extra":1}}`,
	`{"ſchema_version":1}`, `{"K":1}`, `{"` + strings.Repeat("x", 40) + `":1}`, `{"extra":1,"id":2}`, `{"id":2,"extra":1}`, `{"extra":1,"id":"a"`,
	`{"extra":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, `{"extra":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`,
	// whitespace everywhere
	" \t\r\n{ \t\r\n\"id\" \t\r\n: \t\r\n\"a\" \t\r\n, \"client\" : { \"asn\" : 1 , \"lat\" : 2 } , \"token\" : { \"claims\" : [ \"a\" , null ] } , \"attrs\" : { } } \t\r\n",
	"{\"id\"\v:\"a\"}", "{\"id\":\"a\"}\f", "{\"id\":\"a\"}\u00a0",
	// literals
	`{"action":{"sensitive":tru}}`, `{"action":{"sensitive":truex}}`, `{"id":nul}`, `{"id":nulll}`, `{"id":NULL}`, `{"auth":{"mfa":false}}`,
	strings.Repeat(" ", MaxEventBytes-1) + "{}", strings.Repeat(" ", MaxEventBytes) + "{}",
}

func TestDecodeWireEdgeCases(t *testing.T) {
	t.Parallel()
	accepted := 0
	for _, in := range decodeEdgeCases {
		if checkDecodeSame(t, []byte(in)) {
			accepted++
		}
	}
	check.True(t, checkDecodeSame(t, []byte(decodeEdgeCases[0])), "the first edge case is a valid event")
	check.True(t, accepted > 60, "accepted %d edge cases", accepted)
	// Truncated at every byte: both refuse.
	for _, w := range []*wireEvent{fullEvent(), emptyEvent()} {
		w.Reason = "a\"b\\c\u2028é\xff"
		data := w.appendJSON(nil)
		for n := range len(data) {
			check.False(t, checkDecodeSame(t, data[:n]), "truncated at %d accepted", n)
		}
	}
}

func TestDecodeWireErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, field, rule string
	}{
		{in: `{"id":"a","extra":1}`, field: "extra", rule: "is not a field of schema v1"},
		{in: `{"client":{"asn":1,"Extra":{}}}`, field: "Extra", rule: "is not a field of schema v1"},
		{in: `{"id":"a","ID":"b"}`, field: "ID", rule: "is not a field of schema v1"},
		{in: `{"` + strings.Repeat("x", 40) + `":1}`, field: strings.Repeat("x", 32) + "...", rule: "is not a field of schema v1"},
		{in: `{"extra":1,"id":"a"`, field: "(event)", rule: "must be one JSON object of schema v1: unexpected end of JSON input"},
		{in: `{"id":"a"}x`, field: "(event)", rule: "must be one JSON object, without trailing data"},
		{in: `{"id":"a"} {}`, field: "(event)", rule: "must be one JSON object, without trailing data"},
		{in: `{"id":1}`, field: "(event)", rule: "must be one JSON object of schema v1: id must be a string"},
		{in: `{"policy":{"idle_timeout_s":1.5}}`, field: "(event)", rule: "must be one JSON object of schema v1: policy.idle_timeout_s must be an integer in range"},
		{in: `{"time":"yesterday"}`, field: "(event)", rule: "must be one JSON object of schema v1: time must be an RFC 3339 time"},
		{in: `{"id":"a",}`, field: "(event)", rule: "must be one JSON object of schema v1: invalid JSON at byte 10"},
		{in: `null`, field: "(event)", rule: "must be one JSON object of schema v1: the event must be an object"},
		{in: ``, field: "(event)", rule: "must be one JSON object of schema v1: unexpected end of JSON input"},
		{in: strings.Repeat(" ", MaxEventBytes+1), field: "(event)", rule: fmt.Sprintf("must be at most %d bytes (got %d)", MaxEventBytes, MaxEventBytes+1)},
	}
	for _, tt := range tests {
		_, err := decodeWire([]byte(tt.in))
		var ve *ValidationError
		check.ErrorAs(t, err, &ve)
		check.ErrorIs(t, err, ErrInvalidEvent)
		check.Equal(t, 1, len(ve.Errors), "%q", tt.in)
		check.Equal(t, tt.field, ve.Errors[0].Field, "%q", tt.in)
		check.Equal(t, tt.rule, ve.Errors[0].Rule, "%q", tt.in)
	}
}

// decodeWire allocates its event and parts at once, the input as one
// string and the attrs map.
func TestDecodeWireAllocs(t *testing.T) {
	p, err := NewPseudonymizer("k1", []byte("0123456789abcdef0123456789abcdef"))
	check.NoError(t, err)
	data := benchWire(p).appendJSON(nil)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := decodeWire(data); err != nil {
			t.Fatal(err)
		}
	})
	check.True(t, allocs <= 4, "%v allocations", allocs)
}

func FuzzDecodeWire(f *testing.F) {
	for _, w := range decodeTestEvents(f)[:60] {
		f.Add(w.appendJSON(nil))
	}
	for _, in := range decodeEdgeCases {
		if len(in) < 1000 {
			f.Add([]byte(in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeSame(t, data)
	})
}

// BenchmarkDecodeWire compares encoding/json, as decodeWire used it, with
// decodeWire on a typical login event.
func BenchmarkDecodeWire(b *testing.B) {
	p, err := NewPseudonymizer("k1", []byte("0123456789abcdef0123456789abcdef"))
	check.NoError(b, err)
	data := benchWire(p).appendJSON(nil)
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for range b.N {
			if _, err := decodeWireJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeWire", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for range b.N {
			if _, err := decodeWire(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
