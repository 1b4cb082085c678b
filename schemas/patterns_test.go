package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// schemaPattern returns the compiled "pattern" found at path (keys of
// nested objects) in event.v1.schema.json.
func schemaPattern(t testing.TB, path ...string) *regexp.Regexp {
	t.Helper()
	var node any
	require.NoError(t, json.Unmarshal(EventSchemaV1, &node))
	for _, k := range append(path, "pattern") {
		m, ok := node.(map[string]any)
		require.True(t, ok, "schema path %v", path)
		node, ok = m[k]
		require.True(t, ok, "schema path %v: no %q", path, k)
	}
	s, ok := node.(string)
	require.True(t, ok)
	// jsonschema/v6 compiles patterns with Go's regexp by default, as here.
	return regexp.MustCompile(s)
}

// patternPair is a JSON Schema pattern and the Go code that must accept
// exactly the same strings, bar the Go-only rules goOnly reports.
type patternPair struct {
	name   string
	path   []string
	goOK   func(s string) bool
	goOnly func(s string) bool // the string is valid syntax Go rejects for a Go-only rule
	inputs func() []string
}

func patternPairs() []patternPair {
	optional := func(p bytePattern) func(string) bool {
		return func(s string) bool { return s == "" || p.MatchString(s) }
	}
	never := func(string) bool { return false }
	return []patternPair{
		{name: "id", path: []string{"properties", "id"}, goOK: idPattern.MatchString, goOnly: never, inputs: classInputs},
		{name: "app", path: []string{"properties", "app"}, goOK: appPattern.MatchString, goOnly: never, inputs: classInputs},
		{name: "pseudonym", path: []string{"$defs", "pseudonym"}, goOK: pseudonymPattern.MatchString, goOnly: never, inputs: classInputs},
		{name: "optionalPseudonym", path: []string{"$defs", "optionalPseudonym"}, goOK: optional(pseudonymPattern), goOnly: never, inputs: classInputs},
		{name: "country", path: []string{"properties", "client", "properties", "country"}, goOK: optional(countryPattern), goOnly: never, inputs: classInputs},
		{name: "claim", path: []string{"properties", "token", "properties", "claims", "items"}, goOK: claimPattern.MatchString, goOnly: never, inputs: classInputs},
		{name: "attrs key", path: []string{"properties", "attrs", "propertyNames"}, goOK: attrKeyPattern.MatchString, goOnly: never, inputs: classInputs},
		{
			name: "time",
			path: []string{"$defs", "time"},
			goOK: func(s string) bool { _, err := ParseTime(s); return err == nil },
			goOnly: func(s string) bool {
				_, err := ParseTime(s)
				return errors.Is(err, errTimeDate)
			},
			inputs: timeInputs,
		},
		{
			name: "ip_prefix",
			path: []string{"properties", "client", "properties", "ip_prefix"},
			goOK: func(s string) bool { return s == "" || checkIPPrefix(s) == "" },
			goOnly: func(s string) bool {
				return strings.Contains(checkIPPrefix(s), "host bits")
			},
			inputs: ipPrefixInputs,
		},
	}
}

// TestPatternsMatchSchema proves each hand-written check of validate.go
// and time.go accepts exactly the strings its pattern in
// event.v1.schema.json matches: the schema is the reference.
func TestPatternsMatchSchema(t *testing.T) {
	t.Parallel()
	for _, pp := range patternPairs() {
		t.Run(pp.name, func(t *testing.T) {
			t.Parallel()
			re := schemaPattern(t, pp.path...)
			inputs := pp.inputs()
			require.NotEmpty(t, inputs)
			var accepted int
			for _, s := range inputs {
				requireSameMatch(t, pp, re, s)
				if re.MatchString(s) {
					accepted++
				}
			}
			// Both sides of the boundary must be exercised.
			require.Positive(t, accepted, "no input matches")
			require.Less(t, accepted, len(inputs), "every input matches")
		})
	}
}

func requireSameMatch(t testing.TB, pp patternPair, re *regexp.Regexp, s string) {
	t.Helper()
	want := re.MatchString(s)
	got := pp.goOK(s)
	if want && !got && pp.goOnly(s) {
		return
	}
	require.Equal(t, want, got, "%s %q: schema pattern %v, Go %v", pp.name, s, want, got)
}

// FuzzPatterns checks the pattern pairs on arbitrary strings.
func FuzzPatterns(f *testing.F) {
	for _, pp := range patternPairs() {
		for _, s := range pp.inputs()[:20] {
			f.Add(s)
		}
	}
	pairs := patternPairs()
	res := make([]*regexp.Regexp, len(pairs))
	for i, pp := range pairs {
		res[i] = schemaPattern(f, pp.path...)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, pp := range pairs {
			requireSameMatch(t, pp, res[i], s)
		}
	})
}

// classInputs probes a ^[class]{min,max}$ pattern: every byte and a few
// non-ASCII runes at the start, middle and end of strings around each
// length boundary any of the patterns has.
func classInputs() []string {
	var out []string
	lengths := []int{0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129}
	fill := []string{"a", "Z", "7", "AB"}
	for _, n := range lengths {
		for _, f := range fill {
			out = append(out, strings.Repeat(f, n)[:n])
		}
	}
	probes := []string{"é", "\u00a0", "\u212a", "ſ", "😀", "\x00", "\xff"}
	for c := range 256 {
		probes = append(probes, string([]byte{byte(c)}))
	}
	for _, n := range []int{1, 2, 8, 64, 128} {
		for _, p := range probes {
			base := strings.Repeat("DE", n)[:n]
			out = append(out,
				p+base[min(len(p), len(base)):],
				base[:n/2]+p+base[min(n, n/2+len(p)):],
				base[:max(0, n-len(p))]+p,
				base+p,
			)
		}
	}
	out = append(out, "DE\n", "\nDE", "abcdefgh\n", "alice@example.com", "a.b", "a/b", "a:b~c-d_e")
	return out
}

