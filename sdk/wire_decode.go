package sdk

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON reader in this file decodes one schema v1 event the way
// encoding/json with DisallowUnknownFields decoded it before, several times
// faster and with few allocations: the input becomes one string and every
// string without escapes is a part of it. It gives the same wireEvent for
// every input encoding/json accepted, with two differences: member names
// must match exactly, where encoding/json ignores case, and null is not an
// event (encoding/json read it as an empty one). As in
// encoding/json, null leaves a field as it is (a pointer, map or slice
// becomes nil), a repeated member overrides the one before it (nested
// objects and attrs are merged), \u escapes and surrogate pairs are read,
// invalid UTF-8 and lone surrogates become U+FFFD, and a number must fit
// its field exactly (no fraction or exponent for an integer). Malformed
// JSON anywhere is reported before an unknown member or a value of the
// wrong type.

// decodeParts holds a decoded event and every part it may point to, so
// that they take one allocation.
type decodeParts struct {
	wireParts
	issuedAt, expiresAt, lastAuthAt wireTime
	lat, lon                        float64
	mfa, secure, httpOnly           bool
}

// maxNestingDepth is the deepest nesting encoding/json reads.
const maxNestingDepth = 10000

// wireDecoder reads s from i. Its methods return false when they set err.
type wireDecoder struct {
	s     string
	i     int
	p     *decodeParts
	err   error // the error that stopped decoding
	saved error // the first error met in a well-formed value
}

// decodeWire reads one schema v1 event: one JSON object without unknown
// members, with nothing but whitespace around it. It does not validate.
func decodeWire(data []byte) (*wireEvent, error) {
	if len(data) > MaxEventBytes {
		return nil, &ValidationError{Errors: []*FieldError{{
			Field: "(event)",
			Rule:  fmt.Sprintf("must be at most %d bytes (got %d)", MaxEventBytes, len(data)),
		}}}
	}
	d := wireDecoder{s: string(data), p: new(decodeParts)}
	w := &d.p.event
	d.space()
	switch {
	case d.i >= len(d.s):
		d.syntax()
	case d.s[d.i] != '{':
		if d.skip(0) {
			d.fatal("the event must be an object")
		}
	default:
		d.object(1, func(key string) bool { return d.eventMember(w, key) })
	}
	if d.err == nil && d.saved != nil {
		d.err = d.saved
	}
	if d.err != nil {
		return nil, d.err
	}
	d.space()
	if d.i < len(d.s) {
		return nil, &ValidationError{Errors: []*FieldError{{Field: "(event)", Rule: "must be one JSON object, without trailing data"}}}
	}
	return w, nil
}

func malformed(reason string) error {
	return &ValidationError{Errors: []*FieldError{{Field: "(event)", Rule: "must be one JSON object of schema v1: " + reason}}}
}

// fatal stops decoding with reason and returns false.
func (d *wireDecoder) fatal(reason string) bool {
	if d.err == nil {
		d.err = malformed(reason)
	}
	return false
}

// syntax stops decoding at malformed JSON.
func (d *wireDecoder) syntax() bool {
	if d.i >= len(d.s) {
		return d.fatal("unexpected end of JSON input")
	}
	return d.fatal(fmt.Sprintf("invalid JSON at byte %d", d.i))
}

// wrongType keeps the first error of a well-formed value that does not
// fit its field, as encoding/json does, and skips the value.
func (d *wireDecoder) wrongType(field, want string) bool {
	if d.saved == nil {
		d.saved = malformed(field + " must be " + want)
	}
	return d.skip(3)
}

// unknown keeps the error of a member schema v1 does not have and skips
// its value.
func (d *wireDecoder) unknown(key string) bool {
	if d.saved == nil {
		d.saved = &ValidationError{Errors: []*FieldError{{Field: truncateID(key), Rule: "is not a field of schema v1"}}}
	}
	return d.skip(3)
}

func (d *wireDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the byte at d.i, or 0 at the end.
func (d *wireDecoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

// literal reads lit (true, false or null).
func (d *wireDecoder) literal(lit string) bool {
	if len(d.s)-d.i >= len(lit) && d.s[d.i:d.i+len(lit)] == lit {
		d.i += len(lit)
		return true
	}
	for j := 0; j < len(lit) && d.i < len(d.s) && d.s[d.i] == lit[j]; j++ {
		d.i++
	}
	return d.syntax()
}

// object reads the object at d.i, its members through member, which reads
// the value after the colon. depth is the object's nesting.
func (d *wireDecoder) object(depth int, member func(key string) bool) bool {
	d.i++
	d.space()
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		if d.peek() != '"' {
			return d.syntax()
		}
		key, ok := d.str()
		if !ok {
			return false
		}
		d.space()
		if d.peek() != ':' {
			return d.syntax()
		}
		d.i++
		d.space()
		if !member(key) {
			return false
		}
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			d.space()
		case '}':
			d.i++
			return true
		default:
			return d.syntax()
		}
	}
}

