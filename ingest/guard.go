package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/sessionmon/sessionmon/schemas"
)

// PIIKind names a kind of raw personal data or secret that CheckPII detects.
type PIIKind string

// Kinds of findings, in the order CheckPII reports them for one field.
const (
	PIIEmail       PIIKind = "email"
	PIIPhone       PIIKind = "phone"
	PIIIPAddress   PIIKind = "ip_address"
	PIIJWT         PIIKind = "jwt"
	PIIBearerToken PIIKind = "bearer_token"
	PIIAPIKey      PIIKind = "api_key"
)

// Widest host-free networks schemas.Validate accepts in client.ip_prefix.
const (
	maxIPv4PrefixBits = 24
	maxIPv6PrefixBits = 48
)

// Finding is one field that looks like it carries raw personal data. It
// never holds the offending value: Field is the field's JSON path
// ("subject", "client.device", "attrs.note") and Kind what it looks like.
// An attrs key that is itself flagged is named by its placeholder in the
// redacted event, for example "attrs.[redacted:email]".
type Finding struct {
	Field string  `json:"field"`
	Kind  PIIKind `json:"kind"`
}

// String returns "field: kind".
func (f Finding) String() string { return f.Field + ": " + string(f.Kind) }

// PIIError rejects an event because of its findings. Its message lists field
// paths and kinds, never values, so it is safe to log and to keep with a
// dead letter.
type PIIError struct {
	Findings []Finding
}

