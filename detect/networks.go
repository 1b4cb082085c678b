package detect

import (
	"net/netip"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// NetworkKind says why a network's geolocation does not tell where a user
// is.
type NetworkKind string

// Network kinds. The first four are configured in networks:; anonymous
// comes from the anonymous-IP database (geo_anonymous_db) through
// enrichment.
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
	// note is the configured note.
	note string
	// classes are the anonymous-network classes of kind anonymous.
	classes schemas.Anonymity
}

// details is the alert details' "network" object: kind, and the note or
// the anonymous-network classes.
func (m networkMatch) details() map[string]any {
	d := map[string]any{"kind": string(m.kind)}
	if m.note != "" {
		d["note"] = m.note
	}
	if m.classes != 0 {
		d["classes"] = m.classes.Names()
	}
	return d
}

// text names the network for a summary: "a known vpn network", "an
// anonymous network (tor_exit)".
func (m networkMatch) text() string {
	if m.kind == NetworkAnonymous {
		return "an anonymous network (" + m.classes.String() + ")"
	}
	return "a known " + string(m.kind) + " network"
}

// Networks classifies client networks: the configured networks: list (by
// ip_prefix or ASN, each until its expiry in event time) and the
// anonymous-network classes enrichment found (schemas.Client.Anonymity). It
// holds no state of its own and is safe for concurrent use.
type Networks struct {
	entries []Network
	// hasPrefixes says whether any entry has a prefix, so events need not
	// have theirs parsed otherwise.
	hasPrefixes bool
}

// newNetworks returns the classifier of the configured networks.
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
// narrower than the client's /24 cannot be told apart and does not match);
// configured entries win over the anonymous-IP database, so that a
// company's own VPN is named as configured.
func (n *Networks) classify(c *schemas.Client, at time.Time) (networkMatch, bool) {
	if c == nil {
		return networkMatch{}, false
	}
	if n != nil && len(n.entries) > 0 {
		var prefix netip.Prefix
		if c.IPPrefix != "" && n.hasPrefixes {
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
	}
	if c.Anonymity != 0 {
		return networkMatch{kind: NetworkAnonymous, classes: c.Anonymity}, true
	}
	return networkMatch{}, false
}

// anonymityOf returns c's anonymous-network classes (none for nil).
func anonymityOf(c *schemas.Client) schemas.Anonymity {
	if c == nil {
		return 0
	}
	return c.Anonymity
}
