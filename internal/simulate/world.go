package simulate

import (
	"fmt"
	"math/rand/v2"

	"github.com/sessionmon/sessionmon/internal/geo/geowrite"
)

// city is a real place: the coordinates GeoIP gives its networks.
type city struct {
	name     string
	country  string
	lat, lon float64
	// utc is the local time's offset from UTC in hours (standard time):
	// people are active in their daytime.
	utc int
}

// Cities of the simulated user base and of its attackers.
var (
	citiesDE = []city{
		{"Berlin", "DE", 52.5200, 13.4050, 1}, {"Hamburg", "DE", 53.5511, 9.9937, 1}, {"Munich", "DE", 48.1374, 11.5755, 1},
		{"Cologne", "DE", 50.9375, 6.9603, 1}, {"Frankfurt am Main", "DE", 50.1109, 8.6821, 1}, {"Stuttgart", "DE", 48.7758, 9.1829, 1},
		{"Leipzig", "DE", 51.3397, 12.3731, 1}, {"Dresden", "DE", 51.0504, 13.7373, 1},
	}
	citiesFR = []city{
		{"Paris", "FR", 48.8566, 2.3522, 1}, {"Lyon", "FR", 45.7640, 4.8357, 1}, {"Marseille", "FR", 43.2965, 5.3698, 1},
		{"Toulouse", "FR", 43.6047, 1.4442, 1}, {"Lille", "FR", 50.6292, 3.0573, 1}, {"Bordeaux", "FR", 44.8378, -0.5792, 1},
	}
	citiesGB = []city{
		{"London", "GB", 51.5074, -0.1278, 0}, {"Manchester", "GB", 53.4808, -2.2426, 0}, {"Birmingham", "GB", 52.4862, -1.8904, 0},
		{"Glasgow", "GB", 55.8642, -4.2518, 0}, {"Leeds", "GB", 53.8008, -1.5491, 0},
	}
	citiesUS = []city{
		{"New York", "US", 40.7128, -74.0060, -5}, {"Chicago", "US", 41.8781, -87.6298, -6}, {"Los Angeles", "US", 34.0522, -118.2437, -8},
		{"Seattle", "US", 47.6062, -122.3321, -8}, {"Austin", "US", 30.2672, -97.7431, -6}, {"Boston", "US", 42.3601, -71.0589, -5},
	}
	// ashburn is where the corporate VPN's egress geolocates: the
	// company's US data centre, far from most of its staff.
	ashburn = city{"Ashburn", "US", 39.0438, -77.4874, -5}
	// Attackers' hosting locations, on other continents than the users.
	attackCities = []city{
		{"Singapore", "SG", 1.3521, 103.8198, 8}, {"Sao Paulo", "BR", -23.5505, -46.6333, -3}, {"Lagos", "NG", 6.5244, 3.3792, 1},
		{"Jakarta", "ID", -6.2088, 106.8456, 7}, {"Ho Chi Minh City", "VN", 10.8231, 106.6297, 7}, {"Mumbai", "IN", 19.0760, 72.8777, 5},
	}
	// countries are the users' countries with their cities and share of
	// the user base (in percent).
	countries = []struct {
		cities []city
		share  int
	}{{citiesDE, 40}, {citiesFR, 20}, {citiesGB, 20}, {citiesUS, 20}}
)

// ASNs of the simulated networks: private-use numbers (RFC 6996), so that
// nothing points at a real operator.
const (
	asnBroadbandBase = 64600 // + country index * 2 + ISP (two per country)
	asnCarrierBase   = 64620 // + country index
	asnOffice        = 64630
	asnCorpVPN       = 64631
	asnHotel         = 64632
	asnHostingBase   = 64700 // + attack city index: hosting providers
	asnHostingLocal  = 64720 // + country index: a hosting provider in the users' countries
)

// network is one /24 the simulation uses, with what GeoIP says about it.
type network struct {
	prefix string
	// base is the network's first three octets, for host addresses.
	base  [3]byte
	facts geowrite.Facts
	// city is where the network really is (for an egress, its egress).
	city city
}

// allocator hands out distinct /24s from address ranges reserved for
// documentation, benchmarking and carrier-grade NAT, so that no simulated
// address is a real host's.
type allocator struct {
	ranges [][2][3]byte // [first, last] /24, inclusive
	next   int          // index into ranges
	cur    [3]byte
	nets   map[string]geowrite.Facts
	// byPrefix are the networks by CIDR.
	byPrefix map[string]*network
}

// Address ranges of the simulation's /24s, in order of use.
var simRanges = [][2][3]byte{
	{{100, 64, 0}, {100, 127, 255}}, // 100.64.0.0/10, shared address space
	{{198, 18, 0}, {198, 19, 255}},  // 198.18.0.0/15, benchmarking
}

// Documentation networks, used for the office and the corporate VPN.
var (
	officeNet = [3]byte{203, 0, 113}
	vpnNets   = [][3]byte{{192, 0, 2}, {198, 51, 100}}
)

func newAllocator() *allocator {
	return &allocator{ranges: simRanges, cur: simRanges[0][0], nets: map[string]geowrite.Facts{}, byPrefix: map[string]*network{}}
}

