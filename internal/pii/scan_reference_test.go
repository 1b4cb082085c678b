package pii

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refScanASCII is scanASCII as it was before its single pass learnt to
// gate each detector on the runs it needs: every detector runs whenever
// the string has enough digits, dots or colons anywhere. It is the
// reference the gated scanner must agree with, verdict for verdict.
func refScanASCII(s string, mode scanMode) (piiSet, uint16) {
	var (
		acc, counts uint64
		found       piiSet
	)
	boundary := true
	for i := 0; i < len(s); i++ {
		e := refByteInfo[s[i]]
		acc |= e
		counts += e
		if boundary && e&(uint64(clStart)<<refInfoClassShift) != 0 {
			found |= scanToken(s, i)
		}
		boundary = e&(uint64(clDigit|clLetter)<<refInfoClassShift) == 0
	}
	cls := uint16(acc >> refInfoClassShift)
	digits, dots, colons := int(counts&refInfoCountMask), int(counts>>16&refInfoCountMask), int(counts>>32&refInfoCountMask)
	if len(s) > refInfoCountMask {
		digits, dots, colons = len(s), len(s), len(s)
	}
	if cls&(clAt|clPercent) != 0 && hasEmail(s) {
		found |= piiEmail
	}
	if (cls&clPlus != 0 && digits >= e164MinDigits || digits >= nationalMinDigits) && hasPhone(s) {
		found |= piiPhone
	}
	if dots >= 3 && digits >= 4 && hasIPv4(s, mode) || colons >= 2 && hasIPv6(s) {
		found |= piiIP
	}
	if digits >= 5 && cls&(clPhoneSep|clB64) != 0 && hasSeparatedIPv4(s) {
		found |= piiIP
	}
	if digits >= labelledMinDigits && cls&clLetter != 0 {
		found |= labelledNumber(s)
	}
	if len(s) >= credentialMinLen && cls&clLetter != 0 && cls&clPhoneSep != 0 {
		found |= hasCredential(s)
	}
	return found, cls
}

var refByteInfo = func() (t [256]uint64) {
	for c := range t {
		t[c] = uint64(byteClass[c]) << refInfoClassShift
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= 1
	}
	t['.'] |= 1 << 16
	t[':'] |= 1 << 32
	return t
}()

const (
	refInfoCountMask  = 1<<16 - 1
	refInfoClassShift = 48
)

// refScanText is scanText over refScanASCII.
func refScanText(s string, mode scanMode) piiSet {
	found, cls := refScanASCII(s, mode)
	if cls&(clPercent|clEscape|clHigh) != 0 {
		if n, ok := normalize(s); ok {
			more, _ := refScanASCII(n, mode)
			found |= more
		}
	}
	return found
}

// requireAgrees checks s, in both modes, against the reference.
func requireAgrees(t testing.TB, s string) {
	t.Helper()
	for _, mode := range []scanMode{modeText, modeUserAgent} {
		gotSet, gotCls := scanASCII(s, mode)
		wantSet, wantCls := refScanASCII(s, mode)
		if gotSet != wantSet || gotCls != wantCls {
			t.Fatalf("mode %d, %q: scanASCII gives %s (classes %#x), the reference %s (classes %#x)",
				mode, s, redactedPlaceholder(gotSet), gotCls, redactedPlaceholder(wantSet), wantCls)
		}
		if got, want := scanText(s, mode), refScanText(s, mode); got != want {
			t.Fatalf("mode %d, %q: scanText gives %s, the reference %s", mode, s, redactedPlaceholder(got), redactedPlaceholder(want))
		}
	}
}

// testStrings returns every string literal of this package's tests and
// every input of the repository's fuzz corpora (testdata/fuzz), the way
// go test feeds them.
func testStrings(t *testing.T) []string {
	t.Helper()
	var out []string
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out = append(out, s)
				}
			}
			return true
		})
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	corpora := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.Contains(filepath.ToSlash(path), "/testdata/fuzz/") {
			return nil
		}
		corpora++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			// go test fuzz v1: one value a line, as []byte("...")
			// or string("...").
			line := sc.Text()
			if open := strings.IndexByte(line, '('); open > 0 && strings.HasSuffix(line, ")") {
				if s, err := strconv.Unquote(line[open+1 : len(line)-1]); err == nil {
					out = append(out, s)
				}
			}
		}
		return sc.Err()
	})
	require.NoError(t, err)
	require.NotZero(t, corpora, "no fuzz corpus found under %s", root)
	return out
}

