package pii

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sessionmon/sessionmon/internal/cache"
	"github.com/sessionmon/sessionmon/schemas"
)

// Kind names a kind of raw personal data or secret that Check detects.
type Kind string

// Kinds of findings, in the order Check reports them for one field.
const (
	KindEmail       Kind = "email"
	KindPhone       Kind = "phone"
	KindIPAddress   Kind = "ip_address"
	KindJWT         Kind = "jwt"
	KindBearerToken Kind = "bearer_token"
	KindAPIKey      Kind = "api_key"
	KindCredential  Kind = "credential"
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
	Field string `json:"field"`
	Kind  Kind   `json:"kind"`
}

// String returns "field: kind".
func (f Finding) String() string { return f.Field + ": " + string(f.Kind) }

// FoundError rejects an event because of its findings. Its message lists field
// paths and kinds, never values, so it is safe to log and to keep with a
// dead letter.
type FoundError struct {
	Findings []Finding
}

// Error returns "personal data in event: field: kind; field: kind".
func (e *FoundError) Error() string {
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

// piiSet is a set of Kinds, one bit each in the order of piiKinds.
type piiSet uint8

const (
	piiEmail piiSet = 1 << iota
	piiPhone
	piiIP
	piiJWT
	piiBearer
	piiAPIKey
	piiCredential
)

var piiKinds = [...]Kind{KindEmail, KindPhone, KindIPAddress, KindJWT, KindBearerToken, KindAPIKey, KindCredential}

// Check returns the fields of e that look like they carry raw personal
// data or secrets, in a stable order, or nil for a clean event. It does not
// modify e and is safe for concurrent use.
//
// This is "minimization at the door": an event that carries such data is
// neither stored nor judged by the detectors. Check runs on every event, so
// it reads each string once with a byte-class table and runs a detector
// only when that pass saw what the detector needs (a run of digits long
// enough for a phone number, a dotted quad's dots, a scheme name before a
// space); it uses no regular expressions and does not allocate for a clean
// ASCII event.
//
// Fields checked: every string of the event except the enumerations
// (type, token.kind, cookie.same_site, client.country): id, app, subject,
// session, previous_session, reason, client.device, client.ip_hash,
// client.city, client.user_agent, token.id, token.family, token.parent,
// token.kid, token.alg, every token.claims name, auth.method, cookie.name,
// action.name, key.kid, every attrs key and value; and client.ip_prefix by
// the rule of schemas.Validate (below). In client.user_agent a dotted quad
// right after "/" is a product version ("Chrome/120.0.0.0"), not an
// address.
//
// Text is scanned as it is and, when it holds encodings or look-alike
// characters, once more decoded: percent-encoding (%40, %2540), HTML
// character references (&#64; &commat;), backslash escapes (\u0040),
// fullwidth and small forms (＠ ﹫ ．) and invisible characters.
//
// What is flagged:
//
//   - email: local@domain.tld, where the top-level domain has two or more
//     letters, is internationalized or punycode (xn--); the local part may
//     be quoted ("john doe"@example.com) and local part and domain may be
//     non-ASCII. "user@localhost" and "@handle" are not flagged.
//   - phone: E.164-like numbers, "+" then 8 to 15 digits with optional
//     separators (space - . ( ) /); national numbers with separators, 9 to
//     13 digits in groups of two or more, that start with a trunk prefix 0
//     ("030 1234567", "06 12 34 56 78", "(0151) 123-4567") or have the North
//     American shape ("(555) 123-4567", "1-555-123-4567"); national numbers
//     without separators, 10 to 12 digits after a trunk prefix 0
//     ("0301234567"); numbers with the international prefix 00 instead of
//     "+" ("004915112345678", "0049 30 1234567"), 9 to 15 digits after the
//     00; and 7 to 15 digits after a label ("tel:5551234567", "phone
//     555 123 4567") or in an attrs value whose key names a phone ("phone",
//     "mobile_number"). Any other bare run of digits is not flagged: it is
//     indistinguishable from a numeric id or an epoch timestamp. Digits
//     touching letters (as inside base64), dates (2026-11-25, 25.11.2026)
//     and times are not flagged.
//   - ip_address: an IPv4 dotted quad (octets may have leading zeros:
//     203.000.113.077) or an IPv6 literal, not touching letters ("v1.2.3.4"
//     is a version, "1.2.3.4" is an address), except the unspecified
//     addresses 0.0.0.0 and ::. "1.2.3.4" is flagged even when it is meant
//     as a version: it is a valid address literal. Five-part versions
//     (1.2.3.4.5) and pre-releases (1.2.3.4-beta) are not flagged. An
//     address written as a network of the allowed width with zero host
//     bits (203.0.113.0/24, 2001:db8:1::/48) is a network, not a host, and
//     is not flagged. Also four octets joined by "-" or "_" as host names
//     carry them (ip-203-0-113-77), with five digits or more; and an IPv4
//     address written as one integer (3405803853) after a label
//     ("ip=3405803853"), as a URL host ("http://3405803853/") or in an
//     attrs value whose key ends in an address word ("client_ip",
//     "remote_addr").
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
//   - credential: another HTTP authentication scheme and its credentials:
//     "Basic" and base64 of user:password; "Token", "ApiKey", "Negotiate",
//     "NTLM", "DPoP" and an opaque token as long as a bearer token's;
//     "Digest", "AWS4-HMAC-SHA256", "OAuth", "HOBA", "SCRAM-SHA-256" and
//     the like followed by an auth-param (name=value); and the header names
//     "Authorization:", "Proxy-Authorization:" and "X-Api-Key:" followed by
//     a value.
//
// SDK pseudonyms ("k1:" and 22 base64url characters), UUIDs, ULIDs, RFC
// 3339 timestamps, claim names, key ids like "2024-01-rsa", action names
// like "transfer.create" and browser User-Agents never match.
//
// client.ip_prefix: schemas.Validate requires a network of /24 or wider
// (IPv4) or /48 or wider (IPv6) with zero host bits. Check applies the
// same rule so that it is consistent when called alone: a bare address, a
// narrower network or one with host bits set is flagged as ip_address. A
// value that is not an address at all is a schema error, which Validate
// reports; Check scans it like any other text.
func Check(e *schemas.Event) []Finding {
	if e == nil {
		return nil
	}
	var out []Finding
	out = appendPII(out, "id", e.ID)
	out = appendPII(out, "app", e.App)
	out = appendPII(out, "subject", e.Subject)
	out = appendPII(out, "session", e.Session)
	out = appendPII(out, "previous_session", e.PreviousSession)
	out = appendPII(out, "reason", e.Reason)
	if c := e.Client; c != nil {
		out = appendPII(out, "client.device", c.Device)
		out = appendPIISet(out, "client.ip_prefix", scanIPPrefix(c.IPPrefix))
		out = appendPII(out, "client.ip_hash", c.IPHash)
		out = appendPII(out, "client.city", c.City)
		if c.UserAgent != "" {
			out = appendPIISet(out, "client.user_agent", scanUserAgent(c.UserAgent))
		}
	}
	if t := e.Token; t != nil {
		out = appendPII(out, "token.id", t.ID)
		out = appendPII(out, "token.family", t.Family)
		out = appendPII(out, "token.parent", t.Parent)
		out = appendPII(out, "token.kid", t.KID)
		out = appendPII(out, "token.alg", t.Alg)
		for i, c := range t.Claims {
			if set := scanPII(c); set != 0 {
				out = appendPIISet(out, "token.claims["+strconv.Itoa(i)+"]", set)
			}
		}
	}
	if a := e.Auth; a != nil {
		out = appendPII(out, "auth.method", a.Method)
	}
	if c := e.Cookie; c != nil {
		out = appendPII(out, "cookie.name", c.Name)
	}
	if a := e.Action; a != nil {
		out = appendPII(out, "action.name", a.Name)
	}
	if k := e.Key; k != nil {
		out = appendPII(out, "key.kid", k.KID)
	}
	if attrsDirty(e.Attrs) {
		out = appendAttrPII(out, e.Attrs)
	}
	return out
}

// userAgentScans caches scanUserAgent's results: apps send few distinct
// User-Agent strings, and each is long to scan.
var userAgentScans = cache.New[string, piiSet](4096)

// maxCachedUserAgent is the longest User-Agent whose scan is cached.
const maxCachedUserAgent = 512

// scanUserAgent is scanText of a User-Agent, cached.
func scanUserAgent(s string) piiSet {
	if len(s) > maxCachedUserAgent {
		return scanText(s, modeUserAgent)
	}
	if set, ok := userAgentScans.Get(s); ok {
		return set
	}
	set := scanText(s, modeUserAgent)
	userAgentScans.Put(s, set)
	return set
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
		if scanPII(k) != 0 || scanKeyed(k, v, modeText) != 0 {
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
		out = appendPIISet(out, "attrs."+k, scanKeyed(k, m[k], modeText))
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
// a placeholder never equals a key that exists, so Check, Redact and
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