// Error returns "personal data in event: field: kind; field: kind".
func (e *PIIError) Error() string {
	var b strings.Builder
	b.WriteString("personal data in event: ")
	for i, f := range e.Findings {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// piiSet is a set of PIIKinds, one bit each in the order of piiKinds.
type piiSet uint8

const (
	piiEmail piiSet = 1 << iota
	piiPhone
	piiIP
	piiJWT
	piiBearer
	piiAPIKey
)

var piiKinds = [...]PIIKind{PIIEmail, PIIPhone, PIIIPAddress, PIIJWT, PIIBearerToken, PIIAPIKey}

// CheckPII returns the fields of e that look like they carry raw personal
// data or secrets, in a stable order, or nil for a clean event. It does not
// modify e and is safe for concurrent use.
//
// This is "minimization at the door": an event that carries such data is
// not stored. CheckPII runs on every event, so it scans each string once
// with a byte-class table and runs a detector only when the characters it
// needs are present; it uses no regular expressions and does not allocate
// for a clean event.
//
// Fields checked: the pseudonymous fields subject, session,
// previous_session, client.device, client.ip_hash, token.id, token.family
// and token.parent; the free-text fields reason, action.name and
// client.city; every attrs key and value; and client.ip_prefix, by the
// rule of schemas.Validate (below).
//
// Not checked: client.user_agent (ingest reduces it to families with
// ReduceUserAgent and does not store it, and its version numbers look like
// IPv4 literals), id, app, auth.method, cookie.name, token.kid, token.alg,
// token.claims and key.kid (identifiers the app chooses for itself, not per
// user, and constrained by schemas.Validate).
//
// What is flagged:
//
//   - email: local@domain.tld (also with the @ URL-encoded as %40), where the
//     top-level domain has two or more letters. "user@localhost" and
//     "@handle" are not flagged.
//   - phone: E.164-like numbers, "+" then 8 to 15 digits with optional
//     separators (space - . ( ) /); and national numbers with separators, 9 to
//     13 digits in groups of two or more, that start with a trunk prefix 0
//     ("030 1234567", "06 12 34 56 78", "(0151) 123-4567") or have the North
//     American shape ("(555) 123-4567", "1-555-123-4567"); and numbers with
//     the international prefix 00 instead of "+" ("004915112345678", "0049
//     30 1234567"), 9 to 15 digits after the 00. Any other bare run of
//     digits is not flagged: it is indistinguishable from a numeric id or an
//     epoch timestamp. Digits touching letters (as inside
//     base64), dates (2026-11-25, 25.11.2026) and times are not flagged.
//   - ip_address: an IPv4 dotted quad or an IPv6 literal that netip parses,
//     not touching letters ("v1.2.3.4" is a version, "1.2.3.4" is an
//     address), except the unspecified addresses 0.0.0.0 and ::. "1.2.3.4" is
//     flagged even when it is meant as a version: it is a valid address
//     literal, and pseudonymous fields must never carry one. Five-part
//     versions (1.2.3.4.5) and pre-releases (1.2.3.4-beta) are not flagged.
//     An address written as a network of the allowed width with zero host
//     bits (203.0.113.0/24, 2001:db8:1::/48) is a network, not a host, and
//     is not flagged.
//   - jwt: a word starting with "eyJ" (base64url of `{"`) whose first 8 to
//     12 characters decode to printable ASCII, so a truncated token or a
//     header with more glued to it is caught but a random pseudonym that
//     happens to contain "eyJ" is not.
//   - bearer_token: "Bearer" (any case) and whitespace followed by a token68
//     of at least 16 characters that has a digit, or of at least 32.
//   - api_key: these prefixes at the start of a word, followed by a body of
//     the vendor's shape: Stripe sk_live_ sk_test_ rk_live_ rk_test_; GitHub
//     ghp_ gho_ ghu_ ghs_ ghr_ github_pat_; GitLab glpat-; Slack xoxa- xoxb-
//     xoxp- xoxr- xoxs-; AWS access key ids AKIA and ASIA (exactly 16 more
//     upper-case letters or digits); Google AIza (exactly 35 more); OpenAI
//     and Anthropic sk-proj- sk-svcacct- sk-ant-.
//
// SDK pseudonyms ("k1:" and 22 base64url characters), UUIDs, ULIDs and RFC
// 3339 timestamps never match.
//
// client.ip_prefix: schemas.Validate requires a network of /24 or wider
// (IPv4) or /48 or wider (IPv6) with zero host bits. CheckPII applies the
// same rule so that it is consistent when called alone: a bare address, a
// narrower network or one with host bits set is flagged as ip_address. A
// value that is not an address at all is a schema error, which Validate
// reports; CheckPII scans it like any other text.
func CheckPII(e *schemas.Event) []Finding {
	if e == nil {
		return nil
	}
	var out []Finding
	out = appendPII(out, "subject", e.Subject)
	out = appendPII(out, "session", e.Session)
	out = appendPII(out, "previous_session", e.PreviousSession)
	out = appendPII(out, "reason", e.Reason)
	if c := e.Client; c != nil {
		out = appendPII(out, "client.device", c.Device)
		out = appendPIISet(out, "client.ip_prefix", scanIPPrefix(c.IPPrefix))
		out = appendPII(out, "client.ip_hash", c.IPHash)
		out = appendPII(out, "client.city", c.City)
	}
	if t := e.Token; t != nil {
		out = appendPII(out, "token.id", t.ID)
		out = appendPII(out, "token.family", t.Family)
		out = appendPII(out, "token.parent", t.Parent)
	}
	if a := e.Action; a != nil {
		out = appendPII(out, "action.name", a.Name)
	}
	if attrsDirty(e.Attrs) {
		out = appendAttrPII(out, e.Attrs)
	}
	return out
}

func appendPII(out []Finding, field, s string) []Finding {
	if s == "" {
		return out
	}
	return appendPIISet(out, field, scanPII(s))
}

func appendPIISet(out []Finding, field string, set piiSet) []Finding {
	if set == 0 {
		return out
	}
	for i, k := range piiKinds {
		if set&(1<<i) != 0 {
			out = append(out, Finding{Field: field, Kind: k})
		}
	}
	return out
}

// attrsDirty reports whether any attrs key or value is flagged. Map order
// does not matter here; only a dirty map pays for sorting.
func attrsDirty(m map[string]string) bool {
	for k, v := range m {
		if scanPII(k) != 0 || scanPII(v) != 0 {
			return true
		}
	}
	return false
}

func appendAttrPII(out []Finding, m map[string]string) []Finding {
	keys := redactedAttrKeys(m)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if rk, ok := keys[k]; ok {
			out = appendPIISet(out, "attrs."+rk.name, rk.set)
			continue
		}
		out = appendPII(out, "attrs."+k, m[k])
	}
	return out
}

// redactedKey is the placeholder that replaces a flagged attrs key.
type redactedKey struct {
	name string
	set  piiSet
}

// redactedAttrKeys maps each flagged attrs key to its placeholder.
func redactedAttrKeys(m map[string]string) map[string]redactedKey {
	return redactedKeys(slices.Sorted(maps.Keys(m)), func(k string) bool {
		_, ok := m[k]
		return ok
	})
}

// redactedKeys maps each flagged key of sorted to its placeholder. Keys are
// numbered in sorted order ("[redacted:email]", "[redacted:email:2]"), and
// a placeholder never equals a key that exists, so CheckPII, Redact and
// RedactJSON name the same key alike and names stay unique.
func redactedKeys(sorted []string, exists func(string) bool) map[string]redactedKey {
	var out map[string]redactedKey
	var used map[string]bool
	for _, k := range sorted {
		set := scanPII(k)
		if set == 0 {
			continue
		}
		if out == nil {
			out = make(map[string]redactedKey)
			used = make(map[string]bool)
		}
		base := redactedPlaceholder(set)
		name := base
		for n := 2; exists(name) || used[name]; n++ {
			name = base[:len(base)-1] + ":" + strconv.Itoa(n) + "]"
		}
		used[name] = true
		out[k] = redactedKey{name: name, set: set}
	}
	return out
}

// redactedPlaceholder returns "[redacted:kind]" or "[redacted:kind,kind]".
func redactedPlaceholder(set piiSet) string {
	var b strings.Builder
	b.WriteString("[redacted:")
	first := true
	for i, k := range piiKinds {
		if set&(1<<i) == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(string(k))
	}
	b.WriteByte(']')
	return b.String()
}

// Redact returns a copy of e in which every field named by findings holds
// "[redacted:<kind>]" (kinds joined by commas when a field has several)
// instead of its value. A flagged attrs key is replaced by its placeholder,
// and so is its value. The whole value is replaced, not only the matching
// part, because the text around a match may carry more of it. Redact does
// not modify e; the copy shares no map and no struct that it changes. Use it
// to keep a dead letter that names the field and the reason, never the
// value.
func Redact(e *schemas.Event, findings []Finding) *schemas.Event {
	if e == nil {
		return nil
	}
	sets := make(map[string]piiSet, len(findings))
	for _, f := range findings {
		if i := slices.Index(piiKinds[:], f.Kind); i >= 0 {
			sets[f.Field] |= 1 << i
		}
	}
	cp := *e
	redact := func(field string, s *string) {
		if set, ok := sets[field]; ok {
			*s = redactedPlaceholder(set)
		}
	}
	redact("subject", &cp.Subject)
	redact("session", &cp.Session)
	redact("previous_session", &cp.PreviousSession)
	redact("reason", &cp.Reason)
	if e.Client != nil {
		c := *e.Client
		redact("client.device", &c.Device)
		redact("client.ip_prefix", &c.IPPrefix)
		redact("client.ip_hash", &c.IPHash)
		redact("client.city", &c.City)
		cp.Client = &c
	}
	if e.Token != nil {
		t := *e.Token
		redact("token.id", &t.ID)
		redact("token.family", &t.Family)
		redact("token.parent", &t.Parent)
		cp.Token = &t
	}
	if e.Action != nil {
		a := *e.Action
		redact("action.name", &a.Name)
		cp.Action = &a
	}
	if e.Attrs != nil {
		keys := redactedAttrKeys(e.Attrs)
		cp.Attrs = make(map[string]string, len(e.Attrs))
		for k, v := range e.Attrs {
			if rk, ok := keys[k]; ok {
				if _, flagged := sets["attrs."+rk.name]; flagged {
					cp.Attrs[rk.name] = rk.name
					continue
				}
			}
			if set, ok := sets["attrs."+k]; ok {
				v = redactedPlaceholder(set)
			}
			cp.Attrs[k] = v
		}
	}
	return &cp
}

// RedactJSON returns data, one JSON value that need not be a valid schema
// v1 event, re-encoded with every string CheckPII would flag replaced by
// "[redacted:<kind>]", and the findings. Fields of schema v1 follow the rules
// of CheckPII (paths it does not check are kept); strings in fields that
// schema v1 does not have are all scanned, since nothing constrains them.
// Flagged object keys are replaced as in Redact. Keys come out sorted and
// numbers keep their digits. When data is not JSON it returns an error, and
// the caller must keep no body at all. Use it for dead letters, where an
// event may have failed decoding.
func RedactJSON(data []byte) ([]byte, []Finding, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("redact event json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("redact event json: trailing data after the first value")
	}
	var r jsonRedactor
	v = r.walk("", v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, nil, fmt.Errorf("redact event json: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), r.findings, nil
}

// RedactRaw returns the dead-letter body for data, an event that failed
// decoding, and whether anything in it was replaced. JSON comes back as
// RedactJSON writes it when something was flagged, and unchanged when
// nothing was. Text that is not JSON is kept only when nothing in it looks
// like personal data; otherwise the body is just "[redacted:<kind>]".
func RedactRaw(data []byte) ([]byte, bool) {
	out, findings, err := RedactJSON(data)
	if err == nil {
		if len(findings) == 0 {
			return data, false
		}
		return out, true
	}
	if set := scanPII(string(data)); set != 0 {
		return []byte(redactedPlaceholder(set)), true
	}
	return data, false
}

// RedactText returns s, or "[redacted:<kind>]" when s looks like it
// carries personal data. Use it on text derived from an event before
// logging or keeping it, such as a schema error, whose field paths may
// quote an attrs key or an unknown field name.
func RedactText(s string) string {
	if set := scanPII(s); set != 0 {
		return redactedPlaceholder(set)
	}
	return s
}

// RedactFieldPath returns path, the JSON path of a field as a schema error
// or a Finding names it, with the part that came from the event (an attrs
// key or a field name schema v1 does not have) replaced by its placeholder
// when it looks like personal data: "attrs.bob@example.com" becomes
// "attrs.[redacted:email]". A name with an @ counts as an e-mail address
// even when schemas has shortened it ("attrs.bob.smith@examp...").
func RedactFieldPath(path string) string {
	known := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '.' && path[i] != '[' {
			continue
		}
		if _, ok := eventSchemaPaths[path[:i]]; !ok {
			break
		}
		known = i
		if i < len(path) && path[i] == '[' {
			return path // an array index follows a known field
		}
	}
	prefix, name := "", path
	if known > 0 {
		if known == len(path) {
			return path
		}
		prefix, name = path[:known+1], path[known+1:]
	}
	set := scanPII(name)
	if set == 0 && strings.IndexByte(name, '@') >= 0 {
		set = piiEmail
	}
	if set == 0 {
		return path
	}
	return prefix + redactedPlaceholder(set)
}

// RedactSchemaError returns the field paths and the message of err, an
// error of schemas.Decode or Validate, with RedactFieldPath applied to every
// path, so that a dead letter can keep them (the rules quote no values).
// An error of another type is returned through RedactText.
func RedactSchemaError(err error) (fields []string, message string) {
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		return nil, RedactText(err.Error())
	}
	red := &schemas.ValidationError{Errors: make([]*schemas.FieldError, len(ve.Errors))}
	for i, fe := range ve.Errors {
		red.Errors[i] = &schemas.FieldError{Field: RedactFieldPath(fe.Field), Rule: fe.Rule}
	}
	return red.Fields(), red.Error()
}

// jsonRedactor walks a generically decoded event.
type jsonRedactor struct {
	findings []Finding
}

func (r *jsonRedactor) walk(path string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		sorted := slices.Sorted(maps.Keys(v))
		keys := redactedKeys(sorted, func(k string) bool {
			_, ok := v[k]
			return ok
		})
		out := make(map[string]any, len(v))
		for _, k := range sorted {
			if rk, ok := keys[k]; ok {
				r.findings = appendPIISet(r.findings, jsonPathJoin(path, rk.name), rk.set)
				out[rk.name] = rk.name
				continue
			}
			out[k] = r.walk(jsonPathJoin(path, k), v[k])
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = r.walk(path+"["+strconv.Itoa(i)+"]", x)
		}
		return out
	case string:
		set := scanJSONString(path, v)
		if set == 0 {
			return v
		}
		field := path
		if field == "" {
			field = "(event)"
		}
		r.findings = appendPIISet(r.findings, field, set)
		return redactedPlaceholder(set)
	default:
		return v
	}
}

