package geo

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// role is what a database contributes to a Location.
type role int

const (
	roleCity role = iota + 1
	roleASN
	roleAnonymous
)

// shape is how a database lays out its records.
type shape int

const (
	// shapeMaxMind: GeoIP2/GeoLite2 City and Country records (nested
	// city.names.en, country.iso_code, location.*), also written by DB-IP's
	// own MaxMind-compatible downloads.
	shapeMaxMind shape = iota + 1
	// shapeFlat: the ip-location-db layout (country_code, city, latitude,
	// longitude as float32, no accuracy radius), one file per IP version.
	shapeFlat
	// shapeASN: autonomous_system_number and autonomous_system_organization.
	shapeASN
	// shapeAnonymous: the is_* flags of GeoIP2-Anonymous-IP.
	shapeAnonymous
)

type dbKind struct {
	role  role
	shape shape
}

// knownTypes maps the database_type of every mmdb file Open reads to what
// it holds. Country databases count as city databases without a city.
var knownTypes = map[string]dbKind{
	"GeoIP2-City":                         {roleCity, shapeMaxMind},
	"GeoLite2-City":                       {roleCity, shapeMaxMind},
	"GeoIP2-City-Africa":                  {roleCity, shapeMaxMind},
	"GeoIP2-City-Asia-Pacific":            {roleCity, shapeMaxMind},
	"GeoIP2-City-Europe":                  {roleCity, shapeMaxMind},
	"GeoIP2-City-North-America":           {roleCity, shapeMaxMind},
	"GeoIP2-City-South-America":           {roleCity, shapeMaxMind},
	"GeoIP2-Precision-City":               {roleCity, shapeMaxMind},
	"GeoIP-City-Redacted-US":              {roleCity, shapeMaxMind},
	"GeoIP2-Enterprise":                   {roleCity, shapeMaxMind},
	"GeoIP2-Country":                      {roleCity, shapeMaxMind},
	"GeoLite2-Country":                    {roleCity, shapeMaxMind},
	"DBIP-City-Lite":                      {roleCity, shapeMaxMind},
	"DBIP-Location (compat=City)":         {roleCity, shapeMaxMind},
	"DBIP-Country-Lite":                   {roleCity, shapeMaxMind},
	"DBIP-Country":                        {roleCity, shapeMaxMind},
	"city ipv4":                           {roleCity, shapeFlat},
	"city ipv6":                           {roleCity, shapeFlat},
	"country ipv4":                        {roleCity, shapeFlat},
	"country ipv6":                        {roleCity, shapeFlat},
	"GeoLite2-ASN":                        {roleASN, shapeASN},
	"DBIP-ASN-Lite (compat=GeoLite2-ASN)": {roleASN, shapeASN},
	"asn ipv4":                            {roleASN, shapeASN},
	"asn ipv6":                            {roleASN, shapeASN},
	"GeoIP2-Anonymous-IP":                 {roleAnonymous, shapeAnonymous},
}

func knownTypesList() string {
	return strings.Join(slices.Sorted(func(yield func(string) bool) {
		for k := range knownTypes {
			if !yield(k) {
				return
			}
		}
	}), ", ")
}

// database is one open mmdb file.
type database struct {
	path     string
	kind     dbKind
	ipv4Only bool
	reader   *maxminddb.Reader
}

func openDatabase(path string) (*database, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		var invalid maxminddb.InvalidDatabaseError
		if errors.As(err, &invalid) {
			return nil, fmt.Errorf("open geo database %s: %w: %w", path, ErrInvalidDatabase, err)
		}
		return nil, fmt.Errorf("open geo database %s: %w", path, err)
	}
	kind, ok := knownTypes[r.Metadata.DatabaseType]
	if !ok {
		// A reader failing to close has nothing to add to the type error.
		_ = r.Close()
		return nil, &DatabaseTypeError{Path: path, Type: r.Metadata.DatabaseType}
	}
	return &database{path: path, kind: kind, ipv4Only: r.Metadata.IPVersion == 4, reader: r}, nil
}

// lookup finds addr's record, or reports false when the database has none
// or cannot hold one (an IPv6 address in an IPv4-only file).
func (d *database) lookup(addr netip.Addr) (maxminddb.Result, bool) {
	if d.ipv4Only && !addr.Is4() {
		return maxminddb.Result{}, false
	}
	res := d.reader.Lookup(addr)
	return res, res.Err() == nil && res.Found()
}

// Records as decoded; only the fields a Location uses.

type maxMindRecord struct {
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Location struct {
		Latitude       *float64 `maxminddb:"latitude"`
		Longitude      *float64 `maxminddb:"longitude"`
		AccuracyRadius uint16   `maxminddb:"accuracy_radius"`
	} `maxminddb:"location"`
}

type flatRecord struct {
	CountryCode string   `maxminddb:"country_code"`
	City        string   `maxminddb:"city"`
	Latitude    *float64 `maxminddb:"latitude"`
	Longitude   *float64 `maxminddb:"longitude"`
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

type anonymousRecord struct {
	IsAnonymous        bool `maxminddb:"is_anonymous"`
	IsAnonymousVPN     bool `maxminddb:"is_anonymous_vpn"`
	IsHostingProvider  bool `maxminddb:"is_hosting_provider"`
	IsPublicProxy      bool `maxminddb:"is_public_proxy"`
	IsResidentialProxy bool `maxminddb:"is_residential_proxy"`
	IsTorExitNode      bool `maxminddb:"is_tor_exit_node"`
}

// place is what a city or country database says about an address.
type place struct {
	country, city string
	lat, lon      float64
	hasCoords     bool
	// radiusKM is 0 when the database gives none.
	radiusKM float64
}

func (d *database) place(res maxminddb.Result) (place, bool) {
	var p place
	switch d.kind.shape {
	case shapeMaxMind:
		var r maxMindRecord
		if err := res.Decode(&r); err != nil {
			return place{}, false
		}
		p.country = r.Country.ISOCode
		if p.country == "" {
			p.country = r.RegisteredCountry.ISOCode
		}
		p.city = r.City.Names.EN
		if r.Location.Latitude != nil && r.Location.Longitude != nil {
			p.lat, p.lon, p.hasCoords = *r.Location.Latitude, *r.Location.Longitude, true
			p.radiusKM = float64(r.Location.AccuracyRadius)
		}
	case shapeFlat:
		var r flatRecord
		if err := res.Decode(&r); err != nil {
			return place{}, false
		}
		p.country, p.city = r.CountryCode, r.City
		if r.Latitude != nil && r.Longitude != nil {
			p.lat, p.lon, p.hasCoords = fromFloat32(*r.Latitude), fromFloat32(*r.Longitude), true
		}
	default:
		return place{}, false
	}
	return p, p.country != "" || p.city != "" || p.hasCoords
}

// fromFloat32 returns the shortest decimal of a float32 widened to
// float64: ip-location-db stores coordinates as float32, and 51.5143
// should come out as 51.5143, not 51.51430130004883.
func fromFloat32(v float64) float64 {
	f := float32(v)
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return v
	}
	out, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		return v
	}
	return out
}
