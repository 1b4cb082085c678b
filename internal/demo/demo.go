// Package demo generates realistic synthetic session traffic through the
// SDK: many users who log in, rotate tokens, work and log out, plus a few
// attacks and policy violations of every kind sessionmon's detectors look
// for. The same seed gives the same traffic.
//
// Events are dated in the recent past (a timeline ending about now), so the
// dashboard's last-24-hours views fill at once.
//
// # Where users are
//
// With Options.Networks (from Networks, which finds them in the GeoIP city
// database sessionmon enriches with), the traffic carries what a real app
// sends through the SDK: a client's ip_prefix and ip_hash, made by the
// SDK's RequestInspector from an address in a network the database places
// in the user's city, and its device and user agent, never a location or
// an ASN. sessionmon's enrichment finds where users are, as it does in
// production, so impossible travel and session hijacks are judged on
// GeoIP locations. Without Networks the demo supplies the location itself
// (lat, lon, country, city, accuracy and ASN), as an app that knows it
// would.
package demo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// App is the app name demo traffic is published as.
const App = "demo-shop"

// Options shape the traffic.
type Options struct {
	// Users is the number of ordinary users.
	Users int
	// Seed makes the traffic repeatable.
	Seed int64
	// End is the time of the last event; the timeline spans Span before it.
	End  time.Time
	Span time.Duration
	// Networks holds, in the order of Places, IPv4 networks (/24 or
	// wider) in each of the demo's cities, from Networks. Set, clients
	// carry only an ip_prefix (a /24 drawn from one of the city's
	// networks) and ip_hash, as the SDK sends them; nil, they carry the
	// demo's own location.
	Networks [][]netip.Prefix
}

// city is a place demo users live in or travel to. Names are spelled as
// DB-IP spells them.
type city struct {
	name, country string
	lat, lon      float64
	// asn and prefix (an IPv4 /16 the city's /24s are drawn from) are
	// what the demo sends without Options.Networks.
	asn    uint32
	prefix string
}

// The demo's cities are far enough apart for any move between two of them
// within an hour to be impossible travel. Attacks name them by index.
var cities = []city{
	{"Berlin", "DE", 52.52, 13.405, 3320, "198.18.0.0"},
	{"Paris", "FR", 48.8566, 2.3522, 3215, "198.19.0.0"},
	{"London", "GB", 51.5072, -0.1276, 2856, "192.0.2.0"},
	{"Madrid", "ES", 40.4168, -3.7038, 3352, "198.51.100.0"},
	{"New York", "US", 40.7128, -74.006, 7922, "203.0.113.0"},
	{"Sao Paulo", "BR", -23.5505, -46.6333, 28573, "100.64.0.0"},
	{"Sydney", "AU", -33.8688, 151.2093, 1221, "100.65.0.0"},
	{"Tokyo", "JP", 35.6762, 139.6503, 2516, "100.66.0.0"},
	{"Lagos", "NG", 6.5244, 3.3792, 29465, "100.67.0.0"},
	{"Mumbai", "IN", 19.076, 72.8777, 55836, "100.68.0.0"},
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
}

// placeRadiusKM is how far from a city's centre a network the database
// does not name after the city may be (a district, a suburb).
const placeRadiusKM = 30

// networksPerCity is how many networks Networks looks for in each city:
// enough /24s that a city's ordinary users, typing a wrong password now
// and then, do not look like credential stuffing from one network even
// with tens of thousands of them.
const networksPerCity = 16

// clientPort is the source port of the demo's requests.
const clientPort = 50123

// Places returns the demo's cities, in the order Options.Networks follows.
func Places() []geo.Place {
	out := make([]geo.Place, len(cities))
	for i, c := range cities {
		out[i] = geo.Place{Country: c.country, City: c.name, Lat: c.lat, Lon: c.lon, RadiusKM: placeRadiusKM}
	}
	return out
}