func jsonPathJoin(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// piiCheckedPaths are the string fields CheckPII scans, besides attrs.
var piiCheckedPaths = map[string]bool{
	"subject": true, "session": true, "previous_session": true, "reason": true,
	"client.device": true, "client.ip_hash": true, "client.city": true,
	"token.id": true, "token.family": true, "token.parent": true,
	"action.name": true,
}

// eventSchemaPaths are the JSON paths of every field of schema v1 that
// holds a value (true) or an object of fields (false), array indexes left
// out.
var eventSchemaPaths = func() map[string]bool {
	out := make(map[string]bool)
	var add func(prefix string, t reflect.Type)
	add = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[schemas.Time]() {
			out[prefix] = true
			return
		}
		if prefix != "" {
			out[prefix] = false
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			add(jsonPathJoin(prefix, name), f.Type)
		}
	}
	add("", reflect.TypeFor[schemas.Event]())
	return out
}()

// scanJSONString applies the rule of the field at path to s.
func scanJSONString(path, s string) piiSet {
	switch {
	case path == "client.ip_prefix":
		return scanIPPrefix(s)
	case piiCheckedPaths[path] || strings.HasPrefix(path, "attrs."):
		return scanPII(s)
	}
	base, _, _ := strings.Cut(path, "[")
	if eventSchemaPaths[base] {
		return 0
	}
	return scanPII(s)
}

