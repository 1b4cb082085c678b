package sdk_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessionmon/sessionmon/sdk/internal/check"

	"github.com/sessionmon/sessionmon/sdk"
)

func TestNewRequestInspector(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	tests := []struct {
		name    string
		p       *sdk.Pseudonymizer
		proxies []netip.Prefix
		wantErr string
	}{
		{name: "no proxies", p: p},
		{name: "proxies", p: p, proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}},
		{name: "nil pseudonymizer", p: nil, wantErr: "nil Pseudonymizer"},
		{name: "invalid prefix", p: p, proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}, wantErr: "trusted proxy 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ri, err := sdk.NewRequestInspector(tt.p, tt.proxies)
			if tt.wantErr != "" {
				check.ErrorContains(t, err, tt.wantErr)
				check.Nil(t, ri)
				return
			}
			check.NoError(t, err)
			check.NotNil(t, ri)
		})
	}
}

func TestRequestInspectorClientAddr(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
		// An IPv4-mapped prefix means the IPv4 network.
		netip.MustParsePrefix("::ffff:192.168.0.0/112"),
	})
	check.NoError(t, err)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string // "" for no address
	}{
		{name: "direct/ipv4", remote: "203.0.113.7:51000", want: "203.0.113.7"},
		{name: "direct/ipv6", remote: "[2001:db8:1:2::7]:443", want: "2001:db8:1:2::7"},
		{name: "direct/ipv4-mapped", remote: "[::ffff:203.0.113.7]:443", want: "203.0.113.7"},
		{name: "direct/zone dropped", remote: "[fe80::1%eth0]:443", want: "fe80::1"},
		{name: "direct/no port", remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "direct/unparsable", remote: "@", want: ""},
		{name: "direct/empty", remote: "", want: ""},
		{name: "xff/ignored from an untrusted peer", remote: "203.0.113.7:1", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "xff/from a trusted peer", remote: "10.0.0.2:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "xff/trusted peer without header", remote: "10.0.0.2:1", want: "10.0.0.2"},
		{name: "xff/spoofed left part skipped", remote: "10.0.0.2:1", xff: []string{"1.2.3.4, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "xff/trusted hops skipped", remote: "10.0.0.2:1", xff: []string{"1.2.3.4, 198.51.100.1, 10.1.1.1, 10.2.2.2"}, want: "198.51.100.1"},
		{name: "xff/several headers in order", remote: "10.0.0.2:1", xff: []string{"1.2.3.4", "198.51.100.1, 10.1.1.1", "10.2.2.2"}, want: "198.51.100.1"},
		{name: "xff/all hops trusted: leftmost", remote: "10.0.0.2:1", xff: []string{"10.9.9.9, 10.1.1.1"}, want: "10.9.9.9"},
		{name: "xff/malformed hop: the proxy that wrote it", remote: "10.0.0.2:1", xff: []string{"198.51.100.1, unknown, 10.1.1.1"}, want: "10.1.1.1"},
		{name: "xff/malformed last hop: the peer", remote: "10.0.0.2:1", xff: []string{"198.51.100.1, garbage"}, want: "10.0.0.2"},
		{name: "xff/empty entries skipped", remote: "10.0.0.2:1", xff: []string{" 198.51.100.1 ,, "}, want: "198.51.100.1"},
		{name: "xff/hop with port", remote: "10.0.0.2:1", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1"},
		{name: "xff/ipv6 hop in brackets", remote: "10.0.0.2:1", xff: []string{"[2001:db8:1::9]"}, want: "2001:db8:1::9"},
		{name: "xff/ipv6 hop with port", remote: "10.0.0.2:1", xff: []string{"[2001:db8:1::9]:80"}, want: "2001:db8:1::9"},
		{name: "xff/ipv6 trusted proxy", remote: "[2001:db8:ffff::1]:1", xff: []string{"198.51.100.1, 2001:db8:ffff::2"}, want: "198.51.100.1"},
		{name: "xff/ipv4 via mapped trusted prefix", remote: "192.168.1.1:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "xff/mapped peer matches ipv4 prefix", remote: "[::ffff:10.0.0.2]:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			addr, ok := ri.ClientAddr(r)
			ci := ri.ClientInfo(r)
			if tt.want == "" {
				check.False(t, ok)
				check.False(t, ci.IPPrefix.IsValid())
				check.True(t, ci.IPHash.IsZero())
				return
			}
			check.True(t, ok)
			want := netip.MustParseAddr(tt.want)
			check.Equal(t, want, addr)
			check.Equal(t, p.IPHash(want), ci.IPHash)
			check.True(t, ci.IPPrefix.Contains(want))
		})
	}
}

func TestRequestInspectorClientInfo(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	ri, err := sdk.NewRequestInspector(p, nil)
	check.NoError(t, err)
	long := strings.Repeat("é", 600)
	tests := []struct {
		name       string
		remote     string
		ua         string
		wantPrefix string
		wantUA     string
	}{
		{name: "ipv4 cut to /24", remote: "203.0.113.7:1", ua: "Mozilla/5.0", wantPrefix: "203.0.113.0/24", wantUA: "Mozilla/5.0"},
		{name: "ipv6 cut to /48", remote: "[2001:db8:1:2:3:4:5:6]:1", wantPrefix: "2001:db8:1::/48"},
		{name: "user agent cut to 512 characters", remote: "203.0.113.7:1", ua: long, wantPrefix: "203.0.113.0/24", wantUA: strings.Repeat("é", 512)},
		{name: "user agent made valid utf-8", remote: "203.0.113.7:1", ua: "bot\xff", wantPrefix: "203.0.113.0/24", wantUA: "bot\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("User-Agent", tt.ua)
			ci := ri.ClientInfo(r)
			check.Equal(t, tt.wantPrefix, ci.IPPrefix.String())
			check.Equal(t, tt.wantUA, ci.UserAgent)
			check.True(t, ci.Device.IsZero(), "the device is the app's to set")
			check.Regexp(t, pseudonymPattern, ci.IPHash.String())
		})
	}
	check.Equal(t, sdk.ClientInfo{}, ri.ClientInfo(nil))
}

func FuzzRequestInspector(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.1, 10.1.1.1")
	f.Add("[2001:db8::1]:80", "[2001:db8::2]:1,unknown")
	f.Add("10.0.0.1", ",,, ,")
	p, err := sdk.NewPseudonymizer("k1", testKey)
	if err != nil {
		f.Fatal(err)
	}
	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		ci := ri.ClientInfo(r)
		check.True(t, utf8.ValidString(ci.UserAgent))
		if !ci.IPPrefix.IsValid() {
			check.True(t, ci.IPHash.IsZero())
			return
		}
		check.Equal(t, ci.IPPrefix.Masked(), ci.IPPrefix, "host bits are zero")
		if ci.IPPrefix.Addr().Is4() {
			check.Equal(t, 24, ci.IPPrefix.Bits())
		} else {
			check.Equal(t, 48, ci.IPPrefix.Bits())
		}
		check.Regexp(t, pseudonymPattern, ci.IPHash.String())
	})
}
