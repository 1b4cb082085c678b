package sdk_test

import (
	"bytes"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/sessionmon/sessionmon/sdk/internal/check"

	"github.com/sessionmon/sessionmon/sdk"
)

// pseudonymPattern is the schema's pattern for pseudonyms.
var pseudonymPattern = regexp.MustCompile(`^[A-Za-z0-9_:~-]{8,128}$`)

func TestNewPseudonymizer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keyID   string
		key     []byte
		wantErr string
	}{
		{name: "valid", keyID: "k1", key: testKey},
		{name: "valid/longest key id", keyID: "Key2026rotation0", key: testKey},
		{name: "key/too short", keyID: "k1", key: testKey[:31], wantErr: "at least 32 bytes (got 31)"},
		{name: "key/nil", keyID: "k1", key: nil, wantErr: "at least 32 bytes (got 0)"},
		{name: "key id/empty", keyID: "", key: testKey, wantErr: "key id"},
		{name: "key id/too long", keyID: "Key2026rotation01", key: testKey, wantErr: "key id"},
		{name: "key id/separator", keyID: "k:1", key: testKey, wantErr: "key id"},
		{name: "key id/not ascii", keyID: "clé", key: testKey, wantErr: "key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := sdk.NewPseudonymizer(tt.keyID, tt.key)
			if tt.wantErr != "" {
				check.ErrorIs(t, err, sdk.ErrKey)
				check.ErrorContains(t, err, tt.wantErr)
				check.Nil(t, p)
				return
			}
			check.NoError(t, err)
			check.Equal(t, tt.keyID, p.KeyID())
		})
	}
}

// TestPseudonymizerKnownValues pins the construction: a change here changes
// every pseudonym of every app, which must be a deliberate, versioned step.
func TestPseudonymizerKnownValues(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name string
		got  sdk.Pseudonym
		want string
	}{
		{name: "subject", got: p.Subject("user-42"), want: "k1:waWtEkilTnvC3zp9CdLftw"},
		{name: "session", got: p.Session("user-42"), want: "k1:SCL1_LFQTnEETYZSehXtcg"},
		{name: "device", got: p.Device("user-42"), want: "k1:18kPup2OODLZ4-n0GshQaw"},
		{name: "token", got: p.TokenID("user-42"), want: "k1:aIKouUM8owvAH78qZX042g"},
		{name: "ip/v4", got: p.IPHash(netip.MustParseAddr("203.0.113.7")), want: "k1:bqd0d8r0FbLzp536MIBrxQ"},
		{name: "ip/v6", got: p.IPHash(netip.MustParseAddr("2001:db8::7")), want: "k1:4AjUtT5vwSjmHG7OQ9V-rg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check.Equal(t, tt.want, tt.got.String())
		})
	}
}

func TestPseudonymizerFormat(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	long, err := sdk.NewPseudonymizer("Key2026rotation0", testKey)
	check.NoError(t, err)
	tests := []struct {
		name   string
		got    sdk.Pseudonym
		prefix string
	}{
		{name: "short key id", got: p.Subject("alice@example.com"), prefix: "k1:"},
		{name: "longest key id", got: long.Subject("alice@example.com"), prefix: "Key2026rotation0:"},
		{name: "binary input", got: p.TokenID("\x00\xff\n"), prefix: "k1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.got.String()
			check.False(t, tt.got.IsZero())
			check.Regexp(t, pseudonymPattern, s)
			check.True(t, strings.HasPrefix(s, tt.prefix), s)
			check.Len(t, strings.TrimPrefix(s, tt.prefix), 22, "16 bytes in base64url without padding")
			text, err := tt.got.MarshalText()
			check.NoError(t, err)
			check.Equal(t, s, string(text))
		})
	}
}

func TestPseudonymizerDeterminismAndKeys(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	again := newPseudonymizer(t)
	check.Equal(t, p.Subject("user-1"), again.Subject("user-1"), "same key and input give the same pseudonym")
	check.NotEqual(t, p.Subject("user-1"), p.Subject("user-2"))

	otherKey, err := sdk.NewPseudonymizer("k1", bytes.Repeat([]byte{7}, 32))
	check.NoError(t, err)
	digest := func(ps sdk.Pseudonym) string { _, d, _ := strings.Cut(ps.String(), ":"); return d }
	check.NotEqual(t, digest(p.Subject("user-1")), digest(otherKey.Subject("user-1")), "another key gives another digest")

	rotated, err := sdk.NewPseudonymizer("k2", testKey)
	check.NoError(t, err)
	check.Equal(t, "k2:"+digest(p.Subject("user-1")), rotated.Subject("user-1").String(), "the key id only names the key")
}

func TestPseudonymizerDomainSeparation(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	const raw = "203.0.113.7"
	kinds := map[string]sdk.Pseudonym{
		"subject": p.Subject(raw),
		"session": p.Session(raw),
		"device":  p.Device(raw),
		"token":   p.TokenID(raw),
		"ip":      p.IPHash(netip.MustParseAddr(raw)),
	}
	seen := make(map[sdk.Pseudonym]string)
	for kind, ps := range kinds {
		check.False(t, ps.IsZero(), kind)
		other, dup := seen[ps]
		check.False(t, dup, "%s and %s give the same pseudonym for one input", kind, other)
		seen[ps] = kind
	}
}

func TestPseudonymizerZero(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name string
		got  sdk.Pseudonym
	}{
		{name: "zero value", got: sdk.Pseudonym{}},
		{name: "subject/empty", got: p.Subject("")},
		{name: "session/empty", got: p.Session("")},
		{name: "device/empty", got: p.Device("")},
		{name: "token/empty", got: p.TokenID("")},
		{name: "ip/invalid", got: p.IPHash(netip.Addr{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check.True(t, tt.got.IsZero())
			check.Empty(t, tt.got.String())
		})
	}
}

func TestPseudonymizerIPHash(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	v4 := p.IPHash(netip.MustParseAddr("203.0.113.7"))
	tests := []struct {
		name string
		addr string
		same bool
	}{
		{name: "same address", addr: "203.0.113.7", same: true},
		{name: "ipv4-mapped ipv6 is the ipv4 address", addr: "::ffff:203.0.113.7", same: true},
		{name: "same network, other host", addr: "203.0.113.8", same: false},
		{name: "ipv6", addr: "2001:db8::7", same: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := p.IPHash(netip.MustParseAddr(tt.addr))
			check.Equal(t, tt.same, got == v4)
		})
	}
	check.Equal(t, p.IPHash(netip.MustParseAddr("fe80::1")), p.IPHash(netip.MustParseAddr("fe80::1%eth0")), "zones are ignored")
}

func FuzzPseudonymizer(f *testing.F) {
	for _, s := range []string{"user-1", "", "\x00", "alice@example.com", strings.Repeat("x", 4096)} {
		f.Add(s)
	}
	p, err := sdk.NewPseudonymizer("k1", testKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		kinds := []sdk.Pseudonym{p.Subject(raw), p.Session(raw), p.Device(raw), p.TokenID(raw)}
		seen := make(map[sdk.Pseudonym]bool)
		for _, ps := range kinds {
			if raw == "" {
				check.True(t, ps.IsZero())
				continue
			}
			check.Regexp(t, pseudonymPattern, ps.String())
			check.False(t, seen[ps], "kinds must not collide")
			seen[ps] = true
		}
		check.Equal(t, kinds[0], p.Subject(raw), "deterministic")
	})
}