// scanIPPrefix applies the ip_prefix rule of schemas.Validate: anything
// that parses as an address or a network but is not a host-free network of
// the allowed width is an ip_address.
func scanIPPrefix(s string) piiSet {
	if s == "" {
		return 0
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if allowedNetwork(p) {
			return 0
		}
		return piiIP
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return piiIP
	}
	return scanPII(s)
}

// allowedNetwork reports whether p is a network schemas.Validate accepts as
// client.ip_prefix: /24 or wider for IPv4, /48 or wider for IPv6, host bits
// zero. TestIPPrefixAgreesWithValidate keeps the two in step.
func allowedNetwork(p netip.Prefix) bool {
	if p.Addr().Is4() && p.Bits() > maxIPv4PrefixBits {
		return false
	}
	if p.Addr().Is6() && p.Bits() > maxIPv6PrefixBits {
		return false
	}
	return p.Masked() == p
}

// Byte classes for the single pass of scanPII.
const (
	clDigit    uint16 = 1 << iota // 0-9
	clLetter                      // A-Z a-z
	clHex                         // 0-9 A-F a-f
	clAt                          // @
	clPercent                     // %
	clPlus                        // +
	clPhoneSep                    // space - . ( ) /
	clStart                       // first byte of a token prefix: e b B s r g x A
	clB64                         // base64url alphabet
	clLocal                       // e-mail local part: atext and .
	clDomain                      // e-mail domain: letters, digits, . -
	clToken68                     // RFC 9110 token68 without the trailing =
	clIPRun                       // letters, digits, : and . (an IPv6 candidate)
)

