package pii

import (
	"slices"
	"strings"
)

// hasEmail reports whether s contains local@domain.tld, with the @ possibly
// URL-encoded as %40. The local part may be quoted ("john doe"@example.com)
// and the local part and domain may be internationalized.
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
		if i == 0 || !isDomain(s[i+at:]) {
			continue
		}
		if inClass(s[i-1], clLocal) && s[i-1] != '.' {
			return true
		}
		if s[i-1] == '"' && strings.LastIndexByte(s[:i-1], '"') >= 0 && strings.LastIndexByte(s[:i-1], '"') < i-2 {
			return true // a quoted local part
		}
	}
	return false
}

// isDomain reports whether d starts with a domain name of two or more labels
// whose last label is two or more letters, an internationalized label or
// its punycode form (xn--).
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
	return isTLD(d[dot+1:])
}

// isTLD reports whether s, the last label of a domain with whatever text is
// glued after it, can be a top-level domain: two or more ASCII letters or
// non-ASCII characters, or a punycode label.
func isTLD(s string) bool {
	if strings.HasPrefix(s, "xn--") || strings.HasPrefix(s, "XN--") {
		return len(s) > 4
	}
	n := 0
	for n < len(s) && (inClass(s[n], clLetter) || s[n] >= 0x80) {
		n++
	}
	if n < 2 {
		return false
	}
	// Letters then text glued to the address ("bob@example.com是") or
	// an internationalized label: what follows must not make it a
	// hostname label with digits or hyphens.
	for _, c := range []byte(s[n:]) {
		if c < 0x80 {
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
	bareMinDigits     = 10 // a national number without separators
	bareMaxDigits     = 12
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
	if ng == 1 && run[0] == '0' && run[1] != '0' {
		// A national number written without separators, trunk
		// prefix first: 0301234567, 07700900123.
		return digits >= bareMinDigits && digits <= bareMaxDigits
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
