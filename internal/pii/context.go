package pii

import (
	"strings"
)

// A bare number is indistinguishable from an id or a timestamp; what says
// it is an address or a phone number is a label before it ("ip=3405803853",
// "tel: 5551234567") or the name of the field that holds it ("client_ip",
// "phone").

// labelledMinDigits is the fewest digits a labelled number has: seven for
// a local phone number, eight for an IPv4 address as an integer.
const labelledMinDigits = 7

// Integer forms of IPv4 addresses: from 1.0.0.0 (below it, the number is
// too small to tell from a count) to 255.255.255.255.
const (
	minIntIPv4 = 1 << 24
	maxIntIPv4 = 1<<32 - 1
)

// Phone number digits without a country code: local numbers have 7 or more.
const (
	phoneMinDigits = 7
	phoneMaxDigits = e164MaxDigits
)

// keyKind is what a field's name says its value is.
type keyKind uint8

const (
	keyPlain keyKind = iota
	keyIP
	keyPhone
)

// Words of a field name that say what its value is. An IP word counts as
// the last word only ("client_ip", "remote_addr"; not "ip_count"); a phone
// word anywhere ("phone_number", "mobile").
var (
	ipKeyWords    = []string{"ip", "ipv4", "ipaddr", "ipaddress", "addr", "remoteaddr", "realip", "xff", "forwarded", "for"}
	phoneKeyWords = []string{"phone", "telephone", "tel", "mobile", "msisdn", "fax", "cellphone", "whatsapp"}
)

// kindOfKey classifies a field name: its words are split at characters
// other than letters and digits, and at lower-to-upper case changes.
func kindOfKey(key string) keyKind {
	if key == "" {
		return keyPlain
	}
	var words [16]string
	n := 0
	start := -1
	flush := func(end int) {
		if start >= 0 && n < len(words) {
			words[n] = strings.ToLower(key[start:end])
			n++
		}
		start = -1
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case inClass(c, clDigit|clLetter):
			if start >= 0 && c >= 'A' && c <= 'Z' && key[i-1] >= 'a' && key[i-1] <= 'z' {
				flush(i)
			}
			if start < 0 {
				start = i
			}
		default:
			flush(i)
		}
	}
	flush(len(key))
	for _, w := range words[:n] {
		for _, p := range phoneKeyWords {
			if w == p {
				return keyPhone
			}
		}
	}
	if n > 0 {
		last := words[n-1]
		for _, p := range ipKeyWords {
			if last == p {
				return keyIP
			}
		}
	}
	return keyPlain
}

// scanKeyed scans s, the value of a field named key.
func scanKeyed(key, s string, mode scanMode) piiSet {
	found := scanText(s, mode)
	// The value's shape first: it rules out nearly every value.
	t := strings.TrimSpace(s)
	if isIntIPv4(t) && kindOfKey(key) == keyIP {
		found |= piiIP
	}
	if isPhoneDigits(t) && kindOfKey(key) == keyPhone {
		found |= piiPhone
	}
	return found
}

// isIntIPv4 reports whether s is an IPv4 address written as one decimal
// integer (3405803853 is 203.0.113.77).
func isIntIPv4(s string) bool {
	if len(s) < 8 || len(s) > 10 {
		return false
	}
	n := 0
	for i := range len(s) {
		if !isDigitByte(s[i]) {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n >= minIntIPv4 && n <= maxIntIPv4
}

// isPhoneDigits reports whether s is a phone number of any shape: 7 to 15
// digits with only separators and a leading + besides.
func isPhoneDigits(s string) bool {
	digits := 0
	for i := range len(s) {
		switch c := s[i]; {
		case isDigitByte(c):
			digits++
		case c == '+' && i == 0, inClass(c, clPhoneSep):
		default:
			return false
		}
	}
	return digits >= phoneMinDigits && digits <= phoneMaxDigits
}

// Labels that say a number in text is an address or a phone number.
var (
	ipLabels    = []string{"ip", "ipv4", "addr", "remote_addr", "client_ip", "x-forwarded-for", "x-real-ip"}
	phoneLabels = []string{"tel", "phone", "mobile", "msisdn", "fax", "sms"}
)

// labelledNumber reports a number in s after an IP or phone label
// ("ip=3405803853", "ip: 3405803853", "tel:5551234567", "phone 555 123
// 4567"), or an integer address as a URL host ("http://3405803853/").
func labelledNumber(s string) piiSet {
	var found piiSet
	for i := 0; i < len(s); i++ {
		if i > 0 && inClass(s[i-1], clDigit|clLetter) {
			continue // not the start of a word
		}
		if s[i] == '/' {
			if i+2 < len(s) && s[i+1] == '/' && isDigitByte(s[i+2]) {
				if j := digitRunEnd(s, i+2); (j == len(s) || s[j] == '/' || s[j] == ':') && isIntIPv4(s[i+2:j]) {
					found |= piiIP
				}
			}
			continue
		}
		if !inClass(s[i], clLetter) {
			continue
		}
		// A word (letters, digits, _ and -) followed by a separator and
		// a digit or "+".
		j := i
		for j < len(s) && (inClass(s[j], clDigit|clLetter) || s[j] == '_' || s[j] == '-') {
			j++
		}
		if j == len(s) || s[j] != ' ' && s[j] != ':' && s[j] != '=' && s[j] != '\t' {
			i = j
			continue
		}
		word := s[i:j]
		if v, ok := afterLabel(s, i, word); ok {
			if oneOf(word, ipLabels) {
				if end := digitRunEnd(v, 0); isIntIPv4(v[:end]) && endsNumber(v, end) {
					found |= piiIP
				}
			}
			if oneOf(word, phoneLabels) {
				k := 0
				for k < len(v) && (isDigitByte(v[k]) || inClass(v[k], clPhoneSep) || v[k] == '+' && k == 0) {
					k++
				}
				if isPhoneDigits(strings.TrimRight(v[:k], " .-/(")) && endsNumber(v, k) {
					found |= piiPhone
				}
			}
		}
		i = j
	}
	return found
}

// oneOf reports whether w is one of words, in any case.
func oneOf(w string, words []string) bool {
	for _, x := range words {
		if len(x) == len(w) && strings.EqualFold(x, w) {
			return true
		}
	}
	return false
}

// afterLabel reports whether s[i:] starts with label (any case) as a whole
// word followed by ":", "=" or spaces, and returns the text after them,
// which starts with a digit or "+".
func afterLabel(s string, i int, label string) (string, bool) {
	if len(s)-i < len(label)+2 || !strings.EqualFold(s[i:i+len(label)], label) {
		return "", false
	}
	j := i + len(label)
	if inClass(s[j], clDigit|clLetter) {
		return "", false
	}
	seps := 0
	for j < len(s) && (s[j] == ' ' || s[j] == ':' || s[j] == '=' || s[j] == '\t') && seps < 3 {
		j++
		seps++
	}
	if seps == 0 || j == len(s) || !(isDigitByte(s[j]) || s[j] == '+') {
		return "", false
	}
	return s[j:], true
}

func digitRunEnd(s string, i int) int {
	for i < len(s) && isDigitByte(s[i]) {
		i++
	}
	return i
}

// endsNumber reports whether the number ending at v[j] is not glued to a
// word or continued as a decimal.
func endsNumber(v string, j int) bool {
	return j == len(v) || !inClass(v[j], clLetter) && v[j] != '_' &&
		!(v[j] == '.' && j+1 < len(v) && isDigitByte(v[j+1]))
}
