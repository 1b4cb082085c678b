package sdk

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The JSON writer in this file produces exactly what encoding/json writes for a
// wireEvent with SetEscapeHTML(false), without the trailing newline: members
// in struct order under the same omitempty rules (pointers are left out only
// when nil), attrs keys sorted, and the same forms of numbers, times and
// strings. It is about three times faster than encoding/json and allocates
// nothing beyond the buffer it appends to. The tests compare the two byte
// for byte.

// sizeHint is at least the length of w's JSON unless one of its strings
// needs escaping: the lengths of its strings plus, for each part, the most
// its member names, punctuation, numbers and times can take. With it
// encode allocates once for nearly every event.
func (w *wireEvent) sizeHint() int {
	n := 160 + len(w.ID) + len(w.Type) + len(w.App) + len(w.Subject) + len(w.Session) + len(w.PreviousSession) + len(w.Reason)
	if c := w.Client; c != nil {
		n += 240 + len(c.Device) + len(c.IPPrefix) + len(c.IPHash) + len(c.Country) + len(c.City) + len(c.UserAgent)
	}
	if t := w.Token; t != nil {
		n += 200 + len(t.ID) + len(t.Kind) + len(t.Family) + len(t.Parent) + len(t.KID) + len(t.Alg)
		for _, c := range t.Claims {
			n += len(c) + 3
		}
	}
	if a := w.Auth; a != nil {
		n += 96 + len(a.Method)
	}
	if c := w.Cookie; c != nil {
		n += 72 + len(c.Name) + len(c.SameSite)
	}
	if w.Policy != nil {
		n += 136
	}
	if a := w.Action; a != nil {
		n += 48 + len(a.Name)
	}
	if k := w.Key; k != nil {
		n += 24 + len(k.KID)
	}
	if len(w.Attrs) > 0 {
		n += 12
		for k, v := range w.Attrs {
			n += len(k) + len(v) + 6
		}
	}
	return n
}

// appendJSON appends the JSON of w to b. Its floats must be finite, as
// validate makes sure: encoding/json refuses NaN and infinities.
func (w *wireEvent) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, `{"id":`...)
	b = appendString(b, w.ID)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(w.SchemaVersion), 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(w.Type))
	b = append(b, `,"time":`...)
	b = w.Time.appendJSON(b)
	b = append(b, `,"app":`...)
	b = appendString(b, w.App)
	b = append(b, `,"subject":`...)
	b = appendString(b, w.Subject)
	b = appendStringMember(b, open, `"session":`, w.Session)
	b = appendStringMember(b, open, `"previous_session":`, w.PreviousSession)
	b = appendStringMember(b, open, `"reason":`, w.Reason)
	if w.Client != nil {
		b = w.Client.appendJSON(appendKey(b, open, `"client":`))
	}
	if w.Token != nil {
		b = w.Token.appendJSON(appendKey(b, open, `"token":`))
	}
	if w.Auth != nil {
		b = w.Auth.appendJSON(appendKey(b, open, `"auth":`))
	}
	if w.Cookie != nil {
		b = w.Cookie.appendJSON(appendKey(b, open, `"cookie":`))
	}
	if w.Policy != nil {
		b = w.Policy.appendJSON(appendKey(b, open, `"policy":`))
	}
	if w.Action != nil {
		b = w.Action.appendJSON(appendKey(b, open, `"action":`))
	}
	if w.Key != nil {
		b = w.Key.appendJSON(appendKey(b, open, `"key":`))
	}
	if len(w.Attrs) > 0 {
		b = appendAttrs(appendKey(b, open, `"attrs":`), w.Attrs)
	}
	return append(b, '}')
}

func (c *wireClient) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	b = appendStringMember(b, open, `"device":`, c.Device)
	b = appendStringMember(b, open, `"ip_prefix":`, c.IPPrefix)
	b = appendStringMember(b, open, `"ip_hash":`, c.IPHash)
	if c.ASN != 0 {
		b = strconv.AppendUint(appendKey(b, open, `"asn":`), uint64(c.ASN), 10)
	}
	b = appendStringMember(b, open, `"country":`, c.Country)
	b = appendStringMember(b, open, `"city":`, c.City)
	if c.Lat != nil {
		b = appendFloat(appendKey(b, open, `"lat":`), *c.Lat)
	}
	if c.Lon != nil {
		b = appendFloat(appendKey(b, open, `"lon":`), *c.Lon)
	}
	if c.AccuracyKM != 0 {
		b = appendFloat(appendKey(b, open, `"accuracy_km":`), c.AccuracyKM)
	}
	b = appendStringMember(b, open, `"user_agent":`, c.UserAgent)
	return append(b, '}')
}