var byteClass = func() (t [256]uint16) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= clDigit | clHex
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= clLetter
		t[c-'a'+'A'] |= clLetter
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= clHex
		t[c-'a'+'A'] |= clHex
	}
	for c := 0; c < 256; c++ {
		if t[c]&(clDigit|clLetter) != 0 {
			t[c] |= clB64 | clLocal | clDomain | clToken68 | clIPRun
		}
	}
	t['@'] |= clAt
	t['%'] |= clPercent | clLocal
	t['+'] |= clPlus | clLocal | clToken68
	for _, c := range " -.()/" {
		t[c] |= clPhoneSep
	}
	for _, c := range "ebBsrgxA" {
		t[c] |= clStart
	}
	t['-'] |= clB64 | clDomain | clToken68
	t['_'] |= clB64 | clToken68
	t['.'] |= clDomain | clToken68 | clIPRun
	t[':'] |= clIPRun
	t['~'] |= clToken68
	t['/'] |= clToken68
	for _, c := range "!#$&'*/=?^_`{|}~.-" {
		t[c] |= clLocal
	}
	return t
}()

func inClass(c byte, class uint16) bool { return byteClass[c]&class != 0 }

func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

// byteInfo packs, for each byte, counters in the low 48 bits (digits,
// dots and colons, 16 bits each) and its byteClass in the top 16, so that
// scanPII's loop does one load per byte: adding entries sums the counters
// (class bits only carry out of the top), and OR-ing them collects classes.
var byteInfo = func() (t [256]uint64) {
	for c := range t {
		t[c] = uint64(byteClass[c]) << infoClassShift
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= infoDigit
	}
	t['.'] |= infoDot
	t[':'] |= infoColon
	return t
}()

const (
	infoDigit      uint64 = 1
	infoDot        uint64 = 1 << 16
	infoColon      uint64 = 1 << 32
	infoCountMask         = 1<<16 - 1
	infoClassShift        = 48
)

// scanPII returns the kinds of personal data s looks like it carries.
func scanPII(s string) piiSet {
	var (
		acc, counts uint64
		found       piiSet
	)
	boundary := true
	for i := 0; i < len(s); i++ {
		e := byteInfo[s[i]]
		acc |= e
		counts += e
		if boundary && e&(uint64(clStart)<<infoClassShift) != 0 {
			found |= scanToken(s, i)
		}
		boundary = e&(uint64(clDigit|clLetter)<<infoClassShift) == 0
	}
	cls := uint16(acc >> infoClassShift)
	digits, dots, colons := int(counts&infoCountMask), int(counts>>16&infoCountMask), int(counts>>32&infoCountMask)
	if len(s) > infoCountMask {
		// The counters may have wrapped: run every detector.
		digits, dots, colons = len(s), len(s), len(s)
	}
	if cls&(clAt|clPercent) != 0 && hasEmail(s) {
		found |= piiEmail
	}
	if (cls&clPlus != 0 && digits >= e164MinDigits || digits >= nationalMinDigits && cls&clPhoneSep != 0 ||
		digits >= 2+intlMinDigits) && hasPhone(s) {
		found |= piiPhone
	}
	if dots >= 3 && digits >= 4 && hasIPv4(s) || colons >= 2 && hasIPv6(s) {
		found |= piiIP
	}
	return found
}

