// Package simulate generates realistic, labelled session traffic for
// measuring detection quality: a seeded user base of three apps whose events
// are shaped as the SDK sends them (a network prefix, an address hash, a
// pseudonymous device and user agent; no location, no ASN), GeoIP databases
// describing every network the traffic comes from, and a list of the
// attacks mixed into it (labels).
//
// The benign population holds the people who confuse detectors in real
// life: an office behind one NAT whose employees mistype passwords,
// corporate-VPN users whose shared egress geolocates far away, mobile users
// whose carrier gateways geolocate to different cities, people using a
// laptop at home and a phone on mobile data at once, travellers on real
// flights, clients retrying a refresh after a network error, and ordinary
// logouts. The attacks are what a real attacker against a real app
// produces: impossible travel, session hijacking, token reuse, slow and
// burst brute force, distributed and burst credential stuffing, and a few
// app policy violations.
//
// Generate is deterministic: the same Config gives the same events, labels
// and networks, byte for byte. Evaluate (quality.go) scores alerts against
// the labels.
package simulate

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/geo/geowrite"
	"github.com/sessionmon/sessionmon/schemas"
)

// Defaults and bounds of Config.
const (
	DefaultUsers = 3000
	DefaultDays  = 2
	// MinUsers is the smallest user base: the office, the VPN and the
	// attacks need people.
	MinUsers = 200
	MaxUsers = 1_000_000
	MaxDays  = 30
)

// DefaultStart is the first simulated day (a Monday), midnight UTC.
var DefaultStart = time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)

// Config says what to simulate.
type Config struct {
	// Seed makes the traffic: the same seed gives the same data.
	Seed int64
	// Users is the size of the user base (default DefaultUsers).
	Users int
	// Days is how many days of traffic to generate (default DefaultDays).
	Days int
	// Start is the first day's midnight (default DefaultStart).
	Start time.Time
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	return c
}

// Validate names every setting out of bounds.
func (c Config) Validate() error {
	var errs []error
	if c.Users < MinUsers || c.Users > MaxUsers {
		errs = append(errs, fmt.Errorf("users: must be between %d and %d (got %d)", MinUsers, MaxUsers, c.Users))
	}
	if c.Days < 1 || c.Days > MaxDays {
		errs = append(errs, fmt.Errorf("days: must be between 1 and %d (got %d)", MaxDays, c.Days))
	}
	return errors.Join(errs...)
}

// Dataset is a generated simulation.
type Dataset struct {
	// Events are in event-time order.
	Events []*schemas.Event
	// Labels are the attacks in Events.
	Labels Labels
	// Networks are the GeoIP facts of every network (CIDR → facts), for
	// geowrite.Write.
	Networks map[string]geowrite.Facts
}

// Generate simulates cfg's user base and attacks.
func Generate(cfg Config) (*Dataset, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := newSim(cfg)
	s.population()
	for _, u := range s.users {
		s.live(u)
	}
	s.attacks()
	s.labelTravel()
	slices.SortStableFunc(s.events, func(a, b *schemas.Event) int { return a.Time.Compare(b.Time.Time) })
	labels := Labels{Seed: cfg.Seed, Users: len(s.users), Attacks: s.labels}
	slices.SortStableFunc(labels.Attacks, func(a, b Label) int {
		if c := strings.Compare(a.Detector, b.Detector); c != 0 {
			return c
		}
		return a.From.Compare(b.From)
	})
	return &Dataset{Events: s.events, Labels: labels, Networks: s.world.alloc.nets}, nil
}

// sim is the generator's state.
type sim struct {
	cfg    Config
	rnd    *rand.Rand
	world  *world
	users  []*user
	events []*schemas.Event
	n      int // events made, for ids
	end    time.Time
	// sessions are the benign sessions made, for the attacks to steal.
	sessions []*session
	labels   []Label
	// cur is the attack being generated (nil: benign traffic).
	cur *attack
	// attacks are the attacks generated, for labelTravel.
	done []*attack
}

func newSim(cfg Config) *sim {
	rnd := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5e551091))
	return &sim{
		cfg: cfg, rnd: rnd, world: newWorld(rnd),
		end: cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour),
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// pseudonym returns a fresh pseudonym in the SDK's form (key id, then a
// keyed hash).
func (s *sim) pseudonym() string {
	b := make([]byte, 0, 25)
	b = append(b, "k1:"...)
	for range 22 {
		b = append(b, alnum[s.rnd.IntN(len(alnum))])
	}
	return string(b)
}

// between returns a random duration in [lo, hi).
func (s *sim) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rnd.Int64N(int64(hi-lo)))
}

// chance reports true with probability p.
func (s *sim) chance(p float64) bool { return s.rnd.Float64() < p }

// client is what the SDK sends about a request from device d on n: the
// network, a keyed hash of the host address, the device and user agent. A
// device keeps its address on a network (a home router's, a NAT's).
func (s *sim) client(d *device, n *network) *schemas.Client {
	host := 1 + int(mix(fnv64(d.id), netKey(n))%254)
	return &schemas.Client{Device: d.id, IPPrefix: n.prefix, IPHash: ipHash(n, host), UserAgent: d.ua}
}

// ipHash is the keyed hash the SDK makes of host on n.
func ipHash(n *network, host int) string {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], mix(netKey(n)<<8|uint64(host), 0x1b4a5e))
	return "ih:" + hex.EncodeToString(raw[:])
}

func netKey(n *network) uint64 {
	return uint64(n.base[0])<<16 | uint64(n.base[1])<<8 | uint64(n.base[2])
}

// fnv64 is FNV-1a of s.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// emit adds an event at t, unless t is outside the simulated days.
func (s *sim) emit(e *schemas.Event, t time.Time) *schemas.Event {
	if t.Before(s.cfg.Start) || !t.Before(s.end) {
		return nil
	}
	s.n++
	if s.cur != nil {
		s.cur.events = append(s.cur.events, e)
	}
	e.ID = "sim-" + strconv.Itoa(s.n)
	e.SchemaVersion = schemas.SchemaVersion
	e.Time = schemas.Time{Time: t.UTC().Truncate(time.Millisecond)}
	s.events = append(s.events, e)
	return e
}

// timePtr returns t as a schema time.
func timePtr(t time.Time) *schemas.Time {
	v := schemas.Time{Time: t.UTC().Truncate(time.Millisecond)}
	return &v
}

func boolPtr(b bool) *bool { return &b }
