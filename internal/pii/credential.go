package pii

import (
	"encoding/base64"
	"strings"
)

// credentialMinLen is the shortest text that can hold a scheme and a
// credential ("Basic dTpw" is u:p).
const credentialMinLen = 10

// authScheme is an HTTP authentication scheme and the shape of the
// credentials that follow it.
type authScheme struct {
	name  string
	shape credentialShape
}

type credentialShape uint8

const (
	// shapeBasic: base64 of "user:password".
	shapeBasic credentialShape = iota
	// shapeOpaque: a token68 as long as a bearer token.
	shapeOpaque
	// shapeParams: auth-params (username="...", Credential=...).
	shapeParams
)

// authSchemes are the registered HTTP authentication schemes (RFC 9110
// and the IANA registry) and common vendor ones; Bearer has its own rule
// (isBearer).
var authSchemes = []authScheme{
	{"basic", shapeBasic},
	{"token", shapeOpaque},
	{"apikey", shapeOpaque},
	{"api-key", shapeOpaque},
	{"negotiate", shapeOpaque},
	{"ntlm", shapeOpaque},
	{"dpop", shapeOpaque},
	{"gnap", shapeOpaque},
	{"privatetoken", shapeParams},
	{"digest", shapeParams},
	{"hoba", shapeParams},
	{"mutual", shapeParams},
	{"vapid", shapeParams},
	{"scram-sha-1", shapeParams},
	{"scram-sha-256", shapeParams},
	{"aws4-hmac-sha256", shapeParams},
	{"oauth", shapeParams},
	{"concealed", shapeParams},
}

// headerNames are header names whose value is a credential.
var headerNames = []string{"authorization:", "proxy-authorization:", "x-api-key:"}

// hasCredential reports whether s holds credentials after an HTTP
// authentication scheme ("Basic dXNlcjpwYXNz", "Digest username=...",
// "Token 0123456789abcdef0123"), or a header that carries credentials
// ("Authorization: ...").
func hasCredential(s string) piiSet {
	for i := 0; i < len(s); i++ {
		if i > 0 && (inClass(s[i-1], clDigit|clLetter) || s[i-1] == '-' || s[i-1] == '_') || !inClass(s[i], clLetter) {
			continue
		}
		// A word of letters, digits and "-", then a space or a colon.
		j := i
		for j < len(s) && (inClass(s[j], clDigit|clLetter) || s[j] == '-') {
			j++
		}
		if j+1 >= len(s) {
			break
		}
		word := s[i:j]
		switch s[j] {
		case ':':
			for _, h := range headerNames {
				if len(h) == len(word)+1 && strings.EqualFold(h[:len(word)], word) && strings.TrimSpace(s[j+1:]) != "" {
					return piiCredential
				}
			}
		case ' ', '\t':
			for _, a := range authSchemes {
				if len(a.name) != len(word) || !strings.EqualFold(a.name, word) {
					continue
				}
				k := j
				for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
					k++
				}
				if isCredential(s[k:], a.shape) {
					return piiCredential
				}
			}
		}
		i = j
	}
	return 0
}

// isCredential reports whether w starts with credentials of shape.
func isCredential(w string, shape credentialShape) bool {
	n, digit := 0, false
	for n < len(w) && (inClass(w[n], clToken68) || w[n] == '=') {
		digit = digit || isDigitByte(w[n])
		n++
	}
	switch shape {
	case shapeBasic:
		return isBasicCredential(w[:n])
	case shapeOpaque:
		return n >= bearerLongLen || n >= bearerMinLen && digit
	default:
		// An auth-param: a name, "=", a value.
		eq := strings.IndexByte(w, '=')
		if eq <= 0 || eq+1 >= len(w) {
			return false
		}
		for k := range eq {
			if !inClass(w[k], clDigit|clLetter) && w[k] != '_' && w[k] != '-' {
				return false
			}
		}
		return true
	}
}

// isBasicCredential reports whether t is base64 of printable text with a
// colon, as Basic credentials are.
func isBasicCredential(t string) bool {
	t = strings.TrimRight(t, "=")
	if len(t) < 4 {
		return false
	}
	b, err := base64.RawStdEncoding.DecodeString(t)
	if err != nil {
		b, err = base64.RawURLEncoding.DecodeString(t)
	}
	if err != nil || len(b) < 3 {
		return false
	}
	colon := false
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
		colon = colon || c == ':'
	}
	return colon
}