// take returns the next free /24.
func (a *allocator) take() [3]byte {
	for {
		if a.next >= len(a.ranges) {
			panic("simulate: out of address space")
		}
		b := a.cur
		r := a.ranges[a.next]
		if b == r[1] {
			a.next++
			if a.next < len(a.ranges) {
				a.cur = a.ranges[a.next][0]
			}
		} else {
			a.cur = inc(b)
		}
		if _, used := a.nets[prefixOf(b)]; !used {
			return b
		}
	}
}

func inc(b [3]byte) [3]byte {
	b[2]++
	if b[2] == 0 {
		b[1]++
		if b[1] == 0 {
			b[0]++
		}
	}
	return b
}

func prefixOf(b [3]byte) string { return fmt.Sprintf("%d.%d.%d.0/24", b[0], b[1], b[2]) }

// add records a network at b in c, with an accuracy radius, an ASN and
// anonymous-IP flags.
func (a *allocator) add(b [3]byte, c city, accuracyKM float64, asn uint32, org string, anon ...string) *network {
	lat, lon := c.lat, c.lon
	n := &network{prefix: prefixOf(b), base: b, city: c, facts: geowrite.Facts{
		Country: c.country, City: c.name, Lat: &lat, Lon: &lon, AccuracyKM: accuracyKM,
		ASN: asn, ASOrg: org, Anonymous: anon,
	}}
	a.nets[n.prefix] = n.facts
	a.byPrefix[n.prefix] = n
	return n
}

// world is every network of the simulation.
type world struct {
	alloc *allocator
	// broadband[country][city] are home broadband networks, two ISPs
	// mixed.
	broadband [][][]*network
	// carrier[country] are a mobile carrier's gateways: networks that
	// geolocate to a few cities of the country, coarsely.
	carrier [][]*network
	office  *network
	vpn     []*network
	// hotels[city name] are hotel and conference wifi networks.
	hotels map[string][]*network
	// hosting[i] are a hosting provider's networks in attackCities[i].
	hosting [][]*network
	// hostingLocal[country] are a hosting provider's networks in the
	// users' countries (the attacker near the victim).
	hostingLocal [][]*network
	// otherISP[country] are networks of a broadband ISP used by no
	// simulated user: an attacker next door.
	otherISP [][]*network
}

// newWorld lays out the networks.
func newWorld(rnd *rand.Rand) *world {
	w := &world{alloc: newAllocator(), hotels: map[string][]*network{}}
	a := w.alloc
	for ci, cn := range countries {
		var perCity [][]*network
		for _, c := range cn.cities {
			var nets []*network
			for isp := range 2 {
				asn := uint32(asnBroadbandBase + ci*2 + isp)
				for range 12 {
					nets = append(nets, a.add(a.take(), c, float64(10+rnd.IntN(41)), asn, fmt.Sprintf("Sim Broadband %s-%d", c.country, isp+1)))
				}
			}
			perCity = append(perCity, nets)
		}
		w.broadband = append(w.broadband, perCity)
		// A carrier's gateways sit in three or four cities; GeoIP places
		// them there with an accuracy radius of 100 to 500 km.
		var gws []*network
		for i, c := range cn.cities {
			if i >= 4 {
				break
			}
			for range 4 {
				gws = append(gws, a.add(a.take(), c, float64(100+rnd.IntN(401)), uint32(asnCarrierBase+ci), "Sim Mobile "+c.country))
			}
		}
		w.carrier = append(w.carrier, gws)
		var local, other []*network
		for range 6 {
			c := cn.cities[rnd.IntN(len(cn.cities))]
			local = append(local, a.add(a.take(), c, 20, uint32(asnHostingLocal+ci), "Sim Cloud "+c.country, "hosting_provider"))
			other = append(other, a.add(a.take(), cn.cities[0], 25, uint32(asnBroadbandBase+10+ci), "Sim Cable "+c.country))
		}
		w.hostingLocal = append(w.hostingLocal, local)
		w.otherISP = append(w.otherISP, other)
		for _, c := range cn.cities {
			for range 2 {
				w.hotels[c.name] = append(w.hotels[c.name], a.add(a.take(), c, 20, asnHotel, "Sim Hospitality Wifi"))
			}
		}
	}
	w.office = a.add(officeNet, citiesDE[1], 20, asnOffice, "Sim Business Fibre")
	for _, b := range vpnNets {
		w.vpn = append(w.vpn, a.add(b, ashburn, 50, asnCorpVPN, "Sim Corp Remote Access"))
	}
	w.vpn = append(w.vpn, a.add(a.take(), ashburn, 50, asnCorpVPN, "Sim Corp Remote Access"))
	for i, c := range attackCities {
		var nets []*network
		for range 200 {
			nets = append(nets, a.add(a.take(), c, 20, uint32(asnHostingBase+i), "Sim Hosting "+c.country, "hosting_provider"))
		}
		w.hosting = append(w.hosting, nets)
	}
	return w
}

// byPrefix returns the network of a CIDR, or nil.
func (w *world) byPrefix(prefix string) *network { return w.alloc.byPrefix[prefix] }