// scanToken checks the word at s[i] for a JWT, a bearer token or an API key.
func scanToken(s string, i int) piiSet {
	w := s[i:]
	switch w[0] {
	case 'e':
		if strings.HasPrefix(w, "eyJ") && isJWT(w) {
			return piiJWT
		}
	case 'b', 'B':
		if isBearer(w) {
			return piiBearer
		}
	default:
		if isAPIKey(w) {
			return piiAPIKey
		}
	}
	return 0
}

// base64url decoding table; 0xff marks a byte outside the alphabet.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// isJWT decodes the first jwtCheckChars of a JWT's first segment (`{"alg":"H`)
// and needs at least jwtMinChars (`{"alg`): fewer decode to too few bytes to
// tell a header from random base64url, and more would miss a header with
// other base64url glued to it.
const (
	jwtCheckChars = 12
	jwtMinChars   = 8
)

// isJWT reports whether w, which starts with "eyJ", begins with base64url
// that decodes to printable ASCII, as a JOSE header does.
func isJWT(w string) bool {
	n := 0
	for n < len(w) && n < jwtCheckChars && b64Value[w[n]] != 0xff {
		n++
	}
	if n < jwtMinChars {
		return false
	}
	var acc uint32
	bits := 0
	for i := range n {
		acc = acc<<6 | uint32(b64Value[w[i]])
		bits += 6
		if bits >= 8 {
			bits -= 8
			b := byte(acc >> bits)
			if (b < 0x20 || b > 0x7e) && b != '\t' && b != '\n' && b != '\r' {
				return false
			}
		}
	}
	return true
}

// Bearer token shape: token68 of bearerMinLen with a digit, or bearerLongLen.
const (
	bearerMinLen  = 16
	bearerLongLen = 32
)

// isBearer reports whether w starts with "Bearer" (any case), whitespace
// and an opaque token.
func isBearer(w string) bool {
	const word = "bearer"
	if len(w) < len(word)+1+bearerMinLen || !strings.EqualFold(w[:len(word)], word) {
		return false
	}
	i := len(word)
	if w[i] != ' ' && w[i] != '\t' {
		return false
	}
	for i < len(w) && (w[i] == ' ' || w[i] == '\t') {
		i++
	}
	n, digit := 0, false
	for ; i < len(w) && inClass(w[i], clToken68); i++ {
		n++
		digit = digit || isDigitByte(w[i])
	}
	return n >= bearerLongLen || n >= bearerMinLen && digit
}

// apiKeyShape is a documented API-key format: a prefix and a body of
// characters in class, between minLen and maxLen long (maxLen 0: no limit).
type apiKeyShape struct {
	prefix         string
	class          uint16
	minLen, maxLen int
	upperDigits    bool // body is A-Z 0-9 only
}

const (
	keyAlnum = clDigit | clLetter
	keyB64   = clB64
)

var apiKeyShapes = []apiKeyShape{
	{prefix: "sk_live_", class: keyAlnum, minLen: 16},
	{prefix: "sk_test_", class: keyAlnum, minLen: 16},
	{prefix: "rk_live_", class: keyAlnum, minLen: 16},
	{prefix: "rk_test_", class: keyAlnum, minLen: 16},
	{prefix: "sk-proj-", class: keyB64, minLen: 20},
	{prefix: "sk-svcacct-", class: keyB64, minLen: 20},
	{prefix: "sk-ant-", class: keyB64, minLen: 20},
	{prefix: "ghp_", class: keyAlnum, minLen: 30, maxLen: 255},
	{prefix: "gho_", class: keyAlnum, minLen: 30, maxLen: 255},
	{prefix: "ghu_", class: keyAlnum, minLen: 30, maxLen: 255},
	{prefix: "ghs_", class: keyAlnum, minLen: 30, maxLen: 255},
	{prefix: "ghr_", class: keyAlnum, minLen: 30, maxLen: 255},
	{prefix: "github_pat_", class: keyAlnum | clB64, minLen: 22},
	{prefix: "glpat-", class: keyB64, minLen: 20},
	{prefix: "xoxa-", class: keyB64, minLen: 10},
	{prefix: "xoxb-", class: keyB64, minLen: 10},
	{prefix: "xoxp-", class: keyB64, minLen: 10},
	{prefix: "xoxr-", class: keyB64, minLen: 10},
	{prefix: "xoxs-", class: keyB64, minLen: 10},
	{prefix: "AKIA", class: keyAlnum, minLen: 16, maxLen: 16, upperDigits: true},
	{prefix: "ASIA", class: keyAlnum, minLen: 16, maxLen: 16, upperDigits: true},
	{prefix: "AIza", class: keyB64, minLen: 35, maxLen: 35},
}

