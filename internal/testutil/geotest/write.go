package geotest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Facts is what a test database says about one network.
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

// geoFields are the client fields Facts carries, as an event spells them.
var geoFields = []string{"country", "city", "lat", "lon", "accuracy_km", "asn"}

// Paths are the databases WriteDatabases wrote; a kind without records is
// not written and its path is "".
type Paths struct {
	City, ASN, Anonymous string
}

// WriteDatabases writes, into a new temporary directory, a GeoIP2-City, a
// GeoLite2-ASN and a GeoIP2-Anonymous-IP database holding nets (CIDR →
// facts), as MaxMind lays them out, so that tests resolve through the same
// code as production.
func WriteDatabases(t testing.TB, nets map[string]Facts) Paths {
	t.Helper()
	dir := t.TempDir()
	city := newTree(t, "GeoIP2-City")
	asn := newTree(t, "GeoLite2-ASN")
	anon := newTree(t, "GeoIP2-Anonymous-IP")
	var hasCity, hasASN, hasAnon bool
	for _, cidr := range slices.Sorted(maps.Keys(nets)) {
		f := nets[cidr]
		_, ipnet, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatalf("geotest: %v", err)
		}
		if rec := cityRecord(f); len(rec) > 0 {
			insert(t, city, ipnet, rec)
			hasCity = true
		}
		if f.ASN != 0 {
			insert(t, asn, ipnet, mmdbtype.Map{
				"autonomous_system_number":       mmdbtype.Uint32(f.ASN),
				"autonomous_system_organization": mmdbtype.String(f.ASOrg),
			})
			hasASN = true
		}
		if len(f.Anonymous) > 0 {
			rec := mmdbtype.Map{"is_anonymous": mmdbtype.Bool(true)}
			for _, flag := range f.Anonymous {
				rec[mmdbtype.String("is_"+flag)] = mmdbtype.Bool(true)
			}
			insert(t, anon, ipnet, rec)
			hasAnon = true
		}
	}
	var out Paths
	if hasCity {
		out.City = write(t, city, filepath.Join(dir, "city.mmdb"))
	}
	if hasASN {
		out.ASN = write(t, asn, filepath.Join(dir, "asn.mmdb"))
	}
	if hasAnon {
		out.Anonymous = write(t, anon, filepath.Join(dir, "anonymous.mmdb"))
	}
	return out
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

func newTree(t testing.TB, dbType string) *mmdbwriter.Tree {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, RecordSize: 28})
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	return tree
}

func insert(t testing.TB, tree *mmdbwriter.Tree, n *net.IPNet, rec mmdbtype.Map) {
	t.Helper()
	if err := tree.Insert(n, rec); err != nil {
		t.Fatalf("geotest: insert %s: %v", n, err)
	}
}

func write(t testing.TB, tree *mmdbwriter.Tree, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatalf("geotest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: %v", err)
	}
	return path
}

// StripLocation removes the client location and network fields (country,
// city, lat, lon, accuracy_km, asn) from every event of ndjson, leaving
// what the SDK sends (ip_prefix, ip_hash, device, user agent), and returns
// the stripped events with the facts removed per ip_prefix. It fails the
// test when an event has such fields without an ip_prefix, or when two
// events give one prefix different facts (only a superset is allowed: the
// richest facts are kept), since a database could not reproduce either.
// located reports whether any event had such fields.
func StripLocation(t testing.TB, ndjson []byte) (stripped []byte, nets map[string]Facts, located bool) {
	t.Helper()
	nets = map[string]Facts{}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("geotest: %v", err)
		}
		if raw, ok := ev["client"]; ok {
			var client map[string]json.RawMessage
			if err := json.Unmarshal(raw, &client); err != nil {
				t.Fatalf("geotest: %v", err)
			}
			var f Facts
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatalf("geotest: %v", err)
			}
			had := false
			for _, k := range geoFields {
				if _, ok := client[k]; ok {
					had = true
					delete(client, k)
				}
			}
			if had {
				located = true
				var prefix string
				if err := json.Unmarshal(client["ip_prefix"], &prefix); err != nil || prefix == "" {
					t.Fatalf("geotest: an event has a location but no ip_prefix: %s", line)
				}
				nets[prefix] = merge(t, prefix, nets[prefix], f)
			}
			b, err := json.Marshal(client)
			if err != nil {
				t.Fatalf("geotest: %v", err)
			}
			ev["client"] = b
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("geotest: %v", err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("geotest: %v", err)
	}
	return out.Bytes(), nets, located
}

// merge returns the richer of two fact sets of one prefix, failing when
// they contradict each other.
func merge(t testing.TB, prefix string, a, b Facts) Facts {
	t.Helper()
	if covers(a, b) {
		return a
	}
	if covers(b, a) {
		return b
	}
	t.Fatalf("geotest: events disagree about %s: %+v and %+v", prefix, a, b)
	return Facts{}
}

// covers reports whether every field set in b is set to the same value in a.
func covers(a, b Facts) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range vb.NumField() {
		fb := vb.Field(i)
		if fb.IsZero() {
			continue
		}
		fa := va.Field(i)
		if fb.Kind() == reflect.Pointer {
			if fa.IsNil() || fa.Elem().Interface() != fb.Elem().Interface() {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			return false
		}
	}
	return true
}