// Networks finds networks in each of the demo's cities in r's city
// databases, for Options.Networks (see geo.Resolver.FindNetworks). It
// fails with geo.ErrNoCityDatabase when r has none, and names the cities
// the databases have no network in.
func Networks(ctx context.Context, r *geo.Resolver) ([][]netip.Prefix, error) {
	places := Places()
	networks, err := r.FindNetworks(ctx, places, networksPerCity)
	if err != nil {
		return nil, fmt.Errorf("find networks of the demo's cities: %w", err)
	}
	var missing []string
	for i, n := range networks {
		if len(n) == 0 {
			missing = append(missing, places[i].City+" ("+places[i].Country+")")
		}
	}
	if len(missing) > 0 {
		return nil, errors.New("the geo city databases place no network in " + strings.Join(missing, ", "))
	}
	return networks, nil
}

// policy is the session policy the demo app declares.
var policy = &sdk.Policy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 8 * 3600, ReauthWindowS: 300}

// gen builds the timeline.
type gen struct {
	p  *sdk.Pseudonymizer
	ri *sdk.RequestInspector
	// networks are Options.Networks by city name; nil without them.
	networks map[string][]netip.Prefix
	rnd      *rand.Rand
	start    time.Time
	span     time.Duration
	events   []sdk.Event
	seq      int
}

// Generate returns the demo timeline, ordered by event time. It panics
// when o.Networks is set but does not hold IPv4 networks of /24 or wider
// for every place.
func Generate(p *sdk.Pseudonymizer, o Options) []sdk.Event {
	if o.Span <= 0 {
		o.Span = 6 * time.Hour
	}
	if o.End.IsZero() {
		o.End = time.Now()
	}
	// Without trusted proxies the inspector takes the request's peer as
	// the client, as it does for an app facing the internet.
	ri, err := sdk.NewRequestInspector(p, nil)
	if err != nil {
		panic(fmt.Sprintf("demo: %v", err))
	}
	g := &gen{
		p:     p,
		ri:    ri,
		rnd:   rand.New(rand.NewPCG(uint64(o.Seed), 0x5e5510)),
		start: o.End.Add(-o.Span),
		span:  o.Span,
	}
	if o.Networks != nil {
		if len(o.Networks) != len(cities) {
			panic(fmt.Sprintf("demo: %d networks for %d places", len(o.Networks), len(cities)))
		}
		g.networks = make(map[string][]netip.Prefix, len(cities))
		for i, networks := range o.Networks {
			if len(networks) == 0 {
				panic(fmt.Sprintf("demo: no network for %s", cities[i].name))
			}
			for _, n := range networks {
				if !n.IsValid() || !n.Addr().Is4() || n.Bits() > 24 {
					panic(fmt.Sprintf("demo: network %q of %s is not an IPv4 network of /24 or wider", n, cities[i].name))
				}
				g.networks[cities[i].name] = append(g.networks[cities[i].name], n.Masked())
			}
		}
	}
	for u := range o.Users {
		g.ordinaryUser(u)
	}
	g.attacks(o.Users)
	sort.SliceStable(g.events, func(i, j int) bool { return g.events[i].Time.Before(g.events[j].Time) })
	return g.events
}

func (g *gen) raw(kind string) string {
	g.seq++
	return fmt.Sprintf("demo-%s-%d", kind, g.seq)
}

func (g *gen) add(e sdk.Event) {
	g.events = append(g.events, e)
}