// timeInputs mutates valid times at every position: each character
// replaced, deleted and inserted, plus hand-picked edge cases.
func timeInputs() []string {
	seeds := []string{
		"2026-11-25T10:00:00.000Z",
		"2024-02-29T23:59:59.123456789+14:00",
		"0000-01-01T00:00:00.000-00:00",
		"9999-12-31T19:09:59.1234-05:30",
	}
	chars := "0123456789-:T.Z+tz, \n"
	var out []string
	for _, s := range seeds {
		out = append(out, s)
		for i := range len(s) + 1 {
			if i < len(s) {
				out = append(out, s[:i]+s[i+1:])
			}
			for _, c := range chars {
				if i < len(s) {
					out = append(out, s[:i]+string(c)+s[i+1:])
				}
				out = append(out, s[:i]+string(c)+s[i:])
			}
		}
	}
	for _, day := range []string{"28", "29", "30", "31"} {
		for m := 1; m <= 12; m++ {
			for _, y := range []string{"2024", "2026", "1900", "2000"} {
				out = append(out, fmt.Sprintf("%s-%02d-%sT00:00:00.000Z", y, m, day))
			}
		}
	}
	out = append(out,
		"2026-11-25T10:00:00Z", "2026-11-25T10:00:00.12Z", "2026-11-25T10:00:00.1234567890Z",
		"2026-11-25T24:00:00.000Z", "2026-11-25T23:60:00.000Z", "2026-11-25T23:59:60.000Z",
		"2026-11-25T10:00:00.000+23:59", "2026-11-25T10:00:00.000+24:00", "2026-11-25T10:00:00.000+05:60",
		"2026-00-25T10:00:00.000Z", "2026-11-00T10:00:00.000Z", "2026-13-01T10:00:00.000Z",
		"2026-11-25T10:00:00,000Z", "2026-11-25T10:00:00.000z", "+2026-11-25T10:00:00.000Z",
		"2026-11-25T10:00:00.000Z\n", " 2026-11-25T10:00:00.000Z", "",
		"２026-11-25T10:00:00.000Z", "2026-11-25T10:00:00.000+0530", "2026-11-25T10:00:00.000+05",
	)
	return out
}

// ipPrefixInputs mixes hand-picked prefixes with random IPv4 and IPv6
// prefixes, some of them broken on purpose (fixed seed).
func ipPrefixInputs() []string {
	out := []string{
		"", "0.0.0.0/0", "203.0.113.0/24", "203.0.113.7/24", "203.0.113.0/25", "255.255.255.0/24",
		"256.0.0.0/8", "203.0.113/24", "203.0.113.0", "203.0.113.0/", "203.0.113.0/08", "203.0.113.0/+8",
		"01.0.0.0/8", "1.00.0.0/16", "1.2.3.0/024", "1.2.3.0/24 ", " 1.2.3.0/24", "1.2.3.0/24\n",
		"::/0", "::/48", "::1/48", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/48", "2001:db8::/49",
		"2001:DB8::/32", "2001:0db8:0000:0000:0000:0000:0000:0000/32", "2001:db8::1:2:3:4:5/32",
		"1:2:3:4:5:6:7:8/48", "1:2:3:4:5:6:7::/48", "::2:3:4:5:6:7:8/0", "1::3:4:5:6:7:8/16",
		"1:2:3:4:5:6:7:8::/48", "1:2:3:4:5:6:7:8:9/48", "1::2::3/48", ":::/48", ":/48", "1:/48", ":1/48",
		"12345::/16", "g::/16", "2001:db8::%eth0/32", "::ffff:1.2.3.0/120", "::0.0.0.0/48",
		"2001:db8::0.0.0.0/48", "::ffff:0:0/96", "fe80::/10", "fe80::/010", "2001:db8::/048",
		"[2001:db8::]/32", "2001:db8::/3a", "2001:db8::/-1", "1.2.3.4/33", "::/129",
	}
	r := rand.New(rand.NewPCG(1, 2))
	hex := "0123456789abcdefABCDEF"
	for range 3000 {
		var s string
		if r.IntN(3) == 0 {
			oct := make([]string, 4)
			for i := range oct {
				oct[i] = fmt.Sprint(r.IntN(300))
				if r.IntN(20) == 0 {
					oct[i] = "0" + oct[i]
				}
			}
			s = strings.Join(oct, ".")
		} else {
			groups := make([]string, r.IntN(9)+1)
			for i := range groups {
				g := make([]byte, r.IntN(5))
				for j := range g {
					if r.IntN(2) == 0 {
						g[j] = '0'
					} else {
						g[j] = hex[r.IntN(len(hex))]
					}
				}
				groups[i] = string(g)
			}
			s = strings.Join(groups, ":")
			if r.IntN(2) == 0 {
				i := r.IntN(len(groups) + 1)
				s = strings.Join(groups[:i], ":") + "::" + strings.Join(groups[i:], ":")
			}
		}
		bits := fmt.Sprint(r.IntN(130))
		if r.IntN(20) == 0 {
			bits = "0" + bits
		}
		s += "/" + bits
		if r.IntN(10) == 0 {
			i := r.IntN(len(s))
			s = s[:i] + string("0:./a"[r.IntN(5)]) + s[i+1:]
		}
		out = append(out, s)
	}
	return out
}
