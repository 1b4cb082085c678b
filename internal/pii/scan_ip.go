package pii

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// hasIPv4 reports whether s contains a dotted-quad host address.
// Octets may have leading zeros (203.000.113.077). In a User-Agent
// (modeUserAgent) a quad right after "/" is a product version.
func hasIPv4(s string, mode scanMode) bool {
	for i := 0; i < len(s); {
		if !isDigitByte(s[i]) && s[i] != '.' {
			i++
			continue
		}
		j := i
		for j < len(s) && (isDigitByte(s[j]) || s[j] == '.') {
			j++
		}
		if mode == modeUserAgent && i > 0 && s[i-1] == '/' {
			i = j
			continue
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
	var (
		addr netip.Addr
		err  error
	)
	if v6 {
		addr, err = netip.ParseAddr(s[a:b])
	} else {
		// parseLooseIPv4 accepts what netip does and leading zeros, and
		// allocates nothing for text that is not an address.
		addr, err = parseLooseIPv4(s[a:b])
	}
	if err != nil || addr.Is4() == v6 || addr.IsUnspecified() {
		return false
	}
	if b == j && j+1 < len(s) && s[j] == '/' && isDigitByte(s[j+1]) {
		k := j + 1
		for k < len(s) && isDigitByte(s[k]) {
			k++
		}
		if bits, err := strconv.Atoi(s[j+1 : k]); err == nil && k-j <= 4 {
			if p, err := addr.Prefix(bits); err == nil && p.Addr() == addr && allowedNetwork(netip.PrefixFrom(addr, bits)) {
				return false
			}
		}
	}
	return true
}

// errNotIPv4 is parseLooseIPv4's only error.
var errNotIPv4 = errors.New("not an IPv4 address")

// parseLooseIPv4 parses a dotted quad whose octets may have leading zeros
// (1 to 3 digits each, at most 255), which netip refuses but many
// programs print.
func parseLooseIPv4(s string) (netip.Addr, error) {
	var a [4]byte
	part := 0
	for p := range strings.SplitSeq(s, ".") {
		if part == 4 || len(p) == 0 || len(p) > 3 {
			return netip.Addr{}, errNotIPv4
		}
		n := 0
		for i := range len(p) {
			if !isDigitByte(p[i]) {
				return netip.Addr{}, errNotIPv4
			}
			n = n*10 + int(p[i]-'0')
		}
		if n > 255 {
			return netip.Addr{}, errNotIPv4
		}
		a[part] = byte(n)
		part++
	}
	if part != 4 {
		return netip.Addr{}, errNotIPv4
	}
	return netip.AddrFrom4(a), nil
}

// hasSeparatedIPv4 reports whether s contains an IPv4 address written with
// "-" or "_" between the octets, as host names carry it
// (ip-203-0-113-77, ec2-203-0-113-77.compute-1.amazonaws.com): exactly
// four groups, not more (2026-11-25-10-30 is a time). The four octets
// must have five digits or more between them, so that "1-2-3-4" is not
// taken for an address.
func hasSeparatedIPv4(s string) bool {
	for i := 0; i < len(s); {
		if !isDigitByte(s[i]) {
			i++
			continue
		}
		if k := digitRunEnd(s, i); k+1 >= len(s) || s[k] != '-' && s[k] != '_' || !isDigitByte(s[k+1]) {
			i = k
			continue
		}
		// A run of digit groups joined by one kind of separator.
		var groups [16][2]int // start, end of each group
		n := 0
		sep := byte(0)
		j := i
		for j < len(s) && n < len(groups) {
			k := j
			for k < len(s) && isDigitByte(s[k]) {
				k++
			}
			groups[n] = [2]int{j, k}
			n++
			if k+1 < len(s) && (s[k] == '-' || s[k] == '_') && (sep == 0 || s[k] == sep) && isDigitByte(s[k+1]) {
				sep = s[k]
				j = k + 1
				continue
			}
			j = k
			break
		}
		first := 0
		if start := groups[0][0]; start > 0 && inClass(s[start-1], clLetter) {
			first = 1 // "ec2-203-0-113-77": the 2 belongs to a word
		}
		if n-first == 4 && (groups[0][0] == 0 || first == 1 || s[groups[0][0]-1] != '.') {
			end := groups[n-1][1]
			glued := end < len(s) && (inClass(s[end], clLetter) || s[end] == '.' && end+1 < len(s) && isDigitByte(s[end+1]))
			digits := 0
			ok := !glued
			for g := first; g < n && ok; g++ {
				l := groups[g][1] - groups[g][0]
				digits += l
				ok = l <= 3 && atoiSmall(s[groups[g][0]:groups[g][1]]) <= 255
			}
			if ok && digits >= 5 {
				return true
			}
		}
		i = max(j, i+1)
	}
	return false
}

// atoiSmall converts up to three digits.
func atoiSmall(s string) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