// fragments are the pieces generated strings are made of: what each
// detector and each gate looks for, and what sits just short of it.
var fragments = []string{
	"0", "00", "1", "7", "12", "123", "255", "256", "0301", "1234567", "12345678", "3405803853", "0049", "+49", "+",
	".", "..", ":", "::", "-", "_", " ", "  ", "\t", "(", ")", "/", "//", "=", "@", "%40", "%", "&#64;", "\\u0040", "＠", "．",
	"a", "B", "x", "ff", "db8", "fe80", "v", "ip", "IP", "ipv4", "addr", "tel", "phone", "Mobile", "fax", "sms", "for",
	"http://", "Chrome/", "Version/", "Mozilla/5.0", "like", "Gecko", "k1:", "demo:", "key-2026-11",
	"bearer", "Bearer ", "basic", "Basic ", "dXNlcjpwYXNz", "token", "Token ", "ApiKey", "api-key", "negotiate", "NTLM", "dpop",
	"gnap", "digest", "Digest ", "hoba", "mutual", "vapid", "scram-sha-256", "AWS4-HMAC-SHA256", "oauth", "concealed",
	"privatetoken", "authorization", "Authorization:", "proxy-authorization", "x-api-key", "X-Api-Key:", "username=",
	"eyJ", "eyJhbGciOiJIUzI1NiJ9", "sk_live_", "ghp_", "AKIA", "AIza", "xoxb-", "glpat-",
	"abcdef0123456789", "0123456789abcdef0123456789abcdef", "example.com", "bob", "com", "xn--", "é", "/24", "/48", "/33",
}

// generated returns n strings of up to 10 fragments, each fragment's case
// flipped now and then.
func generated(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]string, n)
	var b strings.Builder
	for i := range out {
		b.Reset()
		for range 1 + rng.IntN(10) {
			f := fragments[rng.IntN(len(fragments))]
			if rng.IntN(4) == 0 {
				f = strings.ToUpper(f)
			}
			b.WriteString(f)
		}
		out[i] = b.String()
	}
	return out
}

// TestScanAgreesWithReference holds the single-pass scanner to the
// reference, which runs each detector whenever the string has enough
// digits, dots or colons: on every string of this package's tests, every
// fuzz corpus, their pairs, generated strings, and strings long enough
// to make the pass give up counting runs. Every other step of Check is
// shared, so equal scans make equal findings.
func TestScanAgreesWithReference(t *testing.T) {
	t.Parallel()
	corpus := testStrings(t)
	require.Greater(t, len(corpus), 500)
	for _, s := range corpus {
		requireAgrees(t, s)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 20000 {
		a, b := corpus[rng.IntN(len(corpus))], corpus[rng.IntN(len(corpus))]
		requireAgrees(t, a+" "+b)
		requireAgrees(t, a+b)
	}
	for _, s := range generated(200000, 1) {
		requireAgrees(t, s)
	}
	pad := strings.Repeat("x", maxLaneLen)
	for _, s := range generated(2000, 2) {
		requireAgrees(t, pad+" "+s)
		requireAgrees(t, s+strings.Repeat("1", maxLaneLen))
	}

	// The reference flags these: the corpus reaches every detector.
	var seen piiSet
	for _, s := range corpus {
		seen |= refScanText(s, modeText)
	}
	require.Equal(t, piiSet(1<<len(piiKinds)-1), seen)
}

// FuzzScanAgreesWithReference holds the single-pass scanner to the
// reference on any string.
func FuzzScanAgreesWithReference(f *testing.F) {
	for _, s := range generated(64, 3) {
		f.Add(s)
	}
	for _, s := range []string{
		"tel: 555 123 4567", "ip=3405803853", "http://3405803853/", "Chrome/131.0.0.0", "ec2-203-0-113-77",
		"ip:2001:db8::1", "Authorization: x", "hoba a=b", "Basic dXNlcjpwYXNz", "(555) 123-4567", "+49 151 12345678",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { requireAgrees(t, s) })
}
