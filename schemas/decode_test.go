package schemas_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestDecodeSizeLimit(t *testing.T) {
	t.Parallel()
	event := readFixture(t, "valid", "login_succeeded.json")
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{name: "exactly MaxEventBytes", size: schemas.MaxEventBytes},
		{name: "one byte over", size: schemas.MaxEventBytes + 1, wantErr: true},
		{name: "far over", size: 1 << 20, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := padTo(t, event, tt.size)
			_, err := schemas.Decode(data, testNow)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			requireRejects(t, err, "(event)", "must be at most 16384 bytes")
		})
	}
}

func TestDecodeTrailingData(t *testing.T) {
	t.Parallel()
	event := bytes.TrimSpace(readFixture(t, "valid", "session_ended.json"))
	tests := []struct {
		name    string
		suffix  string
		wantErr bool
	}{
		{name: "none", suffix: ""},
		{name: "JSON whitespace", suffix: " \t\r\n"},
		{name: "second object", suffix: `{"id":"x"}`, wantErr: true},
		{name: "second object after a newline", suffix: "\n{}", wantErr: true},
		{name: "garbage", suffix: "x", wantErr: true},
		{name: "closing bracket", suffix: "]", wantErr: true},
		{name: "comma", suffix: ",", wantErr: true},
		{name: "no-break space is not JSON whitespace", suffix: "\u00a0", wantErr: true},
		{name: "NUL byte", suffix: "\x00", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := append(bytes.Clone(event), tt.suffix...)
			_, err := schemas.Decode(data, testNow)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			requireRejects(t, err, "(event)", "exactly one JSON object")
			require.Error(t, schemaValidate(t, data), "the JSON Schema side rejects it too")
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		data  string
		field string
		rule  string
	}{
		{name: "empty", data: "", field: "(event)", rule: "must be a JSON object"},
		{name: "whitespace", data: " \n", field: "(event)", rule: "must be a JSON object"},
		{name: "null", data: "null", field: "(event)", rule: "must be a JSON object"},
		{name: "number", data: "42", field: "(event)", rule: "must be a JSON object"},
		{name: "byte order mark", data: "\ufeff{}", field: "(event)", rule: "must be a JSON object"},
		{name: "single quotes", data: `{'id':'x'}`, field: "(event)", rule: "syntax error at byte"},
		{name: "deep nesting", data: `{"attrs":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}", field: "attrs", rule: "must be an object of strings"},
		{name: "deep nesting unclosed", data: `{"attrs":` + strings.Repeat("[", 16000), field: "(event)", rule: "must be a JSON object"},
		{name: "nested unknown field in a token", data: `{"token":{"id":"jti_0b14d501a594442a","scope":"admin"}}`, field: "token.scope", rule: "not a field"},
		{name: "case-folded name", data: `{"ſubject":"sub_9f86d081884c7d65"}`, field: "ſubject", rule: "not a field"},
		{name: "escaped name is the same name", data: `{"\u0069d":"a","id":"b"}`, field: "id", rule: "duplicate member name"},
		{name: "null time", data: `{"time":null}`, field: "time", rule: "must not be null"},
		{name: "null token time", data: `{"token":{"issued_at":null}}`, field: "token.issued_at", rule: "must not be null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := schemas.Decode([]byte(tt.data), testNow)
			require.Nil(t, e)
			requireRejects(t, err, tt.field, tt.rule)
		})
	}
}

// TestValidateListsEveryBrokenRule checks that Validate reports all
// problems at once, in field order, not only the first.
func TestValidateListsEveryBrokenRule(t *testing.T) {
	t.Parallel()
	lat := 100.0
	e := &schemas.Event{
		ID:            "evt 1",
		SchemaVersion: 2,
		Type:          schemas.TokenUsed,
		Time:          schemas.At(testNow.Add(48 * time.Hour)),
		App:           "shop",
		Subject:       "alice@example.com",
		Client:        &schemas.Client{IPPrefix: "203.0.113.7/32", Lat: &lat},
		Token:         &schemas.Token{Kind: "jwt"},
		Attrs:         map[string]string{"ok": "v", "bad key": "v"},
	}
	err := e.Validate(testNow)
	var ve *schemas.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, []string{
		"id", "schema_version", "time", "subject",
		"client.ip_prefix", "client.lon", "client.lat",
		"token.id", "token.kind", "attrs.bad key",
	}, ve.Fields())
	for _, fe := range ve.Errors {
		require.NotEmpty(t, fe.Rule, fe.Field)
	}
}

func TestValidateTimeRange(t *testing.T) {
	t.Parallel()
	base := func() *schemas.Event {
		e, err := schemas.Decode(readFixture(t, "valid", "token_issued.json"), testNow)
		require.NoError(t, err)
		return e
	}
	tests := []struct {
		name  string
		set   func(*schemas.Event)
		field string
	}{
		{name: "time within a day of the clock", set: func(e *schemas.Event) { e.Time = schemas.At(testNow.Add(schemas.MaxFutureSkew)) }},
		{name: "time just past the skew", set: func(e *schemas.Event) { e.Time = schemas.At(testNow.Add(schemas.MaxFutureSkew + time.Nanosecond)) }, field: "time"},
		{name: "zero time", set: func(e *schemas.Event) { e.Time = schemas.Time{} }, field: "time"},
		{name: "time before year 0", set: func(e *schemas.Event) { e.Time = schemas.At(time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC)) }, field: "time"},
		{name: "expiry in year 10000", set: func(e *schemas.Event) {
			e.Token.ExpiresAt = &schemas.Time{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
		}, field: "token.expires_at"},
		{name: "expiry far ahead but writable", set: func(e *schemas.Event) {
			e.Token.ExpiresAt = &schemas.Time{Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := base()
			tt.set(e)
			err := e.Validate(testNow)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var ve *schemas.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, []string{tt.field}, ve.Fields())
		})
	}
}

// TestEncodeDecodeRoundTrip checks that Encode writes what Decode reads
// back as the same event, for the event with every field set and for
// every other valid fixture.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	t.Run("everything", func(t *testing.T) {
		t.Parallel()
		e, err := schemas.Decode(readFixture(t, "valid", "everything.json"), testNow)
		require.NoError(t, err)
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		back, err := schemas.Decode(b, testNow)
		require.NoError(t, err)
		require.Equal(t, e, back)
		again, err := schemas.Encode(back)
		require.NoError(t, err)
		require.Equal(t, string(b), string(again), "Encode is deterministic")
		require.NoError(t, schemaValidate(t, b), "Encode writes what the JSON Schema accepts")
	})
	for _, fx := range readFixtures(t, "valid") {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			e, err := schemas.Decode(fx.data, testNow)
			require.NoError(t, err)
			b, err := schemas.Encode(e)
			require.NoError(t, err)
			back, err := schemas.Decode(b, testNow)
			require.NoError(t, err)
			require.Equal(t, canonical(e), canonical(back))
			require.NoError(t, schemaValidate(t, b))
		})
	}
}

// TestEncodeBuiltEvent encodes an event built in Go, as the SDK does.
func TestEncodeBuiltEvent(t *testing.T) {
	t.Parallel()
	mfa := true
	lat, lon := 52.52, 13.405
	e := &schemas.Event{
		ID:            "01JDX5Q8ZK3V7Y2M4N6P8R0T1W",
		SchemaVersion: schemas.SchemaVersion,
		Type:          schemas.LoginSucceeded,
		Time:          schemas.At(time.Date(2026, 11, 25, 11, 0, 0, 123_456_789, time.FixedZone("", 3600))),
		App:           "shop",
		Subject:       "sub_9f86d081884c7d65",
		Client:        &schemas.Client{IPPrefix: "203.0.113.0/24", Lat: &lat, Lon: &lon, UserAgent: "a <b> & c"},
		Auth:          &schemas.Auth{Method: "password", MFA: &mfa},
	}
	require.NoError(t, e.Validate(testNow))
	b, err := schemas.Encode(e)
	require.NoError(t, err)
	require.Contains(t, string(b), `"time":"2026-11-25T10:00:00.123456789Z"`)
	require.Contains(t, string(b), `"user_agent":"a <b> & c"`, "no HTML escaping")
	require.NotContains(t, string(b), `"session"`, "empty optional fields are left out")
	back, err := schemas.Decode(b, testNow)
	require.NoError(t, err)
	require.Equal(t, canonical(e), canonical(back))
}

// TestEncodeStaysWithinLimit checks that a valid event full of characters
// JSON writers like to escape still encodes within MaxEventBytes.
func TestEncodeStaysWithinLimit(t *testing.T) {
	t.Parallel()
	e, err := schemas.Decode(readFixture(t, "valid", "action_performed.json"), testNow)
	require.NoError(t, err)
	e.Attrs = map[string]string{}
	for i := range schemas.MaxAttrs {
		e.Attrs[strings.Repeat("k", 63)+string(rune('a'+i))] = strings.Repeat("<&>", schemas.MaxAttrValueBytes/3)
	}
	b, err := schemas.Encode(e)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), schemas.MaxEventBytes)
	_, err = schemas.Decode(b, testNow)
	require.NoError(t, err)
}

// TestDecodeConcurrent decodes the fixtures from several goroutines at
// once (run with -race) and expects the same verdicts as one at a time.
func TestDecodeConcurrent(t *testing.T) {
	t.Parallel()
	fixtures := append(readFixtures(t, "valid"), readFixtures(t, "invalid")...)
	want := make([]string, len(fixtures))
	for i, fx := range fixtures {
		if _, err := schemas.Decode(fx.data, testNow); err != nil {
			want[i] = err.Error()
		}
	}
	const workers = 8
	got := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			got[w] = make([]string, len(fixtures))
			for i, fx := range fixtures {
				if _, err := schemas.Decode(fx.data, testNow); err != nil {
					got[w][i] = err.Error()
				}
			}
		})
	}
	wg.Wait()
	for w := range workers {
		require.Equal(t, want, got[w], "worker %d", w)
	}
}
