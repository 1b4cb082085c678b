package pii

import "strings"

// The single pass of scanASCII. Besides the byte classes it collects, it
// runs the word-start token checks (scanToken) and finds what the other
// detectors need before they can match anything:
//
//   - runPhone: a run of digits, "+" and phone separators holding 7 or
//     more digits (hasPhone needs 8, labelledNumber 7);
//   - runIPv4: a run of digits and dots holding 3 or more dots (in a
//     User-Agent, not right after "/");
//   - runIPv6: a run of letters, digits, ":" and "." holding 2 or more
//     colons;
//   - runSeparated: a run of digits, "-" and "_" holding 3 or more
//     separators;
//   - authWord: an HTTP authentication scheme or a credential header name
//     (hasCredential) followed by a space, a tab or a colon.
//
// Each run is counted in a 12-bit lane of one uint64, so that one add, one
// and and one or per byte keep all four (see passEntry). A lane holds
// laneBias plus its count, so that it reaches its flag bit (the top bit of
// the lane) exactly when the count reaches the lane's threshold.

// Lanes: the flag bit of each.
const (
	runPhone     uint64 = 1 << (0*laneBits + laneBits - 1)
	runIPv4      uint64 = 1 << (1*laneBits + laneBits - 1)
	runIPv6      uint64 = 1 << (2*laneBits + laneBits - 1)
	runSeparated uint64 = 1 << (3*laneBits + laneBits - 1)
	runAll              = runPhone | runIPv4 | runIPv6 | runSeparated

	laneBits = 12
	// maxLaneLen: from this length on a lane could count past its top
	// and carry into the next, so scanPass reports every run as seen.
	maxLaneLen = 1 << (laneBits - 1)
)

// laneThresholds are the counts that set each lane's flag, in lane order.
var laneThresholds = [4]uint64{labelledMinDigits, 3, 2, 3}

// laneBias is the value of every lane outside a run.
var laneBias = func() (b uint64) {
	for k, t := range laneThresholds {
		b |= (1<<(laneBits-1) - t) << (k * laneBits)
	}
	return b
}()

// Flags of passEntry.
const (
	// passWord: a character of a word as hasCredential reads one
	// (letters, digits and "-").
	passWord uint8 = 1 << iota
	// passAuthSep: what may follow a scheme or header name (space, tab,
	// colon).
	passAuthSep
)

// passEntry is what scanPass does for one byte: the lanes whose run the
// byte continues keep their value plus inc (keep is all ones there), the
// others take reset (laneBias, or 0 where the byte rules out a match
// until the run ends).
type passEntry struct {
	inc, keep, reset uint64
	cls              uint16
	flags            uint8
}

// passTables holds the entries of each byte, for each scanMode.
var passTables = func() (t [2][256]passEntry) {
	lane := func(k int) uint64 { return uint64(1<<laneBits-1) << (k * laneBits) }
	for mode := range t {
		for c := range 256 {
			cls := byteClass[c]
			e := &t[mode][c]
			e.cls = cls
			digit := cls&clDigit != 0
			member := [4]bool{
				digit || cls&(clPlus|clPhoneSep) != 0,
				digit || c == '.',
				cls&clIPRun != 0,
				digit || c == '-' || c == '_',
			}
			count := [4]bool{digit, c == '.', c == ':', c == '-' || c == '_'}
			for k := range member {
				switch {
				case member[k]:
					e.keep |= lane(k)
					if count[k] {
						e.inc |= 1 << (k * laneBits)
					}
				case k == 1 && scanMode(mode) == modeUserAgent && c == '/':
					// A product version ("Chrome/120.0.0.0"),
					// which hasIPv4 skips: reset to 0, which no
					// run reaches the flag from.
				default:
					e.reset |= laneBias & lane(k)
				}
			}
			if cls&(clDigit|clLetter) != 0 || c == '-' {
				e.flags |= passWord
			}
			if c == ' ' || c == '\t' || c == ':' {
				e.flags |= passAuthSep
			}
		}
	}
	return t
}()

// passResult is what scanPass found.
type passResult struct {
	found    piiSet // from scanToken
	cls      uint16 // the byte classes of s
	runs     uint64 // run flags (runPhone ...)
	authWord bool
}

// scanPass reads s once; see the comment at the top of this file.
func scanPass(s string, mode scanMode) passResult {
	t := &passTables[mode]
	var r passResult
	run, hits := laneBias, uint64(0)
	boundary := true
	word := 0 // start of the current word
	for i := 0; i < len(s); i++ {
		e := &t[s[i]]
		r.cls |= e.cls
		run = (run+e.inc)&e.keep | e.reset
		hits |= run
		if boundary && e.cls&clStart != 0 {
			r.found |= scanToken(s, i)
		}
		boundary = e.cls&(clDigit|clLetter) == 0
		if e.flags&passAuthSep != 0 && !r.authWord && isAuthWord(s[word:i]) {
			r.authWord = true
		}
		if e.flags&passWord == 0 {
			word = i + 1
		}
	}
	r.runs = hits & runAll
	if len(s) >= maxLaneLen {
		r.runs = runAll
	}
	return r
}

// authWordLens has bit n set when a scheme or header name is n long.
var authWordLens = func() (m uint32) {
	for _, a := range authSchemes {
		m |= 1 << len(a.name)
	}
	for _, h := range headerNames {
		m |= 1 << (len(h) - 1)
	}
	return m
}()

// isAuthWord reports whether w is an HTTP authentication scheme
// (authSchemes) or a credential header name (headerNames), in any case.
func isAuthWord(w string) bool {
	if len(w) >= 32 || authWordLens&(1<<len(w)) == 0 {
		return false
	}
	for _, a := range authSchemes {
		if len(a.name) == len(w) && strings.EqualFold(a.name, w) {
			return true
		}
	}
	for _, h := range headerNames {
		if len(h) == len(w)+1 && strings.EqualFold(h[:len(w)], w) {
			return true
		}
	}
	return false
}
