package geotest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sessionmon/sessionmon/internal/geo/geowrite"
)

// Facts is what a test database says about one network.
type Facts = geowrite.Facts

// geoFields are the client fields Facts carries, as an event spells them.
var geoFields = []string{"country", "city", "lat", "lon", "accuracy_km", "asn"}

// Paths are the databases WriteDatabases wrote; a kind without records is
// not written and its path is "".
type Paths = geowrite.Paths

// WriteDatabases writes, into a new temporary directory, a GeoIP2-City, a
// GeoLite2-ASN and a GeoIP2-Anonymous-IP database holding nets (CIDR →
// facts), as MaxMind lays them out (see geowrite.Write), so that tests
// resolve through the same code as production.
func WriteDatabases(t testing.TB, nets map[string]Facts) Paths {
	t.Helper()
	p, err := geowrite.Write(t.TempDir(), nets)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	return p
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