// apiKeysByFirst indexes apiKeyShapes by the first byte of the prefix.
var apiKeysByFirst = func() (t [256][]apiKeyShape) {
	for _, k := range apiKeyShapes {
		t[k.prefix[0]] = append(t[k.prefix[0]], k)
	}
	return t
}()

func isAPIKey(w string) bool {
	for _, k := range apiKeysByFirst[w[0]] {
		if !strings.HasPrefix(w, k.prefix) {
			continue
		}
		body := w[len(k.prefix):]
		n := 0
		for n < len(body) && inClass(body[n], k.class) {
			if k.upperDigits && !(isDigitByte(body[n]) || body[n] >= 'A' && body[n] <= 'Z') {
				return false
			}
			n++
		}
		if n >= k.minLen && (k.maxLen == 0 || n <= k.maxLen) {
			return true
		}
	}
	return false
}

// hasEmail reports whether s contains local@domain.tld, with the @ possibly
// URL-encoded as %40.
func hasEmail(s string) bool {
	for i := 0; i < len(s); i++ {
		at := 0
		switch {
		case s[i] == '@':
			at = 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
			at = 3
		default:
			continue
		}
		if i > 0 && inClass(s[i-1], clLocal) && s[i-1] != '.' && isDomain(s[i+at:]) {
			return true
		}
	}
	return false
}

// isDomain reports whether d starts with a domain name of two or more labels
// whose last label is two or more letters.
func isDomain(d string) bool {
	n := 0
	for n < len(d) && inClass(d[n], clDomain) {
		n++
	}
	d = strings.TrimRight(d[:n], ".")
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || d[0] == '.' || d[0] == '-' {
		return false
	}
	tld := d[dot+1:]
	if len(tld) < 2 {
		return false
	}
	for i := range len(tld) {
		if !inClass(tld[i], clLetter) {
			return false
		}
	}
	return true
}

// Phone number limits: E.164 allows at most 15 digits; national numbers
// with a trunk prefix run from 9 (030 123456) to 13 digits.
const (
	e164MinDigits     = 8
	e164MaxDigits     = 15
	intlMinDigits     = 9 // after a 00 prefix, which zero-padded ids also have
	nationalMinDigits = 9
	nationalMaxDigits = 13
	phoneMaxSepLen    = 3
	phoneMaxGroups    = 6
)

// hasPhone reports whether s contains a phone number; see the package
// comment on the guard for the shapes.
func hasPhone(s string) bool {
	for i := 0; i < len(s); {
		if !isDigitByte(s[i]) && !inClass(s[i], clPlus|clPhoneSep) {
			i++
			continue
		}
		j := i
		for j < len(s) && (isDigitByte(s[j]) || inClass(s[j], clPlus|clPhoneSep)) {
			j++
		}
		if isPhoneRun(s, i, j) {
			return true
		}
		i = j
	}
	return false
}

