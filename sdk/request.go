package sdk

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// maxUserAgentChars is the longest user agent an event may carry.
const maxUserAgentChars = 512

// RequestInspector reads the client of an HTTP request: its address, cut to
// a network prefix and hashed with the Pseudonymizer, and its user agent.
//
// The address is the request's direct peer (http.Request.RemoteAddr). An
// X-Forwarded-For header is honoured only when that peer is one of the
// trusted proxies: the header is then read right to left, skipping
// addresses of trusted proxies, and the first address outside them is the
// client. If every hop is trusted, the leftmost is the client; if a hop is
// malformed, the proxy that wrote it is taken as the client, since nothing
// to its left can be trusted. The Forwarded header (RFC 7239) is not read.
//
// A RequestInspector is immutable and safe for concurrent use.
type RequestInspector struct {
	p       *Pseudonymizer
	trusted []netip.Prefix
}

// NewRequestInspector returns a RequestInspector that hashes addresses with
// p and trusts X-Forwarded-For from peers within trustedProxies (none: the
// header is ignored). It fails on a nil p or an invalid prefix.
func NewRequestInspector(p *Pseudonymizer, trustedProxies []netip.Prefix) (*RequestInspector, error) {
	if p == nil {
		return nil, errors.New("new request inspector: nil Pseudonymizer")
	}
	ri := &RequestInspector{p: p, trusted: make([]netip.Prefix, 0, len(trustedProxies))}
	for i, tp := range trustedProxies {
		if !tp.IsValid() {
			return nil, fmt.Errorf("new request inspector: trusted proxy %d (%q) is not a valid prefix", i, tp.String())
		}
		if tp.Addr().Is4In6() && tp.Bits() >= 96 {
			tp = netip.PrefixFrom(tp.Addr().Unmap(), tp.Bits()-96)
		}
		ri.trusted = append(ri.trusted, tp.Masked())
	}
	return ri, nil
}

// ClientInfo returns the client of r: its network prefix (IPv4 /24, IPv6
// /48), the keyed hash of its address and its user agent. Device is left
// zero: set it from the app's device cookie with Pseudonymizer.Device. A
// request without a parsable address yields no prefix and no hash.
func (ri *RequestInspector) ClientInfo(r *http.Request) ClientInfo {
	if r == nil {
		return ClientInfo{}
	}
	ci := ClientInfo{UserAgent: userAgent(r)}
	if addr, ok := ri.ClientAddr(r); ok {
		ci.IPPrefix = addrPrefix(addr)
		ci.IPHash = ri.p.IPHash(addr)
	}
	return ci
}

// ClientAddr returns the client address of r as described on
// RequestInspector, for the app's own use (such as a GeoIP lookup to fill
// ClientInfo.Country). It never leaves the app through the SDK.
func (ri *RequestInspector) ClientAddr(r *http.Request) (netip.Addr, bool) {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !ri.isTrusted(peer) {
		return peer, true
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for rest != "" {
			var hop string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				hop, rest = rest[j+1:], rest[:j]
			} else {
				hop, rest = rest, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			addr, ok := parseHop(hop)
			if !ok {
				return client, true
			}
			client = addr
			if !ri.isTrusted(addr) {
				return client, true
			}
		}
	}
	return client, true
}

func (ri *RequestInspector) isTrusted(addr netip.Addr) bool {
	for _, p := range ri.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseHop parses an address as found in RemoteAddr or X-Forwarded-For:
// "addr", "addr:port", "[v6]" or "[v6]:port". IPv4-mapped addresses become
// IPv4 and zones are dropped.
func parseHop(s string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			addr = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if addr, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return addr.Unmap().WithZone(""), true
}

// userAgent returns r's User-Agent as valid UTF-8 of at most
// maxUserAgentChars characters.
func userAgent(r *http.Request) string {
	ua := strings.ToValidUTF8(r.UserAgent(), "\uFFFD")
	if utf8.RuneCountInString(ua) <= maxUserAgentChars {
		return ua
	}
	n := 0
	for i := range ua {
		if n == maxUserAgentChars {
			return ua[:i]
		}
		n++
	}
	return ua
}
