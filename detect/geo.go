package detect

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"time"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/sessionmon/sessionmon/schemas"
)

// earthRadiusKM is the mean earth radius (IUGG), in kilometres.
const earthRadiusKM = 6371.0088

// maxEarthDistanceKM is half the earth's circumference: no two points are
// farther apart.
const maxEarthDistanceKM = math.Pi * earthRadiusKM

// distanceKM returns the great-circle distance between two points given in
// degrees, by the haversine formula (accurate to about 0.5% on the real,
// slightly flattened earth, far better than IP geolocation).
func distanceKM(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	dφ, dλ := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	// Rounding can push h a hair above 1 for antipodal points.
	return 2 * earthRadiusKM * math.Asin(math.Sqrt(min(h, 1)))
}

// NetworkKind says why a network's geolocation does not tell where a user
// is.
type NetworkKind string

// Network kinds. The first four are configured in networks:; anonymous
// comes from an anonymous-IP database.
const (
	NetworkVPN       NetworkKind = "vpn"
	NetworkRelay     NetworkKind = "relay"
	NetworkSatellite NetworkKind = "satellite"
	NetworkCorporate NetworkKind = "corporate"
	NetworkAnonymous NetworkKind = "anonymous"
)

// valid reports whether k may be configured.
func (k NetworkKind) valid() bool {
	switch k {
	case NetworkVPN, NetworkRelay, NetworkSatellite, NetworkCorporate:
		return true
	}
	return false
}

// networkMatch is what Networks knows about a client's network.
type networkMatch struct {
	kind NetworkKind
	// note is the configured note, or the anonymous-IP database's flags.
	note string
}

// anonCacheSize bounds the anonymous-IP lookup cache (prefix → result).
const anonCacheSize = 1 << 16

// Networks classifies client networks: the configured networks: list
// (by ip_prefix or ASN, each until its expiry in event time) and, when one is
// configured, a MaxMind GeoIP2 Anonymous IP database. It is used from the
// engine's goroutine only and is not safe for concurrent use.
type Networks struct {
	entries []Network
	// hasPrefixes says whether any entry has a prefix, so events need not
	// have theirs parsed otherwise.
	hasPrefixes bool
	anon        *geoip2.Reader
	anonCache   map[string]networkMatch
}

// NewNetworks returns the classifier of cfg's networks. It opens
// cfg.AnonymousIPDB, when set, and reads it whole into memory.
func NewNetworks(cfg Config) (*Networks, error) {
	n := newNetworks(cfg.Networks)
	if cfg.AnonymousIPDB == "" {
		return n, nil
	}
	b, err := os.ReadFile(cfg.AnonymousIPDB)
	if err != nil {
		return nil, fmt.Errorf("anonymous_ip_db: read: %w", err)
	}
	r, err := geoip2.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("anonymous_ip_db %s: %w", cfg.AnonymousIPDB, err)
	}
	// A City or ASN database opens fine and fails at the first lookup:
	// refuse it now.
	if _, err := r.AnonymousIP(netip.IPv4Unspecified()); err != nil {
		return nil, fmt.Errorf("anonymous_ip_db %s: not an anonymous-IP database: %w", cfg.AnonymousIPDB, err)
	}
	n.anon = r
	n.anonCache = make(map[string]networkMatch)
	return n, nil
}

// newNetworks returns a classifier of the configured networks alone (no
// I/O), as used to validate detector settings.
func newNetworks(entries []Network) *Networks {
	n := &Networks{entries: entries}
	for _, e := range entries {
		if e.Prefix.IsValid() {
			n.hasPrefixes = true
		}
	}
	return n
}

// classify returns what is known about c's network at event time at, and
// whether anything is. A configured entry matches when its ASN equals the
// client's, or its prefix contains the client's whole ip_prefix (an entry
// narrower than the client's /24 cannot be told apart and does not match).
// The anonymous-IP database is asked about the first address of the
// client's prefix.
func (n *Networks) classify(c *schemas.Client, at time.Time) (networkMatch, bool) {
	if n == nil || c == nil {
		return networkMatch{}, false
	}
	var prefix netip.Prefix
	if c.IPPrefix != "" && (n.hasPrefixes || n.anon != nil) {
		// The decoder validated the prefix; a parse error leaves it invalid.
		prefix, _ = netip.ParsePrefix(c.IPPrefix)
	}
	for i := range n.entries {
		e := &n.entries[i]
		if !e.Expires.IsZero() && !at.Before(e.Expires) {
			continue
		}
		if (e.ASN != 0 && e.ASN == c.ASN) ||
			(e.Prefix.IsValid() && prefix.IsValid() && e.Prefix.Bits() <= prefix.Bits() && e.Prefix.Contains(prefix.Addr())) {
			return networkMatch{kind: e.Kind, note: e.Note}, true
		}
	}
	if n.anon == nil || !prefix.IsValid() {
		return networkMatch{}, false
	}
	if m, ok := n.anonCache[c.IPPrefix]; ok {
		return m, m.kind != ""
	}
	var m networkMatch
	if rec, err := n.anon.AnonymousIP(prefix.Addr()); err == nil && rec.HasData() {
		m = networkMatch{kind: NetworkAnonymous, note: anonymousFlags(rec)}
	}
	if len(n.anonCache) >= anonCacheSize {
		clear(n.anonCache)
	}
	n.anonCache[c.IPPrefix] = m
	return m, m.kind != ""
}

// anonymousFlags names the flags of an anonymous-IP record, e.g.
// "anonymous_vpn,hosting_provider".
func anonymousFlags(r *geoip2.AnonymousIP) string {
	var s string
	add := func(set bool, name string) {
		if !set {
			return
		}
		if s != "" {
			s += ","
		}
		s += name
	}
	add(r.IsAnonymousVPN, "anonymous_vpn")
	add(r.IsPublicProxy, "public_proxy")
	add(r.IsResidentialProxy, "residential_proxy")
	add(r.IsTorExitNode, "tor_exit_node")
	add(r.IsHostingProvider, "hosting_provider")
	if s == "" {
		s = "anonymous"
	}
	return s
}