// isPhoneRun checks the maximal run s[i:j] of digits, + and separators.
func isPhoneRun(s string, i, j int) bool {
	a, b := i, j
	for a < b && s[a] == ' ' {
		a++
	}
	for b > a && (s[b-1] == ' ' || s[b-1] == '.') {
		b--
	}
	if b-a < nationalMinDigits {
		return false
	}
	e164 := s[a] == '+'
	// The run must not be glued to a word, a time (":") or an identifier.
	if a == i && i > 0 {
		if c := s[i-1]; inClass(c, clDigit|clLetter) || c == '_' || c == ':' && !e164 {
			return false
		}
	}
	if b == j && j < len(s) {
		if c := s[j]; inClass(c, clDigit|clLetter) || c == '_' || c == ':' {
			return false
		}
	}
	run := s[a:b]
	if e164 {
		run = run[1:]
	}
	if run == "" || !isDigitByte(run[len(run)-1]) || !(isDigitByte(run[0]) || run[0] == '(') {
		return false
	}
	var groups [phoneMaxGroups]int
	ng, digits, sepLen, seps := 0, 0, 0, 0
	allDots := true
	for k := 0; k < len(run); k++ {
		c := run[k]
		switch {
		case isDigitByte(c):
			if k == 0 || !isDigitByte(run[k-1]) {
				if ng == phoneMaxGroups {
					return false
				}
				ng++
			}
			groups[ng-1]++
			digits++
			sepLen = 0
		case c == '+':
			return false
		default:
			sepLen++
			if sepLen > phoneMaxSepLen {
				return false
			}
			if k > 0 && isDigitByte(run[k-1]) {
				seps++
			}
			allDots = allDots && c == '.'
		}
	}
	if e164 {
		return digits >= e164MinDigits && digits <= e164MaxDigits
	}
	if len(run) > 2 && run[0] == '0' && run[1] == '0' && run[2] >= '1' && run[2] <= '9' {
		// 00 and a country code, which never starts with 0.
		return digits-2 >= intlMinDigits && digits-2 <= e164MaxDigits
	}
	if digits < nationalMinDigits || digits > nationalMaxDigits || seps == 0 || ng < 2 {
		return false
	}
	g := groups[:ng]
	if ng >= 3 && (g[0] == 4 && g[1] == 2 && g[2] == 2 || g[0] == 2 && g[1] == 2 && g[2] == 4) {
		return false // a date: 2026-11-25, 25.11.2026
	}
	if allDots && ng == 4 && slices.Max(g) <= 3 {
		return false // a dotted quad, left to the IPv4 check
	}
	nanp := slices.Equal(g, []int{3, 3, 4}) ||
		slices.Equal(g, []int{1, 3, 3, 4}) && strings.TrimLeft(run, "(")[0] == '1'
	if nanp {
		return true
	}
	if strings.TrimLeft(run, "(")[0] != '0' {
		return false
	}
	for _, n := range g {
		if n < 2 {
			return false
		}
	}
	return true
}

// hasIPv4 reports whether s contains a dotted-quad host address.
func hasIPv4(s string) bool {
	for i := 0; i < len(s); {
		if !isDigitByte(s[i]) && s[i] != '.' {
			i++
			continue
		}
		j := i
		for j < len(s) && (isDigitByte(s[j]) || s[j] == '.') {
			j++
		}
		if isIPRun(s, i, j, false) {
			return true
		}
		i = j
	}
	return false
}

// gluedToWord reports whether the run s[i:j] touches a letter, or is
// followed by "-" and a letter as a pre-release version is (1.2.3.4-beta).
func gluedToWord(s string, i, j int) bool {
	if i > 0 && inClass(s[i-1], clLetter) || j < len(s) && inClass(s[j], clLetter) {
		return true
	}
	return j+1 < len(s) && s[j] == '-' && inClass(s[j+1], clLetter)
}

// hasIPv6 reports whether s contains an IPv6 host address.
func hasIPv6(s string) bool {
	for i := 0; i < len(s); {
		if !inClass(s[i], clIPRun) {
			i++
			continue
		}
		j := i
		colons := 0
		for j < len(s) && inClass(s[j], clIPRun) {
			if s[j] == ':' {
				colons++
			}
			j++
		}
		if colons >= 2 {
			// A word glued to the front ("ip:2001:db8::1") is cut off at
			// the colon after its last non-hex letter.
			a := i
			for k := j - 1; k >= i; k-- {
				if inClass(s[k], clLetter) && !inClass(s[k], clHex) {
					if k+1 < j && s[k+1] == ':' {
						a = k + 2
					} else {
						a = j
					}
					break
				}
			}
			if a < j && isIPRun(s, a, j, true) {
				return true
			}
		}
		i = j
	}
	return false
}

// isIPRun reports whether s[i:j], trimmed of dots, is a host address not
// glued to letters and not written as an allowed network ("/24" after it).
func isIPRun(s string, i, j int, v6 bool) bool {
	a, b := i, j
	for a < b && s[a] == '.' {
		a++
	}
	for b > a && s[b-1] == '.' {
		b--
	}
	if a == b || !v6 && gluedToWord(s, i, j) {
		return false
	}
	addr, err := netip.ParseAddr(s[a:b])
	if err != nil || addr.Is4() == v6 || addr.IsUnspecified() {
		return false
	}
	if b == j && j+1 < len(s) && s[j] == '/' && isDigitByte(s[j+1]) {
		k := j + 1
		for k < len(s) && isDigitByte(s[k]) {
			k++
		}
		if p, err := netip.ParsePrefix(s[a:k]); err == nil && allowedNetwork(p) {
			return false
		}
	}
	return true
}