// client returns a client block of device in place c: what the SDK's
// RequestInspector makes of a request from an address in c's network with
// Options.Networks, the demo's own location without them.
func (g *gen) client(c city, device sdk.Pseudonym, ua string) *sdk.ClientInfo {
	if networks, ok := g.networks[c.name]; ok {
		network := networks[g.rnd.IntN(len(networks))]
		r := &http.Request{
			RemoteAddr: netip.AddrPortFrom(g.addrIn(network), clientPort).String(),
			Header:     http.Header{"User-Agent": {ua}},
		}
		ci := g.ri.ClientInfo(r)
		ci.Device = device
		return &ci
	}
	base := netip.MustParseAddr(c.prefix).As4()
	base[2] = byte(g.rnd.IntN(256))
	addr := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(1 + g.rnd.IntN(250))})
	lat, lon := c.lat+g.rnd.Float64()*0.05, c.lon+g.rnd.Float64()*0.05
	return &sdk.ClientInfo{
		Device:     device,
		IPPrefix:   netip.PrefixFrom(addr, 24),
		IPHash:     g.p.IPHash(addr),
		ASN:        c.asn,
		Country:    c.country,
		City:       c.name,
		Lat:        &lat,
		Lon:        &lon,
		AccuracyKM: 20,
		UserAgent:  ua,
	}
}

// addrIn returns a host address in a /24 drawn from network (/24 or wider).
func (g *gen) addrIn(network netip.Prefix) netip.Addr {
	a := network.Addr().As4()
	n := binary.BigEndian.Uint32(a[:])
	n += uint32(g.rnd.IntN(1<<(24-network.Bits()))) << 8
	n += uint32(1 + g.rnd.IntN(250))
	binary.BigEndian.PutUint32(a[:], n)
	return netip.AddrFrom4(a)
}

// secure returns the cookie a well-behaved app sets.
func secure() *sdk.Cookie {
	t := true
	return &sdk.Cookie{Name: "__Host-sid", Secure: &t, HTTPOnly: &t, SameSite: sdk.SameSiteLax}
}

// session is one user's session in the timeline.
type session struct {
	subject, id, device sdk.Pseudonym
	client              *sdk.ClientInfo
	at                  time.Time
	access, refresh     sdk.Pseudonym
	family              sdk.Pseudonym
}

// login emits a successful login and a rotated session, with tokens.
func (g *gen) login(subject sdk.Pseudonym, c city, deviceRaw string, at time.Time) *session {
	device := g.p.Device(deviceRaw)
	s := &session{
		subject: subject,
		id:      g.p.Session(g.raw("session")),
		device:  device,
		client:  g.client(c, device, userAgents[g.rnd.IntN(len(userAgents))]),
		at:      at,
	}
	mfa := g.rnd.IntN(3) > 0
	auth := &sdk.Auth{Method: "password", MFA: &mfa, LastAuthAt: at}
	g.add(sdk.Event{Type: schemas.LoginSucceeded, Time: at, Subject: subject, Client: s.client, Auth: auth})
	g.add(sdk.Event{Type: schemas.SessionStarted, Time: at.Add(20 * time.Millisecond), Subject: subject, Session: s.id,
		PreviousSession: g.p.Session(g.raw("anon")), Client: s.client, Auth: auth, Cookie: secure(), Policy: policy})
	s.family = g.p.TokenID(g.raw("family"))
	s.access = g.p.TokenID(g.raw("access"))
	s.refresh = g.p.TokenID(g.raw("refresh"))
	g.issue(s, at.Add(40*time.Millisecond), s.access, sdk.Pseudonym{}, time.Hour, []string{"sub", "iat", "exp", "scope"})
	return s
}

// issue emits token.issued for an access token and its refresh token.
func (g *gen) issue(s *session, at time.Time, access, parent sdk.Pseudonym, life time.Duration, claims []string) {
	g.add(sdk.Event{Type: schemas.TokenIssued, Time: at, Subject: s.subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: access, Kind: schemas.TokenAccess, IssuedAt: at, ExpiresAt: at.Add(life), KID: "key-2026-11", Alg: "ES256", Claims: claims}})
	g.add(sdk.Event{Type: schemas.TokenIssued, Time: at.Add(time.Millisecond), Subject: s.subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: s.refresh, Kind: schemas.TokenRefresh, Family: s.family, Parent: parent, IssuedAt: at, ExpiresAt: at.Add(14 * 24 * time.Hour), KID: "key-2026-11", Alg: "ES256"}})
}

