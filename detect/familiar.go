package detect

import (
	"fmt"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Familiar networks and devices.
//
// impossible_travel learns, from the traffic it sees, which locations say
// nothing about a person's movement:
//
//   - Shared egresses: an ip_prefix from which at least
//     shared_egress.min_subjects different signed-in subjects were active
//     (any event but login.failed), over at least shared_egress.min_span,
//     while at most shared_egress.max_failure_share of the sign-ins from
//     it failed (once it saw ten failures): a corporate VPN's or an
//     office's NAT, or a mobile carrier's gateway, whose geolocation is
//     where the exit is. The failure share keeps an attacker's network
//     from qualifying by signing in to a handful of stolen accounts among
//     many failed ones. A prefix also becomes one, a relay, when the
//     devices of shared_egress.min_jumpers subjects jumped impossibly fast
//     to or from it: a VPN switched on and off, whose location may be
//     anywhere. A network the anonymous-IP database names (hosting, VPN
//     service, proxy, Tor) is never learned: anyone can rent an address
//     there; configure a company's own VPN on such a network in networks:
//     instead. Shared egresses are learned over every app of the
//     deployment (an office's NAT is one whatever app its staff sign in
//     to, and a small app learns from the big ones) and listed with the
//     apps they were seen in.
//   - Familiar networks and devices, per subject: an ip_prefix, or an ASN
//     on no anonymous network, the subject was active on in at least
//     familiar_min_hours different hours, and every device it was active
//     on.
//
// Learning is bounded (shared_egress.max_networks prefixes; maxKnown
// entries per subject, the least recently used replaced), forgets what
// was unused for shared_egress.ttl, and is part of the detector's
// snapshot.

// EgressConfig configures how impossible_travel learns shared egresses.
type EgressConfig struct {
	// MinSubjects is how many different signed-in subjects must be
	// active on a prefix (default 5).
	MinSubjects int `yaml:"min_subjects"`
	// MinSpan is the least time between the first and the latest of
	// their events (default 15m): steady use, not one burst.
	MinSpan Duration `yaml:"min_span"`
	// MinJumpers is how many different subjects' devices must move
	// impossibly fast to or from a prefix before it counts as an egress
	// (default 2): a VPN or relay switched on and off, learned before
	// enough subjects used it steadily.
	MinJumpers int `yaml:"min_jumpers"`
	// MaxFailureShare is the largest share of failed sign-ins among all
	// sign-ins from the prefix (default 0.5).
	MaxFailureShare float64 `yaml:"max_failure_share"`
	// TTL is how long a prefix without a signed-in subject stays learned,
	// and how long a subject's familiar networks and devices are kept
	// (default 336h, two weeks).
	TTL Duration `yaml:"ttl"`
	// MaxNetworks caps the prefixes tracked, over all apps (default
	// 200000); beyond it the least recently used are forgotten.
	MaxNetworks int `yaml:"max_networks"`
}

func defaultEgressConfig() EgressConfig {
	return EgressConfig{
		MinSubjects:     5,
		MinSpan:         Duration(15 * time.Minute),
		MinJumpers:      2,
		MaxFailureShare: 0.5,
		TTL:             Duration(14 * 24 * time.Hour),
		MaxNetworks:     200_000,
	}
}

// validate returns an error naming every invalid setting.
func (c EgressConfig) validate(path string) []error {
	var errs []error
	if c.MinSubjects < 2 || c.MinSubjects > maxEgressSeen {
		errs = append(errs, fmt.Errorf("%s.min_subjects: must be between 2 and %d (got %d)", path, maxEgressSeen, c.MinSubjects))
	}
	if c.MinJumpers < 1 || c.MinJumpers > maxEgressSeen {
		errs = append(errs, fmt.Errorf("%s.min_jumpers: must be between 1 and %d (got %d)", path, maxEgressSeen, c.MinJumpers))
	}
	if c.MinSpan < 0 {
		errs = append(errs, fmt.Errorf("%s.min_span: must not be negative (got %s)", path, c.MinSpan.D()))
	}
	if !(c.MaxFailureShare >= 0 && c.MaxFailureShare <= 1) {
		errs = append(errs, fmt.Errorf("%s.max_failure_share: must be between 0 and 1 (got %v)", path, c.MaxFailureShare))
	}
	if c.TTL.D() < time.Hour {
		errs = append(errs, fmt.Errorf("%s.ttl: must be at least 1h (got %s)", path, c.TTL.D()))
	}
	if c.MaxNetworks <= 0 {
		errs = append(errs, fmt.Errorf("%s.max_networks: must be positive (got %d)", path, c.MaxNetworks))
	}
	return errs
}

// maxEgressSeen is the most subjects remembered per prefix while it is
// learned; min_subjects may not exceed it.
const maxEgressSeen = 64

// egress is what is known of one prefix: 112 bytes plus the subjects seen
// until it is shared, and the prefix string.
type egress struct {
	prefix string
	apps   uint64 // bit i: egresses.apps[i] used it
	// seen are the low 32 bits of the hashes of the signed-in subjects
	// that used it, until there are min_subjects of them; nil after.
	seen []uint32
	// jumpers are the low 32 bits of the subjects whose device jumped
	// impossibly to or from it, until there are min_jumpers of them.
	jumpers     []uint32
	first, last int64 // Unix ms of the first and newest signed-in use
	since       int64 // Unix ms when it became shared; 0: not (yet)
	ok, failed  uint32
	asn         uint32
	anonymous   bool // seen on a network the anonymous-IP database names
	// relay: min_jumpers subjects' devices jumped impossibly fast to
	// or from it (a VPN switched on or off): its location may be
	// anywhere.
	relay bool
}

// egresses learns the shared egresses.
type egresses struct {
	cfg EgressConfig
	tab *hashTable[egress] // by egressKey
	// apps are the app names, by their bit in egress.apps: the first 63
	// apps seen; every later one shares bit 63.
	apps  []string
	appOf map[string]int
}

func newEgresses(cfg EgressConfig) *egresses {
	return &egresses{cfg: cfg, tab: newHashTable(cfg.MaxNetworks, func(e egress) int64 { return max(e.last, e.first) }), appOf: map[string]int{}}
}

// egressKey identifies a prefix (0: none).
func egressKey(prefix string) uint64 {
	if prefix == "" {
		return 0
	}
	return pseudonymHash(prefix)
}

// active counts an event of a signed-in subject (a hash) from key: any
// type but login.failed and key.retired. Successful sign-ins are counted
// apart.
func (g *egresses) active(key uint64, e *schemas.Event, subject uint64, at int64) {
	if key == 0 {
		return
	}
	x, ok := g.tab.get(key)
	if !ok {
		x = egress{prefix: e.Client.IPPrefix, first: at}
	}
	x.apps |= 1 << g.appBit(e.App)
	if e.Type == schemas.LoginSucceeded {
		x.ok++
	}
	x.last = max(x.last, at)
	x.first = min(x.first, at)
	x.asn = e.Client.ASN
	// Anyone can rent an address on an anonymous network (a hosting
	// provider, a VPN service, a proxy): it is never learned as shared.
	x.anonymous = x.anonymous || e.Client.Anonymity != 0
	if x.since == 0 && !x.anonymous {
		s := uint32(subject)
		if !slices.Contains(x.seen, s) && len(x.seen) < maxEgressSeen {
			x.seen = append(x.seen, s)
		}
		if len(x.seen) >= g.cfg.MinSubjects && x.last-x.first >= g.cfg.MinSpan.D().Milliseconds() {
			x.since, x.seen = at, nil
		}
	}
	g.tab.put(key, x)
}

// appBit returns app's bit in egress.apps.
func (g *egresses) appBit(app string) int {
	if i, ok := g.appOf[app]; ok {
		return i
	}
	if len(g.apps) == 63 {
		return 63
	}
	g.apps = append(g.apps, app)
	g.appOf[app] = len(g.apps) - 1
	return len(g.apps) - 1
}

// appNames returns the names of the apps in bits.
func (g *egresses) appNames(bits uint64) []string {
	var out []string
	for i, a := range g.apps {
		if bits&(1<<i) != 0 {
			out = append(out, a)
		}
	}
	if bits&(1<<63) != 0 {
		out = append(out, "(other apps)")
	}
	return out
}

// jumped records that subject's device moved impossibly fast to or from
// key at, and reports whether the network is now a relay: min_jumpers
// different subjects' devices did so, this one included. A relay (a VPN
// switched on and off, whose location may be anywhere) is also a shared
// egress. prefix is key's, to track it if it is not yet ("": do not);
// anonymous networks are not tracked.
func (g *egresses) jumped(key uint64, prefix string, subject uint64, at int64) bool {
	if key == 0 {
		return false
	}
	x, ok := g.tab.get(key)
	switch {
	case !ok && prefix != "":
		x = egress{prefix: prefix, first: at, last: at}
	case !ok || x.anonymous:
		return false
	}
	if s := uint32(subject); !x.relay && !slices.Contains(x.jumpers, s) {
		x.jumpers = append(x.jumpers, s)
	}
	if len(x.jumpers) >= g.cfg.MinJumpers {
		x.relay, x.jumpers = true, nil
		if x.since == 0 {
			x.since, x.seen = at, nil
		}
	}
	g.tab.put(key, x)
	return x.relay
}

// forget removes subject (the low 32 bits of its hash) from the subjects
// and jumpers of the networks still being learned: an erasure.
func (g *egresses) forget(subject uint32) {
	for k, x := range g.tab.m {
		if !slices.Contains(x.seen, subject) && !slices.Contains(x.jumpers, subject) {
			continue
		}
		x.seen = slices.DeleteFunc(x.seen, func(s uint32) bool { return s == subject })
		x.jumpers = slices.DeleteFunc(x.jumpers, func(s uint32) bool { return s == subject })
		g.tab.m[k] = x
	}
}

// relay reports whether key is a relay.
func (g *egresses) relay(key uint64) bool {
	x, ok := g.tab.get(key)
	return ok && x.relay
}

// failed counts a failed sign-in from key. Prefixes no signed-in subject
// used are not tracked: they can never be shared.
func (g *egresses) failed(key uint64) {
	if key == 0 {
		return
	}
	if x, ok := g.tab.get(key); ok {
		x.failed++
		g.tab.put(key, x)
	}
}

// shared reports whether key is a shared egress now.
func (g *egresses) shared(key uint64) bool {
	if key == 0 {
		return false
	}
	x, ok := g.tab.get(key)
	return ok && x.shared(g.cfg.MaxFailureShare)
}

// shared reports whether x is a shared egress: enough subjects used it
// steadily, and unless it saw few failed sign-ins (a few typos), most
// sign-ins from it succeeded.
func (x *egress) shared(maxFailureShare float64) bool {
	return x.since != 0 && (x.failed < minFailuresJudged || float64(x.failed) <= maxFailureShare*float64(x.ok+x.failed))
}

// minFailuresJudged is how many failed sign-ins a network needs before
// their share can undo its being shared.
const minFailuresJudged = 10

// expire forgets prefixes unused for the ttl.
func (g *egresses) expire(watermark int64) {
	cutoff := watermark - g.cfg.TTL.D().Milliseconds()
	g.tab.dropOlder(cutoff, func(x egress) bool { return max(x.last, x.first) < cutoff })
}

// SharedEgress is a learned shared egress, as the API shows it.
type SharedEgress struct {
	// Apps are the apps whose users were seen on it.
	Apps   []string `json:"apps"`
	Prefix string   `json:"ip_prefix"`
	ASN    uint32   `json:"asn,omitempty"`
	// Since is when it became shared; First and Last are its first and
	// newest event of a signed-in subject.
	Since time.Time `json:"since"`
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
	// Succeeded and Failed count the sign-ins from it.
	Succeeded uint32 `json:"sign_ins_succeeded"`
	Failed    uint32 `json:"sign_ins_failed"`
	// Why says, for people, why it counts as shared.
	Why string `json:"why"`
}

// list returns up to limit shared egresses, the most used first.
func (g *egresses) list(limit int) []SharedEgress {
	var out []SharedEgress
	for _, x := range g.tab.m {
		if !x.shared(g.cfg.MaxFailureShare) {
			continue
		}
		out = append(out, SharedEgress{
			Apps: g.appNames(x.apps), Prefix: x.prefix, ASN: x.asn,
			Since: time.UnixMilli(x.since).UTC(), First: time.UnixMilli(x.first).UTC(), Last: time.UnixMilli(x.last).UTC(),
			Succeeded: x.ok, Failed: x.failed,
			Why: fmt.Sprintf("at least %d signed-in accounts used it within %s (%d sign-ins, %.0f%% failed)",
				g.cfg.MinSubjects, durationText(time.Duration(x.since-x.first)*time.Millisecond), x.ok+x.failed,
				100*float64(x.failed)/float64(max(1, x.ok+x.failed))),
		})
	}
	sortSharedEgresses(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Kinds of a subject's known entries.
const (
	knownNetwork uint32 = iota + 1 // id: low 32 bits of egressKey
	knownASN                       // id: the ASN
	knownDevice                    // id: low 32 bits of the device's hash
)

// maxKnown is how many familiar networks, ASNs and devices are kept per
// subject: a laptop and a phone on two networks each fit.
const maxKnown = 6

// known is one network or device a subject was active on, in 8 bytes:
// meta holds the kind (2 bits), the number of different hours active (6
// bits, saturating at 63) and the newest of those hours (24 bits of Unix
// hours, enough until the year 3880).
type known struct {
	id, meta uint32
}

// maxKnownHours is the largest count of hours a known entry holds.
const maxKnownHours = 63

func (k known) kind() uint32 { return k.meta >> 30 }
func (k known) hours() int   { return int(k.meta >> 24 & maxKnownHours) }
func (k known) hour() uint32 { return k.meta & (1<<24 - 1) }
func (k known) empty() bool  { return k.meta == 0 }
func packKnown(kind uint32, hours int, hour uint32) uint32 {
	return kind<<30 | uint32(min(hours, maxKnownHours))<<24 | hour&(1<<24-1)
}

// knownIndex returns the index of kind/id in ks, or -1.
func knownIndex(ks *[maxKnown]known, kind, id uint32) int {
	for i := range ks {
		if ks[i].id == id && ks[i].kind() == kind && !ks[i].empty() {
			return i
		}
	}
	return -1
}

// knownHours returns in how many hours the subject was active on kind/id.
func knownHours(ks *[maxKnown]known, kind, id uint32) int {
	if i := knownIndex(ks, kind, id); i >= 0 {
		return ks[i].hours()
	}
	return 0
}

// learnKnown records activity on kind/id in the Unix hour, replacing the
// least recently active entry when all are taken.
func learnKnown(ks *[maxKnown]known, kind, id, hour uint32) {
	if id == 0 {
		return
	}
	if i := knownIndex(ks, kind, id); i >= 0 {
		if k := ks[i]; hour > k.hour() {
			ks[i].meta = packKnown(kind, k.hours()+1, hour)
		}
		return
	}
	slot := 0
	for i := range ks {
		if ks[i].empty() {
			slot = i
			break
		}
		if ks[i].hour() < ks[slot].hour() || (ks[i].hour() == ks[slot].hour() && ks[i].hours() < ks[slot].hours()) {
			slot = i
		}
	}
	ks[slot] = known{id: id, meta: packKnown(kind, 1, hour)}
}

// newestKnown returns the newest hour of any entry (0: none).
func newestKnown(ks *[maxKnown]known) uint32 {
	var h uint32
	for _, k := range ks {
		h = max(h, k.hour())
	}
	return h
}
