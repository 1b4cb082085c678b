package geo

import (
	"context"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Place is a city to find networks in: by name, or, when no network
// carries that name, by distance from a point.
type Place struct {
	// Country is the ISO 3166-1 alpha-2 code the network must be placed
	// in (required).
	Country string
	// City is the city's name as the database spells it (compared without
	// regard to case): "Sao Paulo" in DB-IP, "São Paulo" in GeoLite2.
	City string
	// Lat, Lon and RadiusKM, when RadiusKM > 0, also accept a network
	// placed in Country within RadiusKM of Lat/Lon, whatever its city's
	// name; a network matching by name is preferred.
	Lat, Lon, RadiusKM float64
}

// findCheckEvery is how many networks FindNetworks walks between checks of
// its context.
const findCheckEvery = 1 << 16

// allIPv4 is the IPv4 address space, also the IPv4 subtree of an IPv6
// database.
var allIPv4 = netip.MustParsePrefix("0.0.0.0/0")

// FindNetworks walks the IPv4 networks of the city databases, in the order
// Lookup asks them, and returns for each place up to perPlace networks
// (below 1 counts as 1), each /24 or wider, that Lookup places in it: every
// address of such a network resolves to the same record, and to the
// place's country and city name, or to a point within its radius. Networks
// matching by name come first, in address order, then those matching by
// distance. It returns the networks in the order of places, none for a
// place no database has a network in.
//
// It stops as soon as every place has perPlace networks matching by name,
// so its time depends on how early in the address space the places appear
// (about 50 ms for one network in each of six big cities on five
// continents in DB-IP Lite's city files, 130 ms for 16 networks in each of
// ten); a place with fewer networks of its name costs a walk of every
// network (about four seconds for those files). Records are decoded once
// each, however many networks share them.
//
// Networks an anonymous-IP database classes as anonymous (VPN, hosting,
// proxy, Tor), in whole or in part, are passed over: their location is an
// exit's, not a user's. A network found in a database that a database
// before it overrides, in whole or in part, is passed over too.
//
// It fails with ErrNoCityDatabase when no city or country database is
// configured, ErrClosed after Close, and ctx's error when ctx ends first.
// Close waits for a running FindNetworks.
func (r *Resolver) FindNetworks(ctx context.Context, places []Place, perPlace int) ([][]netip.Prefix, error) {
	if !r.Enabled() || len(r.city) == 0 {
		return nil, ErrNoCityDatabase
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed.Load() {
		return nil, ErrClosed
	}
	w := newPlaceWalk(places, max(perPlace, 1))
	for i, db := range r.city {
		if err := w.walk(ctx, db, r.city[:i], r.anonymous); err != nil {
			return nil, err
		}
		if w.done() {
			break
		}
	}
	return w.result(), nil
}

// placeWalk is the state of one FindNetworks call.
type placeWalk struct {
	places []Place
	n      int // networks wanted per place
	// byName are the networks matching by name, nearby those matching
	// by distance only, each at most n a place.
	byName, nearby [][]netip.Prefix
	missing        int // places with fewer than n byName networks
}

func newPlaceWalk(places []Place, n int) *placeWalk {
	return &placeWalk{
		places:  places,
		n:       n,
		byName:  make([][]netip.Prefix, len(places)),
		nearby:  make([][]netip.Prefix, len(places)),
		missing: len(places),
	}
}

func (w *placeWalk) done() bool { return w.missing == 0 }

// result gives each place its networks matching by name, then enough of
// those nearby to make n.
func (w *placeWalk) result() [][]netip.Prefix {
	out := make([][]netip.Prefix, len(w.places))
	for i := range w.places {
		out[i] = append(w.byName[i], w.nearby[i][:min(len(w.nearby[i]), w.n-len(w.byName[i]))]...)
	}
	return out
}

// match is how a record matches each place.
type match []matchKind

// matchKind is how a record matches one place.
type matchKind uint8

const (
	noMatch matchKind = iota
	matchNearby
	matchName
)

// walk visits db's IPv4 networks until every place has n networks matching
// by name. before are the city databases Lookup asks ahead of db.
func (w *placeWalk) walk(ctx context.Context, db *database, before, anonymous []*database) error {
	// Networks sharing a record share its offset: decode each record
	// once. A nil entry is a record that matches no place.
	records := map[uintptr]match{}
	n := 0
	for res := range db.reader.NetworksWithin(allIPv4) {
		if n++; n%findCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if res.Err() != nil {
			// A damaged part of the tree: Lookup cannot answer there
			// either.
			continue
		}
		network := res.Prefix()
		if !network.Addr().Is4() || network.Bits() > 24 {
			continue
		}
		m, seen := records[res.Offset()]
		if !seen {
			m = w.matchRecord(db, res)
			records[res.Offset()] = m
		}
		if m == nil || !w.wanted(m) {
			continue
		}
		if overridden(network, before) || anonymousIn(network, anonymous) {
			continue
		}
		for i, how := range m {
			switch {
			case how == matchName && len(w.byName[i]) < w.n:
				w.byName[i] = append(w.byName[i], network)
				if len(w.byName[i]) == w.n {
					w.missing--
				}
			case how == matchNearby && len(w.byName[i])+len(w.nearby[i]) < w.n:
				w.nearby[i] = append(w.nearby[i], network)
			}
		}
		if w.done() {
			return nil
		}
	}
	return ctx.Err()
}

// wanted reports whether m would give a place a network it lacks.
func (w *placeWalk) wanted(m match) bool {
	for i, how := range m {
		have := len(w.byName[i])
		if have < w.n && (how == matchName || (how == matchNearby && have+len(w.nearby[i]) < w.n)) {
			return true
		}
	}
	return false
}

// matchRecord decodes a record and says how it matches each place, or nil
// when it matches none.
func (w *placeWalk) matchRecord(db *database, res maxminddb.Result) match {
	p, ok := db.place(res)
	if !ok || p.country == "" {
		return nil
	}
	var m match
	for i, want := range w.places {
		if !strings.EqualFold(want.Country, p.country) {
			continue
		}
		var how matchKind
		switch {
		case want.City != "" && strings.EqualFold(want.City, p.city):
			how = matchName
		case want.RadiusKM > 0 && p.hasCoords && DistanceKM(want.Lat, want.Lon, p.lat, p.lon) <= want.RadiusKM:
			how = matchNearby
		default:
			continue
		}
		if m == nil {
			m = make(match, len(w.places))
		}
		m[i] = how
	}
	return m
}

// overridden reports whether any database of before places any address of
// network, so that Lookup would answer from it rather than from a later
// database.
func overridden(network netip.Prefix, before []*database) bool {
	for _, db := range before {
		for res := range db.reader.NetworksWithin(network) {
			if res.Err() != nil {
				return true
			}
			if _, ok := db.place(res); ok {
				return true
			}
		}
	}
	return false
}

// anonymousIn reports whether an anonymous-IP database sets a flag on any
// address of network.
func anonymousIn(network netip.Prefix, anonymous []*database) bool {
	for _, db := range anonymous {
		if db.ipv4Only && !network.Addr().Is4() {
			continue
		}
		for res := range db.reader.NetworksWithin(network) {
			var a anonymousRecord
			if res.Err() != nil || (res.Decode(&a) == nil && a != (anonymousRecord{})) {
				return true
			}
		}
	}
	return false
}