// str reads the string at d.i.
func (d *wireDecoder) str() (string, bool) {
	s := d.s
	start := d.i + 1
	i := start
	for {
		for i+8 <= len(s) && safe8(s[i:i+8]) {
			i += 8
		}
		if i >= len(s) {
			d.i = i
			return "", d.syntax()
		}
		c := s[i]
		if c == '"' {
			d.i = i + 1
			return s[start:i], true
		}
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			return d.slowStr(start, i)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return d.slowStr(start, i)
		}
		i += size
	}
}

// slowStr reads a string that opened at start-1 and has an escape,
// a control byte or invalid UTF-8 at i.
func (d *wireDecoder) slowStr(start, i int) (string, bool) {
	s := d.s
	b := make([]byte, 0, i-start+16)
	b = append(b, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(b), true
		case c < ' ':
			d.i = i
			return "", d.syntax()
		case c == '\\':
			if i+1 >= len(s) {
				d.i = len(s)
				return "", d.syntax()
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				i += 2
			case 'b':
				b = append(b, '\b')
				i += 2
			case 'f':
				b = append(b, '\f')
				i += 2
			case 'n':
				b = append(b, '\n')
				i += 2
			case 'r':
				b = append(b, '\r')
				i += 2
			case 't':
				b = append(b, '\t')
				i += 2
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					d.i = i + 2
					for k := 0; k < 4 && d.i < len(s) && unhex(s[d.i]) >= 0; k++ {
						d.i++
					}
					return "", d.syntax()
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2, ok := hex4(s, i+2); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b = utf8.AppendRune(b, dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default:
				d.i = i + 1
				return "", d.syntax()
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	d.i = len(s)
	return "", d.syntax()
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 reads the four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		v := unhex(c)
		if v < 0 {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

// number reads the number at d.i and returns its text.
func (d *wireDecoder) number() (string, bool) {
	s, start := d.s, d.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		digits()
	default:
		d.i = i
		return "", d.syntax()
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			d.i = i
			return "", d.syntax()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			d.i = i
			return "", d.syntax()
		}
	}
	d.i = i
	return s[start:i], true
}

// skip reads and drops the value at d.i, which sits at nesting depth.
func (d *wireDecoder) skip(depth int) bool {
	switch c := d.peek(); {
	case c == '"':
		_, ok := d.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		_, ok := d.number()
		return ok
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '{':
		if depth+1 > maxNestingDepth {
			return d.fatal("exceeded max depth")
		}
		return d.object(depth+1, func(string) bool { return d.skip(depth + 1) })
	case c == '[':
		if depth+1 > maxNestingDepth {
			return d.fatal("exceeded max depth")
		}
		return d.array(func() bool { return d.skip(depth + 1) })
	}
	return d.syntax()
}

// array reads the array at d.i, its elements through elem.
func (d *wireDecoder) array(elem func() bool) bool {
	d.i++
	d.space()
	if d.peek() == ']' {
		d.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			d.space()
		case ']':
			d.i++
			return true
		default:
			return d.syntax()
		}
	}
}

// readString reads a string or null (which leaves *dst as it is).
func (d *wireDecoder) readString(dst *string, field string) bool {
	switch d.peek() {
	case '"':
		v, ok := d.str()
		*dst = v
		return ok
	case 'n':
		return d.literal("null")
	}
	return d.wrongType(field, "a string")
}

// readInt reads an integer of bits bits or null into *dst.
func (d *wireDecoder) readInt(dst *int64, bits int, field string) bool {
	switch c := d.peek(); {
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		lit, ok := d.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(lit, 10, bits)
		if err != nil {
			if d.saved == nil {
				d.saved = malformed(field + " must be an integer in range")
			}
			return true
		}
		*dst = n
		return true
	}
	return d.wrongType(field, "an integer")
}

// readFloat reads a number or null into *dst.
func (d *wireDecoder) readFloat(dst *float64, field string) bool {
	switch c := d.peek(); {
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		lit, ok := d.number()
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			if d.saved == nil {
				d.saved = malformed(field + " must be a number in range")
			}
			return true
		}
		*dst = f
		return true
	}
	return d.wrongType(field, "a number")
}

// readFloatPtr reads a number into *dst, set to own unless it is set, or
// null, which makes *dst nil.
func (d *wireDecoder) readFloatPtr(dst **float64, own *float64, field string) bool {
	if d.peek() == 'n' {
		*dst = nil
		return d.literal("null")
	}
	if *dst == nil {
		*own = 0
		*dst = own
	}
	return d.readFloat(*dst, field)
}

// readBool reads true, false or null into *dst.
func (d *wireDecoder) readBool(dst *bool, field string) bool {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case 't':
		*dst = true
		return d.literal("true")
	case 'f':
		*dst = false
		return d.literal("false")
	}
	return d.wrongType(field, "true or false")
}

