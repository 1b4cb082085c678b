// Package geowrite writes GeoIP databases in MaxMind's format (a
// GeoIP2-City, a GeoLite2-ASN and a GeoIP2-Anonymous-IP .mmdb) from a table
// of networks and what is known about them, so that tests and the traffic
// simulator resolve their synthetic networks through the same code as
// production (internal/geo).
package geowrite

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Facts is what the databases say about one network.
type Facts struct {
	Country    string   `json:"country,omitempty"`
	City       string   `json:"city,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
	AccuracyKM float64  `json:"accuracy_km,omitempty"`
	ASN        uint32   `json:"asn,omitempty"`
	ASOrg      string   `json:"-"`
	// Anonymous are GeoIP2-Anonymous-IP flags without their "is_" prefix:
	// anonymous_vpn, hosting_provider, tor_exit_node, public_proxy,
	// residential_proxy.
	Anonymous []string `json:"-"`
}

// File names Write gives the databases in its directory.
const (
	CityFile      = "City.mmdb"
	ASNFile       = "ASN.mmdb"
	AnonymousFile = "Anonymous-IP.mmdb"
)

// Paths are the databases Write wrote; a kind without records is not
// written and its path is "".
type Paths struct {
	City, ASN, Anonymous string
}

// Write writes into dir (which must exist) a GeoIP2-City, a GeoLite2-ASN
// and a GeoIP2-Anonymous-IP database holding nets (CIDR → facts), as
// MaxMind lays them out, named CityFile, ASNFile and AnonymousFile.
// Reserved networks (documentation, benchmarking, shared address space)
// are allowed, so synthetic data never points at real networks.
func Write(dir string, nets map[string]Facts) (Paths, error) {
	city, err := newTree("GeoIP2-City")
	if err != nil {
		return Paths{}, err
	}
	asn, err := newTree("GeoLite2-ASN")
	if err != nil {
		return Paths{}, err
	}
	anon, err := newTree("GeoIP2-Anonymous-IP")
	if err != nil {
		return Paths{}, err
	}
	var hasCity, hasASN, hasAnon bool
	for _, cidr := range slices.Sorted(maps.Keys(nets)) {
		f := nets[cidr]
		_, ipnet, err := net.ParseCIDR(cidr)
		if err != nil {
			return Paths{}, fmt.Errorf("geowrite: network %q: %w", cidr, err)
		}
		if rec := cityRecord(f); len(rec) > 0 {
			if err := city.Insert(ipnet, rec); err != nil {
				return Paths{}, fmt.Errorf("geowrite: insert %s into the city database: %w", cidr, err)
			}
			hasCity = true
		}
		if f.ASN != 0 {
			rec := mmdbtype.Map{
				"autonomous_system_number":       mmdbtype.Uint32(f.ASN),
				"autonomous_system_organization": mmdbtype.String(f.ASOrg),
			}
			if err := asn.Insert(ipnet, rec); err != nil {
				return Paths{}, fmt.Errorf("geowrite: insert %s into the ASN database: %w", cidr, err)
			}
			hasASN = true
		}
		if len(f.Anonymous) > 0 {
			rec := mmdbtype.Map{"is_anonymous": mmdbtype.Bool(true)}
			for _, flag := range f.Anonymous {
				rec[mmdbtype.String("is_"+flag)] = mmdbtype.Bool(true)
			}
			if err := anon.Insert(ipnet, rec); err != nil {
				return Paths{}, fmt.Errorf("geowrite: insert %s into the anonymous-IP database: %w", cidr, err)
			}
			hasAnon = true
		}
	}
	var out Paths
	if hasCity {
		if out.City, err = write(city, filepath.Join(dir, CityFile)); err != nil {
			return Paths{}, err
		}
	}
	if hasASN {
		if out.ASN, err = write(asn, filepath.Join(dir, ASNFile)); err != nil {
			return Paths{}, err
		}
	}
	if hasAnon {
		if out.Anonymous, err = write(anon, filepath.Join(dir, AnonymousFile)); err != nil {
			return Paths{}, err
		}
	}
	return out, nil
}

func cityRecord(f Facts) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if f.Country != "" {
		rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(f.Country)}
	}
	if f.City != "" {
		rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(f.City)}}
	}
	if f.Lat != nil && f.Lon != nil {
		rec["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(*f.Lat),
			"longitude":       mmdbtype.Float64(*f.Lon),
			"accuracy_radius": mmdbtype.Uint16(uint16(f.AccuracyKM)),
		}
	}
	return rec
}

func newTree(dbType string) (*mmdbwriter.Tree, error) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, RecordSize: 28})
	if err != nil {
		return nil, fmt.Errorf("geowrite: new %s tree: %w", dbType, err)
	}
	return tree, nil
}

func write(tree *mmdbwriter.Tree, path string) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("geowrite: %w", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return "", fmt.Errorf("geowrite: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("geowrite: close %s: %w", path, err)
	}
	return path, nil
}
