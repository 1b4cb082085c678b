package notify

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reservedAddresses holds one address of every block a webhook without
// allow_private must not reach, by the IANA IPv4 and IPv6 special-purpose
// registries, including the IPv6 forms that embed an IPv4 address.
var reservedAddresses = []struct {
	name string
	addr string
}{
	{"v4/this network", "0.1.2.3"},
	{"v4/unspecified", "0.0.0.0"},
	{"v4/private 10", "10.1.2.3"},
	{"v4/shared address space", "100.64.0.1"},
	{"v4/loopback", "127.0.0.1"},
	{"v4/loopback high", "127.255.255.254"},
	{"v4/link local", "169.254.169.254"},
	{"v4/private 172", "172.16.0.1"},
	{"v4/ietf protocol assignments", "192.0.0.1"},
	{"v4/dummy", "192.0.0.8"},
	{"v4/nat64 discovery", "192.0.0.170"},
	{"v4/documentation 1", "192.0.2.1"},
	{"v4/6to4 relay anycast", "192.88.99.1"},
	{"v4/private 192.168", "192.168.1.1"},
	{"v4/benchmarking low", "198.18.0.1"},
	{"v4/benchmarking high", "198.19.255.1"},
	{"v4/documentation 2", "198.51.100.1"},
	{"v4/documentation 3", "203.0.113.1"},
	{"v4/multicast", "224.0.0.1"},
	{"v4/multicast high", "239.255.255.250"},
	{"v4/reserved", "240.0.0.1"},
	{"v4/reserved high", "254.1.2.3"},
	{"v4/broadcast", "255.255.255.255"},

	{"v6/unspecified", "::"},
	{"v6/loopback", "::1"},
	{"v6/ipv4-compatible public", "::8.8.8.8"},
	{"v6/ipv4-compatible loopback", "::127.0.0.1"},
	{"v6/ipv4-mapped loopback", "::ffff:127.0.0.1"},
	{"v6/ipv4-mapped private", "::ffff:10.0.0.1"},
	{"v6/ipv4-mapped metadata", "::ffff:169.254.169.254"},
	{"v6/ipv4-mapped benchmarking", "::ffff:198.18.0.1"},
	{"v6/nat64 loopback", "64:ff9b::127.0.0.1"},
	{"v6/nat64 private", "64:ff9b::10.0.0.1"},
	{"v6/nat64 metadata", "64:ff9b::a9fe:a9fe"},
	{"v6/nat64 reserved", "64:ff9b::240.0.0.1"},
	{"v6/local-use nat64 public", "64:ff9b:1::808:808"},
	{"v6/local-use nat64 private", "64:ff9b:1::a00:1"},
	{"v6/discard only", "100::1"},
	{"v6/ietf protocol assignments", "2001:2::1"},
	{"v6/teredo public", "2001:0:4136:e378:8000:63bf:3fff:fdd2"},
	{"v6/teredo", "2001::1"},
	{"v6/orchid", "2001:20::1"},
	{"v6/documentation", "2001:db8::1"},
	{"v6/documentation 3fff", "3fff::1"},
	{"v6/6to4 loopback", "2002:7f00:1::1"},
	{"v6/6to4 private", "2002:a00:1::1"},
	{"v6/6to4 metadata", "2002:a9fe:a9fe::1"},
	{"v6/srv6 sids", "5f00::1"},
	{"v6/unique local", "fd00::1"},
	{"v6/unique local fc", "fc00::1"},
	{"v6/site local", "fec0::1"},
	{"v6/link local", "fe80::1"},
	{"v6/multicast", "ff02::1"},
	{"v6/multicast global", "ff0e::1"},
}

// publicAddresses must stay reachable without allow_private.
var publicAddresses = []struct {
	name string
	addr string
}{
	{"v4/google dns", "8.8.8.8"},
	{"v4/cloudflare dns", "1.1.1.1"},
	{"v4/just below 10/8", "9.255.255.255"},
	{"v4/just above 100.64/10", "100.128.0.1"},
	{"v4/just below 172.16/12", "172.15.255.255"},
	{"v4/just above 172.16/12", "172.32.0.1"},
	{"v4/as112", "192.31.196.1"},
	{"v4/amt", "192.52.193.1"},
	{"v4/as112 direct delegation", "192.175.48.1"},
	{"v4/just above benchmarking", "198.20.0.1"},
	{"v4/just below multicast", "223.255.255.254"},
	{"v6/google dns", "2001:4860:4860::8888"},
	{"v6/cloudflare dns", "2606:4700:4700::1111"},
	{"v6/as112 direct delegation", "2620:4f:8000::1"},
	{"v6/ipv4-mapped public", "::ffff:8.8.8.8"},
	{"v6/nat64 public", "64:ff9b::8.8.8.8"},
	{"v6/6to4 public", "2002:808:808::1"},
	{"v6/just above 2001::/23", "2001:200::1"},
}

// TestCheckURLAddressRules: at configuration time, a URL naming any
// reserved address literally is refused, naming the block, unless the
// webhook sets allow_private; public addresses pass.
func TestCheckURLAddressRules(t *testing.T) {
	t.Parallel()
	for _, tt := range reservedAddresses {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			t.Parallel()
			u := "https://" + hostLiteral(t, tt.addr) + ":8443/hook"
			err := CheckURL(u, false, false)
			require.ErrorIs(t, err, ErrForbiddenAddress, "%s must be refused", u)
			require.ErrorContains(t, err, "allow_private")
			require.NoError(t, CheckURL(u, false, true), "allow_private permits %s", u)
		})
	}
	for _, tt := range publicAddresses {
		t.Run("allowed/"+tt.name, func(t *testing.T) {
			t.Parallel()
			u := "https://" + hostLiteral(t, tt.addr) + "/hook"
			require.NoError(t, CheckURL(u, false, false))
		})
	}
}

// TestDialAddressRules: at connection time, after name resolution, the
// real dialer of a webhook without allow_private refuses every reserved
// address before any packet is sent; a webhook with allow_private has no
// such check; public addresses pass the check.
func TestDialAddressRules(t *testing.T) {
	t.Parallel()
	signer, err := NewSigner(kaSecret)
	require.NoError(t, err)
	for _, tt := range reservedAddresses {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			t.Parallel()
			addr := net.JoinHostPort(netip.MustParseAddr(tt.addr).String(), "443")
			require.ErrorIs(t, dialControl("tcp", addr, nil), ErrForbiddenAddress)

			// The dialer the webhook's transport uses.
			tg := newTarget(Webhook{Name: "x", URL: "https://hooks.example.com/", Timeout: time.Second, Concurrency: 1}, signer, jsonFormat{})
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			conn, err := tg.client.Transport.(*http.Transport).DialContext(ctx, "tcp", addr)
			if conn != nil {
				conn.Close()
			}
			require.ErrorIs(t, err, ErrForbiddenAddress)
		})
	}
	for _, tt := range publicAddresses {
		t.Run("allowed/"+tt.name, func(t *testing.T) {
			t.Parallel()
			addr := net.JoinHostPort(netip.MustParseAddr(tt.addr).String(), "443")
			require.NoError(t, dialControl("tcp", addr, nil))
		})
	}
}

// hostLiteral writes addr as a URL host: IPv6 in brackets.
func hostLiteral(t *testing.T, addr string) string {
	t.Helper()
	ip := netip.MustParseAddr(addr)
	if ip.Is4() {
		return ip.String()
	}
	return "[" + addr + "]"
}
