package notify

import (
	"fmt"
	"net/netip"
)

// The address rules below decide which IP addresses a webhook may connect
// to when it does not set allow_private. They follow the IANA registries
//
//   - IANA IPv4 Special-Purpose Address Registry
//     https://www.iana.org/assignments/iana-ipv4-special-registry/
//   - IANA IPv6 Special-Purpose Address Registry
//     https://www.iana.org/assignments/iana-ipv6-special-registry/
//   - IANA IPv6 Global Unicast Address Assignments / IPv6 Address Space
//     https://www.iana.org/assignments/ipv6-address-space/
//   - IANA IPv4 Multicast Address Space Registry
//     https://www.iana.org/assignments/multicast-addresses/
//
// An address is refused when the registries do not mark its block as
// globally reachable (or mark it "N/A" or deprecated). Where a registry
// entry is globally reachable but sits inside a larger block that is not
// (the anycast addresses 192.0.0.9 and 192.0.0.10 inside 192.0.0.0/24, the
// global assignments inside 2001::/23), the whole larger block is refused:
// no webhook receiver lives there.
//
// IPv6 addresses outside 2000::/3, the only space IANA allocates for global
// unicast, are refused, which covers ::/128, ::1, the deprecated
// IPv4-compatible ::/96, 100::/64, 5f00::/16, fc00::/7, fe80::/10, the
// deprecated site-local fec0::/10 and ff00::/8 multicast, with two
// exceptions that carry an IPv4 address:
//
//   - ::ffff:0:0/96 (IPv4-mapped) is the embedded IPv4 address itself (the
//     system connects over IPv4), so the IPv4 rules decide.
//   - 64:ff9b::/96 (NAT64 well-known prefix, RFC 6052) reaches the embedded
//     IPv4 address through a NAT64 gateway, so it is allowed only when the
//     embedded IPv4 address is. 64:ff9b:1::/48 (local-use NAT64, RFC 8215)
//     is not globally reachable and is refused whatever it embeds.
//
// Inside 2000::/3, 6to4 (2002::/16, RFC 3056) is allowed only when the
// IPv4 address of its relay (bits 16 to 47) is, and Teredo (2001::/32,
// part of 2001::/23) is refused whatever it embeds.

// blockedV4 are the IPv4 blocks a webhook may not reach.
var blockedV4 = []namedPrefix{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\", RFC 791"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private use, RFC 1918"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space, RFC 6598"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback, RFC 1122"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link local, RFC 3927"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private use, RFC 1918"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments, RFC 6890"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1), RFC 5737"},
	{netip.MustParsePrefix("192.88.99.0/24"), "deprecated 6to4 relay anycast, RFC 7526"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private use, RFC 1918"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking, RFC 2544"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2), RFC 5737"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3), RFC 5737"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast, RFC 5771"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, RFC 1112"},
	// 255.255.255.255/32, limited broadcast (RFC 919), lies in 240.0.0.0/4.
}

// IPv6 prefixes with special handling.
var (
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	mappedV6        = netip.MustParsePrefix("::ffff:0:0/96")
	nat64V6         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourV6     = netip.MustParsePrefix("2002::/16")
)

// blockedV6 are the blocks inside 2000::/3 a webhook may not reach.
var blockedV6 = []namedPrefix{
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (including Teredo 2001::/32), RFC 2928"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation, RFC 3849"},
	{netip.MustParsePrefix("3fff::/20"), "documentation, RFC 9637"},
}

// namedPrefix is a block and what it is, for error messages.
type namedPrefix struct {
	prefix netip.Prefix
	what   string
}

// forbiddenAddr says why a webhook without allow_private may not connect
// to ip, or returns "" when it may: ip is a globally reachable unicast
// address by the IANA registries (see the rules above).
func forbiddenAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not an IP address"
	}
	// A zone (fe80::1%eth0) only matters for link-local addresses, which
	// are refused below; it says nothing about reachability.
	ip = ip.WithZone("")
	if ip.Is4() {
		for _, b := range blockedV4 {
			if b.prefix.Contains(ip) {
				return fmt.Sprintf("%s, %s", b.prefix, b.what)
			}
		}
		return ""
	}
	switch {
	case mappedV6.Contains(ip):
		// The IPv4 address written as IPv6: the connection goes over IPv4.
		if why := forbiddenAddr(ip.Unmap()); why != "" {
			return fmt.Sprintf("IPv4-mapped %s: %s", ip.Unmap(), why)
		}
		return ""
	case nat64V6.Contains(ip):
		a := ip.As16()
		v4 := netip.AddrFrom4([4]byte{a[12], a[13], a[14], a[15]})
		if why := forbiddenAddr(v4); why != "" {
			return fmt.Sprintf("NAT64 64:ff9b::/96 embedding %s: %s", v4, why)
		}
		return ""
	case !globalUnicastV6.Contains(ip):
		return "outside the IPv6 global unicast space 2000::/3 (loopback, unspecified, " +
			"IPv4-compatible, local-use NAT64, discard, unique local, link local, site local or multicast)"
	case sixToFourV6.Contains(ip):
		a := ip.As16()
		v4 := netip.AddrFrom4([4]byte{a[2], a[3], a[4], a[5]})
		if why := forbiddenAddr(v4); why != "" {
			return fmt.Sprintf("6to4 2002::/16 embedding %s: %s", v4, why)
		}
		return ""
	}
	for _, b := range blockedV6 {
		if b.prefix.Contains(ip) {
			return fmt.Sprintf("%s, %s", b.prefix, b.what)
		}
	}
	return ""
}
