package schemas

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"time"
)

// timeLayout writes times in UTC with millisecond precision, the precision
// schema v1 requires at least.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// errTimePrecision is returned for a string that is not an RFC 3339 time
// with three to nine fractional digits.
var errTimePrecision = errors.New("must be RFC 3339 with 3 to 9 fractional digits (e.g. 2026-11-25T10:00:00.000Z)")

// errTimeDate is returned for a well-formed time on a day its month does not
// have, such as February 30.
var errTimeDate = errors.New("must be a calendar date that exists (e.g. no February 30)")

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
	var v time.Time
	var err error
	if bytes.IndexByte(b, '\\') < 0 {
		v, err = parseTime(b[1 : len(b)-1])
	} else {
		// A JSON escape (such as \u005a for Z) means the same text as the
		// character itself, as it does to a JSON Schema validator.
		var s string
		if stdjson.Unmarshal(b, &s) != nil {
			return errTimePrecision
		}
		v, err = parseTime(s)
	}
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime parses an RFC 3339 time with millisecond precision or better:
// YYYY-MM-DDThh:mm:ss.fff (3 to 9 fractional digits) then Z or ±hh:mm. It
// accepts exactly the strings the "time" pattern of event.v1.schema.json
// matches, less the days a month does not have.
func ParseTime(s string) (time.Time, error) { return parseTime(s) }

// parseTime is ParseTime for strings and, without a copy, bytes.
func parseTime[S ~string | ~[]byte](s S) (time.Time, error) {
	// Shortest: 2006-01-02T15:04:05.000Z; longest: nine digits and an offset.
	if len(s) < 24 || len(s) > 35 {
		return time.Time{}, errTimePrecision
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' ||
		month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, errTimePrecision
	}
	i := 20
	nsec, scale := 0, int(time.Second)
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if i-20 == 9 {
			return time.Time{}, errTimePrecision
		}
		scale /= 10
		nsec += int(s[i]-'0') * scale
		i++
	}
	if i-20 < 3 {
		return time.Time{}, errTimePrecision
	}
	loc := time.UTC
	switch rest := s[i:]; {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, errTimePrecision
		}
		off := (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
		if off != 0 {
			loc = time.FixedZone("", off)
		}
	default:
		return time.Time{}, errTimePrecision
	}
	v := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if v.Day() != day {
		// time.Date normalized a day the month does not have.
		return time.Time{}, errTimeDate
	}
	return v, nil
}

// digits parses s, which must be all ASCII digits.
func digits[S ~string | ~[]byte](s S) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