// readBoolPtr reads true or false into *dst, set to own unless it is set,
// or null, which makes *dst nil.
func (d *wireDecoder) readBoolPtr(dst **bool, own *bool, field string) bool {
	switch d.peek() {
	case 'n':
		*dst = nil
		return d.literal("null")
	case 't', 'f':
		if *dst == nil {
			*own = false
			*dst = own
		}
		return d.readBool(*dst, field)
	}
	return d.wrongType(field, "true or false")
}

// readTime reads an RFC 3339 time as wireTime.UnmarshalJSON does: from a
// string, anything else failing at once.
func (d *wireDecoder) readTime(dst *wireTime, field string) bool {
	if d.peek() != '"' {
		if d.skip(3) {
			return d.fatal(field + " must be an RFC 3339 time")
		}
		return false
	}
	s, ok := d.str()
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return d.fatal(field + " must be an RFC 3339 time")
	}
	dst.Time = t
	return true
}

// readTimePtr reads a time into *dst, set to own unless it is set, or
// null, which makes *dst nil.
func (d *wireDecoder) readTimePtr(dst **wireTime, own *wireTime, field string) bool {
	if d.peek() == 'n' {
		*dst = nil
		return d.literal("null")
	}
	if *dst == nil {
		*own = wireTime{}
		*dst = own
	}
	return d.readTime(*dst, field)
}

// nested reads the object member named field into *dst, set to own unless
// it is set (encoding/json merges a repeated object); null makes it nil.
func nested[T any](d *wireDecoder, dst **T, own *T, field string, member func(v *T, key string) bool) bool {
	switch d.peek() {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '{':
		if *dst == nil {
			var zero T
			*own = zero
			*dst = own
		}
		v := *dst
		return d.object(2, func(key string) bool { return member(v, key) })
	}
	return d.wrongType(field, "an object")
}

func (d *wireDecoder) eventMember(w *wireEvent, key string) bool {
	p := d.p
	switch key {
	case "id":
		return d.readString(&w.ID, key)
	case "schema_version":
		n := int64(w.SchemaVersion)
		ok := d.readInt(&n, strconv.IntSize, key)
		w.SchemaVersion = int(n)
		return ok
	case "type":
		return d.readString((*string)(&w.Type), key)
	case "time":
		return d.readTime(&w.Time, key)
	case "app":
		return d.readString(&w.App, key)
	case "subject":
		return d.readString(&w.Subject, key)
	case "session":
		return d.readString(&w.Session, key)
	case "previous_session":
		return d.readString(&w.PreviousSession, key)
	case "reason":
		return d.readString(&w.Reason, key)
	case "client":
		return nested(d, &w.Client, &p.client, key, d.clientMember)
	case "token":
		return nested(d, &w.Token, &p.token, key, d.tokenMember)
	case "auth":
		return nested(d, &w.Auth, &p.auth, key, d.authMember)
	case "cookie":
		return nested(d, &w.Cookie, &p.cookie, key, d.cookieMember)
	case "policy":
		return nested(d, &w.Policy, &p.policy, key, d.policyMember)
	case "action":
		return nested(d, &w.Action, &p.action, key, d.actionMember)
	case "key":
		return nested(d, &w.Key, &p.key, key, d.keyMember)
	case "attrs":
		return d.readAttrs(w)
	}
	return d.unknown(key)
}

func (d *wireDecoder) clientMember(c *wireClient, key string) bool {
	switch key {
	case "device":
		return d.readString(&c.Device, "client.device")
	case "ip_prefix":
		return d.readString(&c.IPPrefix, "client.ip_prefix")
	case "ip_hash":
		return d.readString(&c.IPHash, "client.ip_hash")
	case "asn":
		return d.readUint32(&c.ASN, "client.asn")
	case "country":
		return d.readString(&c.Country, "client.country")
	case "city":
		return d.readString(&c.City, "client.city")
	case "lat":
		return d.readFloatPtr(&c.Lat, &d.p.lat, "client.lat")
	case "lon":
		return d.readFloatPtr(&c.Lon, &d.p.lon, "client.lon")
	case "accuracy_km":
		return d.readFloat(&c.AccuracyKM, "client.accuracy_km")
	case "user_agent":
		return d.readString(&c.UserAgent, "client.user_agent")
	}
	return d.unknown(key)
}

