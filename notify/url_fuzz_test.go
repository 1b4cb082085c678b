package notify

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzCheckURL checks what CheckURL promises for any input: it never
// panics, and a URL it accepts without allow_http/allow_private is an
// absolute https URL with a host, no user info, and no internal IP literal
// or localhost name. Its errors never echo the URL's query, where a
// receiver's secret token might be.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/sessionmon",
		"https://hooks.example.com/x?token=s3cr3t",
		"http://hooks.example.com/",
		"https://127.0.0.1/",
		"https://[::1]:8443/",
		"https://[::ffff:10.0.0.1]/",
		"https://0177.0.0.1/",
		"https://localhost./",
		"https://a.localhost/",
		"https://user:pw@example.com/",
		"https://100.64.1.1/",
		"ftp://example.com/",
		"https:///path",
		"//example.com",
		"https://[fe80::1%25eth0]/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := CheckURL(raw, false, false)
		if err != nil {
			// (Errors name the host, quoted: a query that is part of the
			// host as written or as quoted, as in https://000000?000000
			// or https://0\x8000000?000000, reveals nothing more.)
			if u, perr := url.Parse(raw); perr == nil && len(u.RawQuery) >= 6 && strings.Contains(err.Error(), u.RawQuery) &&
				!strings.Contains(u.Host+" "+strconv.Quote(u.Host), u.RawQuery) {
				t.Fatalf("error %q echoes the query of %q", err, raw)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, perr)
		}
		if u.Scheme != "https" || u.User != nil || u.Hostname() == "" {
			t.Fatalf("accepted %q: scheme %q, user %v, host %q", raw, u.Scheme, u.User, u.Hostname())
		}
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			t.Fatalf("accepted localhost URL %q", raw)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
				t.Fatalf("accepted internal address %q", raw)
			}
		} else if net.ParseIP(u.Hostname()) != nil {
			t.Fatalf("accepted IP literal %q that netip rejects", raw)
		}
		// Accepting it plain is consistent with the permissive modes.
		if err := CheckURL(raw, true, true); err != nil {
			t.Fatalf("%q accepted strictly but refused with allow_http and allow_private: %v", raw, err)
		}
	})
}
