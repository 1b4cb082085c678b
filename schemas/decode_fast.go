package schemas

import (
	"encoding/binary"
	"hash/maphash"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
)

// fastDecoder reads the usual shape of an event without reflection: the
// fields of Event and its blocks, strings without escapes, integers
// without sign, fraction or exponent, no null and no repeated member. It
// accepts a subset of what the goccy/go-json path accepts, and gives the
// same Event for it; anything else (an escape, a null, an unknown or
// repeated member, malformed JSON) makes it give up, and Decode then
// judges the input with the full decoder, which names the problem. It
// never reports an error itself.
type fastDecoder struct {
	b   []byte
	i   int
	blk *eventBlock

	// Values of the fields no detector keeps (session ids, devices, token
	// ids) are gathered in pool and become one string at the end.
	pool  [512]byte
	npool int
	later [8]pooled
	n     int
}

// pooled is a field waiting for its value, pool[off:end].
type pooled struct {
	dst      *string
	off, end int
}

// plainByte marks the bytes a string may hold as they are: printable ASCII
// other than '"' and '\\'. Bytes from 0x80 are UTF-8, checked per string.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// eventBlock holds an event with the blocks nearly every event has, so
// that they take one allocation rather than four.
type eventBlock struct {
	e        Event
	c        Client
	lat, lon float64
}

// specialByte reports whether one of the eight bytes of w may be other
// than a plainByte. It has false positives only in bytes that follow a
// true one.
func specialByte(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, bs := w^(ones*'"'), w^(ones*'\\')
	return ((q-ones)&^q|(bs-ones)&^bs|(w-ones*0x20)|w)&highs != 0
}

// decodeFast decodes data and reports whether it could.
func decodeFast(data []byte) (*Event, bool) {
	blk := new(eventBlock)
	d := fastDecoder{b: data, blk: blk}
	if !d.event(&blk.e) {
		return nil, false
	}
	d.ws()
	if d.i != len(d.b) {
		return nil, false
	}
	if d.n > 0 {
		all := string(d.pool[:d.npool])
		for _, p := range d.later[:d.n] {
			*p.dst = all[p.off:p.end]
		}
	}
	return &blk.e, true
}

// internSlots remembers recent values of the fields that repeat across
// events (app, country, city, user agent, auth method, token kind, cookie
// attributes), so that decoding them again takes no allocation. A slot is
// replaced on a miss: the table is bounded whatever the input.
var (
	internSlots [1024]atomic.Pointer[string]
	internSeed  = maphash.MakeSeed()
)

// maxInterned is the longest value kept in internSlots.
const maxInterned = 256

// intern returns s as a string, shared with earlier calls for the same
// value when it is still in internSlots.
func intern(s []byte) string {
	if len(s) == 0 || len(s) > maxInterned {
		return string(s)
	}
	slot := &internSlots[maphash.Bytes(internSeed, s)%uint64(len(internSlots))]
	if p := slot.Load(); p != nil && *p == string(s) {
		return *p
	}
	v := string(s)
	slot.Store(&v)
	return v
}