// work emits activity and token use every few minutes for d.
func (g *gen) work(s *session, from time.Time, d time.Duration) time.Time {
	t := from
	for t.Before(from.Add(d)) {
		t = t.Add(time.Duration(30+g.rnd.IntN(600)) * time.Second)
		g.add(sdk.Event{Type: schemas.SessionActivity, Time: t, Subject: s.subject, Session: s.id, Client: s.client})
		g.add(sdk.Event{Type: schemas.TokenUsed, Time: t.Add(5 * time.Millisecond), Subject: s.subject, Session: s.id, Client: s.client,
			Token: &sdk.Token{ID: s.access, Kind: schemas.TokenAccess, KID: "key-2026-11"}})
	}
	return t
}

// rotate emits a refresh-token rotation.
func (g *gen) rotate(s *session, at time.Time) {
	parent := s.refresh
	s.refresh = g.p.TokenID(g.raw("refresh"))
	s.access = g.p.TokenID(g.raw("access"))
	g.add(sdk.Event{Type: schemas.TokenRefreshed, Time: at, Subject: s.subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: s.refresh, Kind: schemas.TokenRefresh, Family: s.family, Parent: parent, IssuedAt: at, ExpiresAt: at.Add(14 * 24 * time.Hour), KID: "key-2026-11", Alg: "ES256"}})
	g.add(sdk.Event{Type: schemas.TokenIssued, Time: at.Add(time.Millisecond), Subject: s.subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: s.access, Kind: schemas.TokenAccess, IssuedAt: at, ExpiresAt: at.Add(time.Hour), KID: "key-2026-11", Alg: "ES256", Claims: []string{"sub", "iat", "exp", "scope"}}})
}

func (g *gen) logout(s *session, at time.Time) {
	g.add(sdk.Event{Type: schemas.TokenRevoked, Time: at, Subject: s.subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: s.refresh, Kind: schemas.TokenRefresh, Family: s.family}})
	g.add(sdk.Event{Type: schemas.SessionEnded, Time: at.Add(time.Millisecond), Subject: s.subject, Session: s.id, Client: s.client, Reason: "logout"})
}

// ordinaryUser is a user with one or two normal sessions, an occasional
// typo before a good login, a re-authentication before a sensitive action.
func (g *gen) ordinaryUser(u int) {
	subject := g.p.Subject(fmt.Sprintf("demo-user-%d@example.com", u))
	home := cities[u%len(cities)]
	at := g.start.Add(time.Duration(g.rnd.Int64N(int64(g.span * 2 / 3))))
	if g.rnd.IntN(8) == 0 {
		g.add(sdk.Event{Type: schemas.LoginFailed, Time: at.Add(-20 * time.Second), Subject: subject,
			Client: g.client(home, g.p.Device(fmt.Sprintf("demo-device-%d", u)), userAgents[0]), Reason: "bad_password"})
	}
	s := g.login(subject, home, fmt.Sprintf("demo-device-%d", u), at)
	t := g.work(s, at, time.Duration(5+g.rnd.IntN(40))*time.Minute)
	g.rotate(s, t.Add(time.Minute))
	t = g.work(s, t.Add(time.Minute), time.Duration(5+g.rnd.IntN(20))*time.Minute)
	if g.rnd.IntN(4) == 0 {
		g.add(sdk.Event{Type: schemas.ReauthSucceeded, Time: t.Add(time.Second), Subject: subject, Session: s.id, Client: s.client,
			Auth: &sdk.Auth{Method: "password", LastAuthAt: t.Add(time.Second)}})
		g.add(sdk.Event{Type: schemas.ActionPerformed, Time: t.Add(30 * time.Second), Subject: subject, Session: s.id, Client: s.client,
			Auth: &sdk.Auth{LastAuthAt: t.Add(time.Second)}, Action: &sdk.Action{Name: "change_email", Sensitive: true}})
		t = t.Add(time.Minute)
	}
	g.logout(s, t.Add(time.Minute))
}
