package schemas_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestTimeMarshalJSON(t *testing.T) {
	t.Parallel()
	plus2 := time.FixedZone("", 2*3600)
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{name: "milliseconds", in: time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC), want: `"2026-11-25T10:00:00.123Z"`},
		{name: "whole seconds get three digits", in: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), want: `"2026-11-25T10:00:00.000Z"`},
		{name: "microseconds get nine digits", in: time.Date(2026, 11, 25, 10, 0, 0, 123_456_000, time.UTC), want: `"2026-11-25T10:00:00.123456000Z"`},
		{name: "nanoseconds", in: time.Date(2026, 11, 25, 10, 0, 0, 123_456_789, time.UTC), want: `"2026-11-25T10:00:00.123456789Z"`},
		{name: "one nanosecond", in: time.Date(2026, 11, 25, 10, 0, 0, 1, time.UTC), want: `"2026-11-25T10:00:00.000000001Z"`},
		{name: "offset is written as UTC", in: time.Date(2026, 11, 25, 12, 0, 0, 5_000_000, plus2), want: `"2026-11-25T10:00:00.005Z"`},
		{name: "local zone across midnight", in: time.Date(2026, 1, 1, 1, 0, 0, 0, plus2), want: `"2025-12-31T23:00:00.000Z"`},
		{name: "zero time", in: time.Time{}, want: `"0001-01-01T00:00:00.000Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := schemas.At(tt.in).MarshalJSON()
			require.NoError(t, err)
			require.Equal(t, tt.want, string(b))

			var back schemas.Time
			require.NoError(t, back.UnmarshalJSON(b))
			require.True(t, back.Equal(tt.in), "round trip: %v != %v", back.Time, tt.in)
			require.Equal(t, time.UTC, back.Location())
		})
	}
}

func TestTimeUnmarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr string
	}{
		{name: "string", in: `"2026-11-25T10:00:00.123Z"`, want: time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC)},
		{name: "JSON escapes mean their characters", in: `"2026-11-25T10:00:00.123\u005A"`, want: time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC)},
		{name: "escaped digit", in: `"2026-11-25T10:00:00.12\u0033Z"`, want: time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC)},
		{name: "number", in: `1764064800000`, wantErr: "RFC 3339"},
		{name: "null", in: `null`, wantErr: "RFC 3339"},
		{name: "unterminated string", in: `"2026-11-25T10:00:00.123Z`, wantErr: "RFC 3339"},
		{name: "bad escape", in: `"2026-11-25T10:00:00.123\x"`, wantErr: "RFC 3339"},
		{name: "single quote", in: `"`, wantErr: "RFC 3339"},
		{name: "empty string", in: `""`, wantErr: "RFC 3339"},
		{name: "seconds only", in: `"2026-11-25T10:00:00Z"`, wantErr: "3 to 9 fractional digits"},
		{name: "day that does not exist", in: `"2026-02-29T10:00:00.000Z"`, wantErr: "calendar date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got schemas.Time
			err := got.UnmarshalJSON([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.True(t, got.IsZero(), "a failed unmarshal leaves the time alone")
				return
			}
			require.NoError(t, err)
			require.True(t, got.Equal(tt.want), "got %v, want %v", got.Time, tt.want)
		})
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	valid := []struct {
		name string
		in   string
		want time.Time
	}{
		{name: "milliseconds UTC", in: "2026-11-25T10:00:00.123Z", want: time.Date(2026, 11, 25, 10, 0, 0, 123_000_000, time.UTC)},
		{name: "four digits", in: "2026-11-25T10:00:00.1234Z", want: time.Date(2026, 11, 25, 10, 0, 0, 123_400_000, time.UTC)},
		{name: "nine digits", in: "2026-11-25T10:00:00.123456789Z", want: time.Date(2026, 11, 25, 10, 0, 0, 123_456_789, time.UTC)},
		{name: "positive offset", in: "2026-11-25T15:30:00.000+05:30", want: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		{name: "negative offset", in: "2026-11-25T05:00:00.000-05:00", want: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		{name: "largest offset", in: "2026-11-26T09:59:00.000+23:59", want: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		{name: "unknown local offset -00:00", in: "2026-11-25T10:00:00.000-00:00", want: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		{name: "leap day", in: "2024-02-29T23:59:59.999Z", want: time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.UTC)},
		{name: "year 2000 is a leap year", in: "2000-02-29T00:00:00.000Z", want: time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		{name: "year zero", in: "0000-01-01T00:00:00.000Z", want: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "last instant", in: "9999-12-31T23:59:59.999999999Z", want: time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
	}
	for _, tt := range valid {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := schemas.ParseTime(tt.in)
			require.NoError(t, err)
			require.True(t, got.Equal(tt.want), "got %v, want %v", got, tt.want)
			if tt.in[len(tt.in)-1] == 'Z' {
				require.Equal(t, time.UTC, got.Location(), "Z parses as UTC")
			}
		})
	}

	invalid := []struct {
		name string
		in   string
		rule string
	}{
		{name: "empty", in: "", rule: "RFC 3339"},
		{name: "no fraction", in: "2026-11-25T10:00:00Z", rule: "RFC 3339"},
		{name: "offset but no fraction", in: "2026-11-25T12:00:00+02:00", rule: "RFC 3339"},
		{name: "one digit", in: "2026-11-25T10:00:00.1Z", rule: "RFC 3339"},
		{name: "two digits", in: "2026-11-25T10:00:00.12Z", rule: "RFC 3339"},
		{name: "ten digits", in: "2026-11-25T10:00:00.1234567890Z", rule: "RFC 3339"},
		{name: "dot but no digits", in: "2026-11-25T10:00:00.Z", rule: "RFC 3339"},
		{name: "comma fraction", in: "2026-11-25T10:00:00,123Z", rule: "RFC 3339"},
		{name: "no zone", in: "2026-11-25T10:00:00.123", rule: "RFC 3339"},
		{name: "zone name", in: "2026-11-25T10:00:00.123 UTC", rule: "RFC 3339"},
		{name: "lower-case t and z", in: "2026-11-25t10:00:00.123z", rule: "RFC 3339"},
		{name: "space for T", in: "2026-11-25 10:00:00.123Z", rule: "RFC 3339"},
		{name: "offset without colon", in: "2026-11-25T10:00:00.123+0200", rule: "RFC 3339"},
		{name: "offset hours only", in: "2026-11-25T10:00:00.123+02", rule: "RFC 3339"},
		{name: "offset hour 24", in: "2026-11-25T10:00:00.123+24:00", rule: "RFC 3339"},
		{name: "offset minute 60", in: "2026-11-25T10:00:00.123+05:60", rule: "RFC 3339"},
		{name: "month 00", in: "2026-00-25T10:00:00.123Z", rule: "RFC 3339"},
		{name: "month 13", in: "2026-13-25T10:00:00.123Z", rule: "RFC 3339"},
		{name: "day 00", in: "2026-11-00T10:00:00.123Z", rule: "RFC 3339"},
		{name: "day 32", in: "2026-11-32T10:00:00.123Z", rule: "RFC 3339"},
		{name: "hour 24", in: "2026-11-25T24:00:00.123Z", rule: "RFC 3339"},
		{name: "minute 60", in: "2026-11-25T10:60:00.123Z", rule: "RFC 3339"},
		{name: "leap second", in: "2026-12-31T23:59:60.000Z", rule: "RFC 3339"},
		{name: "one-digit month", in: "2026-1-25T10:00:00.123Z", rule: "RFC 3339"},
		{name: "five-digit year", in: "12026-11-25T10:00:00.123Z", rule: "RFC 3339"},
		{name: "signed year", in: "-2026-11-25T10:00:00.123Z", rule: "RFC 3339"},
		{name: "leading space", in: " 2026-11-25T10:00:00.123Z", rule: "RFC 3339"},
		{name: "trailing newline", in: "2026-11-25T10:00:00.123Z\n", rule: "RFC 3339"},
		{name: "non-ASCII digit", in: "2026-11-25T10:00:00.12٣Z", rule: "RFC 3339"},
		{name: "February 29 in a common year", in: "2026-02-29T10:00:00.000Z", rule: "calendar date"},
		{name: "February 29 in 1900", in: "1900-02-29T10:00:00.000Z", rule: "calendar date"},
		{name: "April 31", in: "2026-04-31T10:00:00.000Z", rule: "calendar date"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := schemas.ParseTime(tt.in)
			require.ErrorContains(t, err, tt.rule)
			require.True(t, got.IsZero())
		})
	}
}
