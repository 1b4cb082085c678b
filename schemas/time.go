package schemas

import (
	"errors"
	"strings"
	"time"
)

// timeLayout writes times in UTC with millisecond precision, the precision
// schema v1 requires at least.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// errTimePrecision is returned for an RFC 3339 time with fewer than three
// fractional digits.
var errTimePrecision = errors.New("must be RFC 3339 with 3 to 9 fractional digits (e.g. 2026-11-25T10:00:00.000Z)")

// Time is an RFC 3339 timestamp with at least millisecond precision.
type Time struct {
	time.Time
}

// At returns t as a Time.
func At(t time.Time) Time { return Time{t} }

// MarshalJSON writes t in UTC with millisecond precision, or nanosecond
// precision when t has sub-millisecond digits.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(time.RFC3339Nano)+2)
	b = append(b, '"')
	u := t.UTC()
	if u.Nanosecond()%int(time.Millisecond) == 0 {
		b = u.AppendFormat(b, timeLayout)
	} else {
		b = u.AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
	}
	return append(b, '"'), nil
}

// UnmarshalJSON reads an RFC 3339 string with at least millisecond precision.
func (t *Time) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errTimePrecision
	}
	v, err := ParseTime(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime parses an RFC 3339 time with millisecond precision or better.
func ParseTime(s string) (time.Time, error) {
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		return time.Time{}, errTimePrecision
	}
	digits := 0
	for _, c := range s[dot+1:] {
		if c < '0' || c > '9' {
			break
		}
		digits++
	}
	if digits < 3 || digits > 9 {
		return time.Time{}, errTimePrecision
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errTimePrecision
	}
	return v, nil
}