func (d *fastDecoder) ws() {
	if d.i < len(d.b) && d.b[d.i] > ' ' {
		return // compact JSON
	}
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (d *fastDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// object reads an object, calling member with each member's name and a
// bit set of the names seen before; member reads the value and returns the
// name's bit (0: unknown name or bad value, which stops the read).
func (d *fastDecoder) object(member func(name []byte) uint32) bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return true
	}
	var seen uint32
	for {
		name, ok := d.raw()
		if !ok || d.peek() != ':' {
			return false
		}
		d.i++
		bit := member(name)
		if bit == 0 || seen&bit != 0 {
			return false // a repeated name is the full decoder's to report
		}
		seen |= bit
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// raw reads a string without escapes and returns its bytes, in data.
func (d *fastDecoder) raw() ([]byte, bool) {
	if d.peek() != '"' {
		return nil, false
	}
	d.i++
	start, b := d.i, d.b
	i := start
	// Eight bytes at a time while none of them is special; the byte loop
	// then finds which one is.
	for i+8 <= len(b) && !specialByte(binary.LittleEndian.Uint64(b[i:])) {
		i += 8
	}
	for i < len(b) && plainByte[b[i]] {
		i++
	}
	ascii := true
	for i < len(b) && b[i] >= 0x80 {
		// Rare (a city, a user agent): finish byte by byte.
		ascii = false
		for i < len(b) && (plainByte[b[i]] || b[i] >= 0x80) {
			i++
		}
	}
	if i >= len(b) || b[i] != '"' {
		return nil, false
	}
	s := b[start:i]
	if !ascii && !utf8.Valid(s) {
		return nil, false
	}
	d.i = i + 1
	return s, true
}

func (d *fastDecoder) str(dst *string) uint32 {
	s, ok := d.raw()
	if !ok {
		return 0
	}
	*dst = string(s)
	return 1
}

// transient reads a string that state does not keep (see fastDecoder.pool):
// keeping a part would keep the whole.
func (d *fastDecoder) transient(dst *string) uint32 {
	s, ok := d.raw()
	switch {
	case !ok:
		return 0
	case len(s) == 0:
		*dst = ""
	case d.n == len(d.later) || d.npool+len(s) > len(d.pool):
		*dst = string(s)
	default:
		end := d.npool + copy(d.pool[d.npool:], s)
		d.later[d.n] = pooled{dst: dst, off: d.npool, end: end}
		d.npool, d.n = end, d.n+1
	}
	return 1
}

// common reads a string that repeats across events (see internSlots).
func (d *fastDecoder) common(dst *string) uint32 {
	s, ok := d.raw()
	if !ok {
		return 0
	}
	*dst = intern(s)
	return 1
}

// uint reads a non-negative integer of at most limit.
func (d *fastDecoder) uint(limit uint64) (uint64, bool) {
	d.ws()
	b, i := d.b, d.i
	start := i
	var n uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 18 {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	switch {
	case i == start, i-start > 1 && b[start] == '0', n > limit:
		return 0, false
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E' || (b[i] >= '0' && b[i] <= '9')):
		return 0, false
	}
	d.i = i
	return n, true
}

// float reads a number as the JSON grammar writes it.
func (d *fastDecoder) float() (float64, bool) {
	d.ws()
	b, i := d.b, d.i
	start := i
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	// The full decoder's parse gives strconv.ParseFloat's result; out of
	// range is its error to report.
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	if err != nil {
		return 0, false
	}
	d.i = i
	return f, true
}

func (d *fastDecoder) bool() (bool, bool) {
	d.ws()
	switch b := d.b[d.i:]; {
	case len(b) >= 4 && string(b[:4]) == "true":
		d.i += 4
		return true, true
	case len(b) >= 5 && string(b[:5]) == "false":
		d.i += 5
		return false, true
	}
	return false, false
}

func (d *fastDecoder) time(dst *Time) uint32 {
	s, ok := d.raw()
	if !ok {
		return 0
	}
	t, err := parseTime(s)
	if err != nil {
		return 0
	}
	dst.Time = t
	return 1
}

func (d *fastDecoder) timePtr(dst **Time) uint32 {
	t := new(Time)
	*dst = t
	return d.time(t)
}

func (d *fastDecoder) boolPtr(dst **bool) uint32 {
	v, ok := d.bool()
	if !ok {
		return 0
	}
	*dst = &v
	return 1
}

// event reads the top-level object. Each member's bit is its position.
func (d *fastDecoder) event(e *Event) bool {
	return d.object(func(name []byte) uint32 {
		switch string(name) {
		case "id":
			return d.str(&e.ID) << 0
		case "schema_version":
			n, good := d.uint(1 << 31)
			e.SchemaVersion = int(n)
			return bit(good, 1)
		case "type":
			s, good := d.raw()
			if !good {
				return 0
			}
			e.Type = typeOf(s)
			return 1 << 2
		case "time":
			return d.time(&e.Time) << 3
		case "app":
			return d.common(&e.App) << 4
		case "subject":
			return d.str(&e.Subject) << 5
		case "session":
			return d.transient(&e.Session) << 6
		case "previous_session":
			return d.transient(&e.PreviousSession) << 7
		case "reason":
			return d.common(&e.Reason) << 8
		case "client":
			e.Client = &d.blk.c
			return bit(d.client(e.Client), 9)
		case "token":
			e.Token = new(Token)
			return bit(d.token(e.Token), 10)
		case "auth":
			e.Auth = new(Auth)
			return bit(d.auth(e.Auth), 11)
		case "cookie":
			e.Cookie = new(Cookie)
			return bit(d.cookie(e.Cookie), 12)
		case "policy":
			e.Policy = new(Policy)
			return bit(d.policy(e.Policy), 13)
		case "action":
			e.Action = new(Action)
			return bit(d.action(e.Action), 14)
		case "key":
			e.Key = new(Key)
			return bit(d.object(func(name []byte) uint32 {
				if string(name) == "kid" {
					return d.str(&e.Key.KID)
				}
				return 0
			}), 15)
		case "attrs":
			return bit(d.attrs(&e.Attrs), 16)
		}
		return 0
	})
}

// typeOf returns s as a Type, without a copy for the schema's types.
func typeOf(s []byte) Type {
	for _, t := range Types {
		if string(t) == string(s) {
			return t
		}
	}
	return Type(s)
}

// bit returns 1<<n if ok, else 0.
func bit[B ~bool | ~uint32](ok B, n uint) uint32 {
	var zero B
	if ok == zero {
		return 0
	}
	return 1 << n
}

func (d *fastDecoder) client(c *Client) bool {
	return d.object(func(name []byte) uint32 {
		switch string(name) {
		case "device":
			return d.transient(&c.Device) << 0
		case "ip_prefix":
			return d.str(&c.IPPrefix) << 1
		case "ip_hash":
			return d.transient(&c.IPHash) << 2
		case "asn":
			n, ok := d.uint(1<<32 - 1)
			c.ASN = uint32(n)
			return bit(ok, 3)
		case "country":
			return d.common(&c.Country) << 4
		case "city":
			return d.common(&c.City) << 5
		case "lat":
			f, ok := d.float()
			d.blk.lat, c.Lat = f, &d.blk.lat
			return bit(ok, 6)
		case "lon":
			f, ok := d.float()
			d.blk.lon, c.Lon = f, &d.blk.lon
			return bit(ok, 7)
		case "accuracy_km":
			f, ok := d.float()
			c.AccuracyKM = f
			return bit(ok, 8)
		case "user_agent":
			return d.common(&c.UserAgent) << 9
		}
		return 0
	})
}

func (d *fastDecoder) token(t *Token) bool {
	return d.object(func(name []byte) uint32 {
		switch string(name) {
		case "id":
			return d.transient(&t.ID) << 0
		case "kind":
			return d.common(&t.Kind) << 1
		case "family":
			return d.transient(&t.Family) << 2
		case "parent":
			return d.transient(&t.Parent) << 3
		case "issued_at":
			return d.timePtr(&t.IssuedAt) << 4
		case "expires_at":
			return d.timePtr(&t.ExpiresAt) << 5
		case "kid":
			return d.common(&t.KID) << 6
		case "alg":
			return d.common(&t.Alg) << 7
		case "claims":
			return bit(d.claims(&t.Claims), 8)
		}
		return 0
	})
}

func (d *fastDecoder) claims(dst *[]string) bool {
	if d.peek() != '[' {
		return false
	}
	d.i++
	out := []string{}
	if d.peek() == ']' {
		d.i++
		*dst = out
		return true
	}
	for {
		var s string
		if d.str(&s) == 0 {
			return false
		}
		out = append(out, s)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*dst = out
			return true
		default:
			return false
		}
	}
}

func (d *fastDecoder) auth(a *Auth) bool {
	return d.object(func(name []byte) uint32 {
		switch string(name) {
		case "method":
			return d.common(&a.Method) << 0
		case "mfa":
			return d.boolPtr(&a.MFA) << 1
		case "last_auth_at":
			return d.timePtr(&a.LastAuthAt) << 2
		}
		return 0
	})
}

func (d *fastDecoder) cookie(c *Cookie) bool {
	return d.object(func(name []byte) uint32 {
		switch string(name) {
		case "name":
			return d.common(&c.Name) << 0
		case "secure":
			return d.boolPtr(&c.Secure) << 1
		case "http_only":
			return d.boolPtr(&c.HTTPOnly) << 2
		case "same_site":
			return d.common(&c.SameSite) << 3
		}
		return 0
	})
}

func (d *fastDecoder) policy(p *Policy) bool {
	return d.object(func(name []byte) uint32 {
		var (
			dst *int64
			n   uint
		)
		switch string(name) {
		case "idle_timeout_s":
			dst, n = &p.IdleTimeoutS, 0
		case "absolute_timeout_s":
			dst, n = &p.AbsoluteTimeoutS, 1
		case "reauth_window_s":
			dst, n = &p.ReauthWindowS, 2
		default:
			return 0
		}
		v, ok := d.uint(1<<63 - 1)
		*dst = int64(v)
		return bit(ok, n)
	})
}

func (d *fastDecoder) action(a *Action) bool {
	return d.object(func(name []byte) uint32 {
		switch string(name) {
		case "name":
			return d.common(&a.Name) << 0
		case "sensitive":
			v, ok := d.bool()
			a.Sensitive = v
			return bit(ok, 1)
		}
		return 0
	})
}

// attrs reads the attrs object; a repeated key makes it give up.
func (d *fastDecoder) attrs(dst *map[string]string) bool {
	m := map[string]string{}
	*dst = m
	if d.peek() != '{' {
		return false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		k, ok := d.raw()
		if !ok || d.peek() != ':' {
			return false
		}
		d.i++
		if _, dup := m[string(k)]; dup {
			return false
		}
		var v string
		if d.str(&v) == 0 {
			return false
		}
		m[string(k)] = v
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}