// readUint32 reads an unsigned 32-bit integer or null into *dst.
func (d *wireDecoder) readUint32(dst *uint32, field string) bool {
	switch c := d.peek(); {
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		lit, ok := d.number()
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(lit, 10, 32)
		if err != nil {
			if d.saved == nil {
				d.saved = malformed(field + " must be an integer in range")
			}
			return true
		}
		*dst = uint32(n)
		return true
	}
	return d.wrongType(field, "an integer")
}

func (d *wireDecoder) tokenMember(t *wireToken, key string) bool {
	switch key {
	case "id":
		return d.readString(&t.ID, "token.id")
	case "kind":
		return d.readString(&t.Kind, "token.kind")
	case "family":
		return d.readString(&t.Family, "token.family")
	case "parent":
		return d.readString(&t.Parent, "token.parent")
	case "issued_at":
		return d.readTimePtr(&t.IssuedAt, &d.p.issuedAt, "token.issued_at")
	case "expires_at":
		return d.readTimePtr(&t.ExpiresAt, &d.p.expiresAt, "token.expires_at")
	case "kid":
		return d.readString(&t.KID, "token.kid")
	case "alg":
		return d.readString(&t.Alg, "token.alg")
	case "claims":
		return d.readClaims(t)
	}
	return d.unknown(key)
}

// readClaims reads an array of strings into t.Claims as encoding/json
// does: reusing the slice, with a null element keeping what the slice
// held at its place.
func (d *wireDecoder) readClaims(t *wireToken) bool {
	switch d.peek() {
	case 'n':
		t.Claims = nil
		return d.literal("null")
	case '[':
	default:
		return d.wrongType("token.claims", "an array of strings")
	}
	claims := t.Claims[:0]
	ok := d.array(func() bool {
		n := len(claims)
		if n < cap(claims) {
			claims = claims[:n+1]
		} else {
			claims = append(claims, "")
		}
		return d.readString(&claims[n], "token.claims")
	})
	if len(claims) == 0 {
		claims = []string{}
	}
	t.Claims = claims
	return ok
}

func (d *wireDecoder) authMember(a *wireAuth, key string) bool {
	switch key {
	case "method":
		return d.readString(&a.Method, "auth.method")
	case "mfa":
		return d.readBoolPtr(&a.MFA, &d.p.mfa, "auth.mfa")
	case "last_auth_at":
		return d.readTimePtr(&a.LastAuthAt, &d.p.lastAuthAt, "auth.last_auth_at")
	}
	return d.unknown(key)
}

func (d *wireDecoder) cookieMember(c *wireCookie, key string) bool {
	switch key {
	case "name":
		return d.readString(&c.Name, "cookie.name")
	case "secure":
		return d.readBoolPtr(&c.Secure, &d.p.secure, "cookie.secure")
	case "http_only":
		return d.readBoolPtr(&c.HTTPOnly, &d.p.httpOnly, "cookie.http_only")
	case "same_site":
		return d.readString(&c.SameSite, "cookie.same_site")
	}
	return d.unknown(key)
}

func (d *wireDecoder) policyMember(p *wirePolicy, key string) bool {
	switch key {
	case "idle_timeout_s":
		return d.readInt(&p.IdleTimeoutS, 64, "policy.idle_timeout_s")
	case "absolute_timeout_s":
		return d.readInt(&p.AbsoluteTimeoutS, 64, "policy.absolute_timeout_s")
	case "reauth_window_s":
		return d.readInt(&p.ReauthWindowS, 64, "policy.reauth_window_s")
	}
	return d.unknown(key)
}

func (d *wireDecoder) actionMember(a *wireAction, key string) bool {
	switch key {
	case "name":
		return d.readString(&a.Name, "action.name")
	case "sensitive":
		return d.readBool(&a.Sensitive, "action.sensitive")
	}
	return d.unknown(key)
}

func (d *wireDecoder) keyMember(k *wireKey, key string) bool {
	if key == "kid" {
		return d.readString(&k.KID, "key.kid")
	}
	return d.unknown(key)
}

// readAttrs reads attrs into w.Attrs, merging a repeated member; null
// makes it nil, and a null value is the empty string.
func (d *wireDecoder) readAttrs(w *wireEvent) bool {
	switch d.peek() {
	case 'n':
		w.Attrs = nil
		return d.literal("null")
	case '{':
	default:
		return d.wrongType("attrs", "an object of strings")
	}
	if w.Attrs == nil {
		w.Attrs = make(map[string]string)
	}
	m := w.Attrs
	return d.object(2, func(key string) bool {
		var v string
		ok := d.readString(&v, "attrs")
		m[key] = v
		return ok
	})
}