func (t *wireToken) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	b = appendStringMember(b, open, `"id":`, t.ID)
	b = appendStringMember(b, open, `"kind":`, t.Kind)
	b = appendStringMember(b, open, `"family":`, t.Family)
	b = appendStringMember(b, open, `"parent":`, t.Parent)
	if t.IssuedAt != nil {
		b = t.IssuedAt.appendJSON(appendKey(b, open, `"issued_at":`))
	}
	if t.ExpiresAt != nil {
		b = t.ExpiresAt.appendJSON(appendKey(b, open, `"expires_at":`))
	}
	b = appendStringMember(b, open, `"kid":`, t.KID)
	b = appendStringMember(b, open, `"alg":`, t.Alg)
	if len(t.Claims) > 0 {
		b = append(appendKey(b, open, `"claims":`), '[')
		for i, c := range t.Claims {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (a *wireAuth) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	b = appendStringMember(b, open, `"method":`, a.Method)
	if a.MFA != nil {
		b = strconv.AppendBool(appendKey(b, open, `"mfa":`), *a.MFA)
	}
	if a.LastAuthAt != nil {
		b = a.LastAuthAt.appendJSON(appendKey(b, open, `"last_auth_at":`))
	}
	return append(b, '}')
}

func (c *wireCookie) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	b = appendStringMember(b, open, `"name":`, c.Name)
	if c.Secure != nil {
		b = strconv.AppendBool(appendKey(b, open, `"secure":`), *c.Secure)
	}
	if c.HTTPOnly != nil {
		b = strconv.AppendBool(appendKey(b, open, `"http_only":`), *c.HTTPOnly)
	}
	b = appendStringMember(b, open, `"same_site":`, c.SameSite)
	return append(b, '}')
}

func (p *wirePolicy) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	if p.IdleTimeoutS != 0 {
		b = strconv.AppendInt(appendKey(b, open, `"idle_timeout_s":`), p.IdleTimeoutS, 10)
	}
	if p.AbsoluteTimeoutS != 0 {
		b = strconv.AppendInt(appendKey(b, open, `"absolute_timeout_s":`), p.AbsoluteTimeoutS, 10)
	}
	if p.ReauthWindowS != 0 {
		b = strconv.AppendInt(appendKey(b, open, `"reauth_window_s":`), p.ReauthWindowS, 10)
	}
	return append(b, '}')
}

func (a *wireAction) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	b = appendStringMember(b, open, `"name":`, a.Name)
	if a.Sensitive {
		b = append(appendKey(b, open, `"sensitive":`), "true"...)
	}
	return append(b, '}')
}

func (k *wireKey) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	b = appendStringMember(b, open, `"kid":`, k.KID)
	return append(b, '}')
}

// appendJSON appends t as MarshalJSON writes it. Years 0 to 9999, the only
// ones validate lets through, take a fast path; others go through
// MarshalJSON's layouts.
func (t wireTime) appendJSON(b []byte) []byte {
	u := t.UTC()
	year, month, day := u.Date()
	if year < 0 || year > 9999 {
		layout := "2006-01-02T15:04:05.000Z07:00"
		if u.Nanosecond()%int(time.Millisecond) != 0 {
			layout = "2006-01-02T15:04:05.000000000Z07:00"
		}
		b = append(b, '"')
		b = u.AppendFormat(b, layout)
		return append(b, '"')
	}
	hour, minute, sec := u.Clock()
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	if ns := u.Nanosecond(); ns%int(time.Millisecond) == 0 {
		b = appendDigits(b, ns/int(time.Millisecond), 3)
	} else {
		b = appendDigits(b, ns, 9)
	}
	return append(b, 'Z', '"')
}

// appendDigits appends the n last decimal digits of v >= 0, with leading
// zeros; n is at most 9.
func appendDigits(b []byte, v, n int) []byte {
	b = append(b, "000000000"[:n]...)
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// appendKey appends the key of a member, a quoted name and a colon, after a
// comma unless it is the first member of the object that opens at b[open].
func appendKey(b []byte, open int, key string) []byte {
	if len(b) > open+1 {
		b = append(b, ',')
	}
	return append(b, key...)
}

// appendStringMember appends a member whose value is s unless s is empty.
func appendStringMember(b []byte, open int, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(appendKey(b, open, key), s)
}

// appendAttrs appends m with its keys in byte order.
func appendAttrs(b []byte, m map[string]string) []byte {
	var buf [MaxAttrs]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendFloat appends f as encoding/json does: the shortest form that
// reads back as f, in exponent form below 1e-6 and from 1e21 on, with a
// one-digit negative exponent written without its leading zero.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7.
		if n := len(b); b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are when
// HTML is not escaped: all but control bytes, '"' and '\\'.
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\'
	}
	return safe
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json writes it
// without HTML escaping: '"' and '\\' escaped, \b \f \n \r \t as such,
// other control bytes as \u00XX, U+2028 and U+2029 as \u2028 and \u2029
// (for JavaScript's sake), and each byte of invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && safe8(s[i:i+8]) {
			i += 8
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// safe8 reports whether the eight bytes of s are all ASCII that a JSON
// string holds as they are, testing them at once: a byte fails when its
// high bit is set, or becomes set when 0x20 is subtracted from it (a
// control byte) or 1 from it xor '"' or '\\'. A subtraction borrows from
// a byte only after a lower byte that fails, so no byte passes wrongly.
func safe8(s string) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	return (x|(x-lo*0x20)|((x^(lo*'"'))-lo)|((x^(lo*'\\'))-lo))&hi == 0
}
