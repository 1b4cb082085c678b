package pii

import (
	"html"
	"strings"
	"unicode/utf8"
)

// maxDecodeRounds bounds how many layers of encoding normalize peels
// ("%2540" is "@" encoded twice).
const maxDecodeRounds = 3

// normalize returns s with the encodings and look-alikes that hide an
// address decoded: percent-encoding (%40), HTML character references
// (&#64; &#x40; &commat;), backslash escapes (\u0040, \x40), fullwidth and
// small forms of ASCII characters (＠ ﹫ ．), ideographic full stops, and
// invisible characters (zero-width spaces and joiners, soft hyphens, byte
// order marks), which are dropped. It reports false when nothing changed.
func normalize(s string) (string, bool) {
	out := s
	for range maxDecodeRounds {
		next := foldRunes(unescapeBackslash(html.UnescapeString(percentDecode(out))))
		if next == out {
			break
		}
		out = next
	}
	return out, out != s
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// percentDecode decodes every valid %XX and keeps anything else as it is.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapeBackslash decodes \uXXXX and \xXX escapes of ASCII characters.
func unescapeBackslash(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			n := 0
			switch s[i+1] {
			case 'u', 'U':
				n = 4
			case 'x', 'X':
				n = 2
			}
			if n > 0 && i+2+n <= len(s) {
				v, ok := 0, true
				for _, c := range []byte(s[i+2 : i+2+n]) {
					d, okc := unhex(c)
					ok = ok && okc
					v = v<<4 | int(d)
				}
				if ok && v < utf8.RuneSelf {
					b.WriteByte(byte(v))
					i += 1 + n
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// foldRunes maps fullwidth and small forms to ASCII and drops invisible
// characters.
func foldRunes(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
			return r - 0xFEE0
		case r == 0xFE6B: // small commercial at
			return '@'
		case r == 0x3002 || r == 0xFF61 || r == 0xFE52 || r == 0x2024: // full stops
			return '.'
		case r == 0x3000: // ideographic space
			return ' '
		case r == 0x00AD || r >= 0x200B && r <= 0x200F || r >= 0x2060 && r <= 0x2064 || r == 0xFEFF || r == 0x180E:
			return -1 // invisible
		}
		return r
	}, s)
}
