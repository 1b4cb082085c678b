package pii

import (
	"strings"
)

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
	clEscape                      // & and \ (an HTML entity or an escape may follow)
	clHigh                        // bytes of non-ASCII characters
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
	t['&'] |= clEscape
	t['\\'] |= clEscape
	for c := 0x80; c < 256; c++ {
		// Internationalized addresses (RFC 6531) have non-ASCII local
		// parts and domains.
		t[c] |= clHigh | clLocal | clDomain
	}
	return t
}()

func inClass(c byte, class uint16) bool { return byteClass[c]&class != 0 }

func isDigitByte(c byte) bool { return c >= '0' && c <= '9' }

// scanMode selects the rules of a field.
type scanMode uint8

const (
	// modeText: free text.
	modeText scanMode = iota
	// modeUserAgent: a User-Agent header, whose product versions
	// ("Chrome/120.0.0.0") are not addresses.
	modeUserAgent
)

// scanPII returns the kinds of personal data s looks like it carries.
func scanPII(s string) piiSet { return scanText(s, modeText) }

// scanText scans s as it is and, when s holds encoded or look-alike
// characters (percent-encoding, HTML entities, escapes, fullwidth forms,
// invisible characters), once more decoded, so that "bob%40example.com",
// "bob&#64;example.com" and "bob＠example.com" are found like
// "bob@example.com".
func scanText(s string, mode scanMode) piiSet {
	found, cls := scanASCII(s, mode)
	if cls&(clPercent|clEscape|clHigh) != 0 {
		if n, ok := normalize(s); ok {
			more, _ := scanASCII(n, mode)
			found |= more
		}
	}
	return found
}

// scanASCII runs the detectors on s as it is, and returns the byte classes
// s has.
//
// It reads s once (scanPass), and runs a detector only when that pass saw
// what the detector cannot match without: the gates below are necessary
// conditions of each detector, so they change no verdict, only how often
// a detector reads s again. TestScanAgreesWithReference holds them to the
// ungated detectors.
func scanASCII(s string, mode scanMode) (piiSet, uint16) {
	p := scanPass(s, mode)
	found, cls := p.found, p.cls
	if cls&(clAt|clPercent) != 0 && hasEmail(s) {
		found |= piiEmail
	}
	if p.runs&runPhone != 0 && hasPhone(s) {
		found |= piiPhone
	}
	if p.runs&runIPv4 != 0 && hasIPv4(s, mode) || p.runs&runIPv6 != 0 && hasIPv6(s) {
		found |= piiIP
	}
	if p.runs&runSeparated != 0 && hasSeparatedIPv4(s) {
		found |= piiIP
	}
	if p.runs&runPhone != 0 && cls&clLetter != 0 {
		found |= labelledNumber(s)
	}
	if p.authWord && len(s) >= credentialMinLen && cls&clLetter != 0 && cls&clPhoneSep != 0 {
		found |= hasCredential(s)
	}
	return found, cls
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
