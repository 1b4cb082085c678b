package detect

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/schemas"
)

const impossibleTravelName = "impossible_travel"

// defaultMaxKeys bounds each per-key table of the attack detectors.
const defaultMaxKeys = 1_000_000

// ImpossibleTravelConfig configures the impossible_travel detector.
type ImpossibleTravelConfig struct {
	Common `yaml:",inline"`
	// MaxSpeedKMH is the fastest plausible travel (default 1000 km/h,
	// about an airliner's top ground speed: real flights, door to door,
	// stay below it).
	MaxSpeedKMH float64 `yaml:"max_speed_kmh"`
	// MinAccuracyKM is the least uncertainty assumed for any location
	// (default 10 km): IP geolocation is rarely better, whatever an event
	// claims.
	MinAccuracyKM float64 `yaml:"min_accuracy_km"`
	// NetworkSeverity is the severity when the new location is on a known
	// VPN, relay, satellite or corporate network, or an anonymous one
	// (default low).
	NetworkSeverity schemas.Severity `yaml:"network_severity"`
	// SharedEgress configures how shared egresses are learned.
	SharedEgress EgressConfig `yaml:"shared_egress"`
	// FamiliarMinHours is in how many different hours a subject must have
	// been active on a prefix or ASN before it is the subject's familiar
	// network (default 2).
	FamiliarMinHours int `yaml:"familiar_min_hours"`
	// MaxDevices is how many devices' last locations are kept per subject
	// (default 3); beyond it the least recently seen is dropped.
	MaxDevices int `yaml:"max_devices"`
	// MaxKeys caps the subjects tracked (default 1000000); beyond it the
	// least recently seen are forgotten.
	MaxKeys int `yaml:"max_keys"`
}

func defaultImpossibleTravelConfig() ImpossibleTravelConfig {
	return ImpossibleTravelConfig{
		Common: Common{
			Enabled:     true,
			Severity:    schemas.SeverityHigh,
			DedupWindow: Duration(time.Hour),
		},
		MaxSpeedKMH:      1000,
		MinAccuracyKM:    10,
		NetworkSeverity:  schemas.SeverityLow,
		SharedEgress:     defaultEgressConfig(),
		FamiliarMinHours: 2,
		MaxDevices:       3,
		MaxKeys:          defaultMaxKeys,
	}
}

// ImpossibleTravel flags a device whose locations imply a speed above
// max_speed_kmh, or two devices of a subject that far apart when one of
// them is new to the subject.
//
// It judges the movement of one device, not of a subject across the
// laptop and the phone they use at the same time. Each located event of a
// signed-in subject (any type but login.failed and key.retired) is
// compared with the last location of the same device (details.basis
// "same_device"). A device the subject never used is compared with every
// other device's last location, and a known device with the locations of
// devices new to the subject (seen in one hour only), so that a thief's
// sign-in is caught before or after the owner's next use ("new_device").
// Events without a device count as one device.
//
// Not travel for one device: a hop to or from a shared egress (see
// familiar.go: VPNs, offices, carrier gateways, relays), to the subject's
// familiar network, or between two networks of one ASN. For two devices,
// a location on a shared egress or with an accuracy radius of
// coarseAccuracyKM or more tells only the country, and a relay's nothing.
// Distances are great-circle; the two points' accuracy radii (at least
// min_accuracy_km each) are subtracted first, so a move within their
// combined accuracy is not travel and jitter never adds speed. Events
// without a location are ignored, but still teach familiarity.
//
// A location on a configured network (see Config.Networks) or an
// anonymous one is judged at network_severity and is never the reference
// of its device's next trip: its geolocation says where the network's
// exit is, not where the user is. The dedup key is the subject.
type ImpossibleTravel struct {
	sharedKeys
	cfg  ImpossibleTravelConfig
	nets *Networks
	// horizon is how long a reference can matter: after it, even the
	// longest trip on earth is below the speed limit.
	horizon int64                   // ms
	refs    *hashTable[travelState] // by subject
	egress  *egresses
}

var _ Detector = (*ImpossibleTravel)(nil)

// travelState is what impossible_travel keeps of a subject: 144 bytes,
// plus the locations of its second and third device.
type travelState struct {
	ref   travelRef       // the newest location; at == 0: none
	older []travelRef     // other devices' locations, newest first
	known [maxKnown]known // familiar networks, ASNs and devices
}

// last is the Unix ms of the subject's newest event, to the hour.
func (s *travelState) last() int64 {
	return max(s.ref.at, int64(newestKnown(&s.known))*int64(time.Hour/time.Millisecond))
}

// travelRef is a device's last trusted location: 72 bytes plus the event
// id and city, which are shared with the event they came from. Degrees in
// float32 are precise to about a metre, far below IP geolocation's error.
type travelRef struct {
	at       int64  // Unix ms
	net      uint64 // egressKey of the network
	eventID  string
	city     string
	lat, lon float32
	acc      float32
	device   uint32 // low 32 bits of the device's hash; 0: none
	asn      uint32 // not on an anonymous network; 0: unknown
	country  country
	// flagged: on a configured or anonymous network, so never the
	// reference of its own device's next trip.
	flagged bool
}

// NewImpossibleTravel returns the impossible_travel detector, or an error
// naming every invalid setting. nets classifies networks (nil: none known).
func NewImpossibleTravel(cfg ImpossibleTravelConfig, nets *Networks) (*ImpossibleTravel, error) {
	errs := []error{cfg.Validate(impossibleTravelName)}
	if !(cfg.MaxSpeedKMH > 0) || math.IsInf(cfg.MaxSpeedKMH, 0) {
		errs = append(errs, fmt.Errorf("detectors.%s.max_speed_kmh: must be a positive number (got %v)", impossibleTravelName, cfg.MaxSpeedKMH))
	}
	if !(cfg.MinAccuracyKM >= 0) || cfg.MinAccuracyKM > geo.MaxDistanceKM {
		errs = append(errs, fmt.Errorf("detectors.%s.min_accuracy_km: must be between 0 and %.0f (got %v)", impossibleTravelName, geo.MaxDistanceKM, cfg.MinAccuracyKM))
	}
	if cfg.NetworkSeverity.Rank() == 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.network_severity: must be low, medium, high or critical (got %q)", impossibleTravelName, cfg.NetworkSeverity))
	}
	errs = append(errs, cfg.SharedEgress.validate("detectors."+impossibleTravelName+".shared_egress")...)
	if cfg.FamiliarMinHours < 1 || cfg.FamiliarMinHours > maxKnownHours {
		errs = append(errs, fmt.Errorf("detectors.%s.familiar_min_hours: must be between 1 and %d (got %d)", impossibleTravelName, maxKnownHours, cfg.FamiliarMinHours))
	}
	if cfg.MaxDevices < 1 || cfg.MaxDevices > 16 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_devices: must be between 1 and 16 (got %d)", impossibleTravelName, cfg.MaxDevices))
	}
	if cfg.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("detectors.%s.max_keys: must be positive (got %d)", impossibleTravelName, cfg.MaxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	horizon := time.Duration(geo.MaxDistanceKM / cfg.MaxSpeedKMH * float64(time.Hour))
	return &ImpossibleTravel{
		cfg:     cfg,
		nets:    nets,
		horizon: horizon.Milliseconds() + 1,
		refs:    newHashTable(cfg.MaxKeys, func(s travelState) int64 { return s.last() }),
		egress:  newEgresses(cfg.SharedEgress),
	}, nil
}

// Name returns "impossible_travel".
func (d *ImpossibleTravel) Name() string { return impossibleTravelName }

// Observe learns from every sign-in and judges located events of a
// signed-in subject.
func (d *ImpossibleTravel) Observe(e *schemas.Event, emit Emit) {
	c := e.Client
	if c == nil || e.Type == schemas.KeyRetired {
		return
	}
	netKey := egressKey(c.IPPrefix)
	if e.Type == schemas.LoginFailed {
		d.egress.failed(netKey)
		return
	}
	at := e.Time.UnixMilli()
	key := d.subjectKey(e)
	// What this event teaches counts from the next one on.
	defer d.egress.active(netKey, e, key, at)
	st, _ := d.refs.get(key)
	device := uint32(pseudonymHash(c.Device))
	hour := uint32(at / int64(time.Hour/time.Millisecond))
	if c.HasGeo() {
		cur := travelRef{
			lat: float32(*c.Lat), lon: float32(*c.Lon), acc: float32(max(c.AccuracyKM, d.cfg.MinAccuracyKM)),
			at: at, net: netKey, device: device, eventID: e.ID, country: countryOf(c.Country), city: c.City,
		}
		if c.Anonymity == 0 {
			cur.asn = c.ASN
		}
		net, onNetwork := d.nets.classify(c, e.Time.Time)
		cur.flagged = onNetwork
		quiet := d.egress.shared(netKey) || d.familiar(&st, c, netKey)
		d.judge(e, key, &st, cur, quiet, net, emit)
		st.put(cur, d.cfg.MaxDevices)
	}
	learnKnown(&st.known, knownNetwork, uint32(netKey), hour)
	if c.Anonymity == 0 {
		learnKnown(&st.known, knownASN, c.ASN, hour)
	}
	learnKnown(&st.known, knownDevice, device, hour)
	d.refs.put(key, st)
}

// familiar reports whether c's network is familiar to the subject.
func (d *ImpossibleTravel) familiar(st *travelState, c *schemas.Client, netKey uint64) bool {
	if netKey != 0 && knownHours(&st.known, knownNetwork, uint32(netKey)) >= d.cfg.FamiliarMinHours {
		return true
	}
	return c.ASN != 0 && c.Anonymity == 0 && knownHours(&st.known, knownASN, c.ASN) >= d.cfg.FamiliarMinHours
}

// put makes cur its device's location, unless the device has a newer one,
// keeping the newest first and at most limit devices.
func (s *travelState) put(cur travelRef, limit int) {
	if s.ref.at == 0 || (s.ref.device == cur.device && cur.at >= s.ref.at) {
		s.ref = cur
		return
	}
	if s.ref.device == cur.device {
		return
	}
	if i := slices.IndexFunc(s.older, func(r travelRef) bool { return r.device == cur.device }); i >= 0 {
		if cur.at < s.older[i].at {
			return
		}
		s.older = slices.Delete(s.older, i, i+1)
	}
	if cur.at >= s.ref.at {
		cur, s.ref = s.ref, cur
	}
	i, _ := slices.BinarySearchFunc(s.older, cur.at, func(r travelRef, at int64) int { return cmp.Compare(at, r.at) })
	s.older = slices.Insert(s.older, i, cur)
	if len(s.older) > limit-1 {
		clear(s.older[limit-1:])
		s.older = s.older[:limit-1]
	}
}

// each calls f with the subject's locations, newest first, until it
// returns false.
func (s *travelState) each(f func(*travelRef) bool) {
	if s.ref.at == 0 || !f(&s.ref) {
		return
	}
	for i := range s.older {
		if !f(&s.older[i]) {
			return
		}
	}
}

// judge alerts when cur is too far from its device's last location, or
// when one of two devices is new to the account and they are too far
// apart. quiet says cur is on a shared egress or a familiar network.
func (d *ImpossibleTravel) judge(e *schemas.Event, key uint64, st *travelState, cur travelRef, quiet bool, net networkMatch, emit Emit) {
	var own *travelRef
	st.each(func(r *travelRef) bool {
		if r.device == cur.device {
			own = r
		}
		return own == nil
	})
	basis, ref := "same_device", (*travelRef)(nil)
	var t trip
	// The same device: a hop to or from a shared egress, a familiar
	// network or a known or anonymous network (whose location is its
	// exit's), or within the network of one ISP or carrier, is not
	// travel: the network's geolocation moved, not the device.
	if own != nil && !own.flagged && (own.asn == 0 || own.asn != cur.asn) {
		if t = d.measure(own, &cur); t.impossible {
			// A device that "jumps" to or from a network other
			// accounts' devices jumped to as well is switching a VPN or
			// relay on or off: after min_jumpers of them, the network
			// is an egress, a relay whose location may be anywhere. A
			// coarse location (a carrier's gateway) is not a relay: it
			// is only where the jump starts or ends.
			relay := !cur.flagged && !coarse(&cur) && d.egress.jumped(cur.net, e.Client.IPPrefix, key, cur.at)
			relay = (!coarse(own) && d.egress.jumped(own.net, "", key, cur.at)) || relay
			if !quiet && !relay && !d.egress.shared(own.net) {
				ref = own
			}
		}
		if ref == nil && !t.impossible {
			t = trip{}
		}
	}
	if ref == nil {
		// Two devices: a new device is judged against every other
		// device's last location, and a known device against the
		// locations of devices new to the account (seen in one hour
		// only), which a thief may have used before the owner shows up.
		isNew := own == nil
		if cur.device != 0 {
			isNew = knownIndex(&st.known, knownDevice, cur.device) < 0
		}
		if isNew && quiet {
			return
		}
		basis = "new_device"
		st.each(func(r *travelRef) bool {
			if r.device == cur.device || (!isNew && (r.at > cur.at || knownHours(&st.known, knownDevice, r.device) > 1)) {
				return true
			}
			// A relay's location (a network devices jumped impossibly
			// fast to or from: a VPN) may be anywhere. A shared
			// egress's location, or one known only to
			// coarseAccuracyKM, tells only the country: another device
			// in that country is no news, unless one of them is on a
			// known or anonymous network (a cloud server in the owner's
			// country).
			if d.egress.relay(r.net) || d.egress.relay(cur.net) {
				return true
			}
			if (d.egress.shared(r.net) || d.egress.shared(cur.net) || coarse(r) || coarse(&cur)) &&
				!r.flagged && !cur.flagged && (r.country == cur.country || r.country == (country{})) {
				return true
			}
			if t = d.measure(r, &cur); t.impossible {
				ref = r
			}
			return ref == nil
		})
		if ref == nil {
			return
		}
	}
	sev := d.cfg.Severity
	details := map[string]any{
		"from":          placeDetails(*ref),
		"to":            placeDetails(cur),
		"distance_km":   math.Round(t.dist),
		"moved_km":      math.Round(t.moved),
		"elapsed_s":     t.elapsed / 1000,
		"speed_kmh":     math.Round(t.speed),
		"max_speed_kmh": d.cfg.MaxSpeedKMH,
		"basis":         basis,
		"familiar": map[string]any{
			"networks": st.count(knownNetwork, d.cfg.FamiliarMinHours),
			"asns":     st.count(knownASN, d.cfg.FamiliarMinHours),
			"devices":  st.count(knownDevice, 1),
		},
	}
	via := ""
	switch {
	case cur.flagged:
		sev = d.cfg.NetworkSeverity
		details["network"] = net.details()
		via = " through " + net.text()
	case ref.flagged:
		sev = d.cfg.NetworkSeverity
		details["network"] = map[string]any{"kind": "known or anonymous", "at": "from"}
		via = ", the first on a known or anonymous network"
	}
	from, to := *ref, cur
	if cur.at < ref.at {
		from, to = cur, *ref
	}
	who := "The same device was"
	if basis == "new_device" {
		who = "A device new to the account was"
	}
	emit(schemas.Alert{
		Detector: impossibleTravelName,
		Severity: sev,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Impossible travel",
		Summary: fmt.Sprintf("%s seen in %s %s after %s, %.0f km away%s: at least %.0f km/h, over the %.0f km/h limit.",
			who, placeName(to), durationText(time.Duration(t.elapsed)*time.Millisecond), placeName(from), t.dist, via, t.speed, d.cfg.MaxSpeedKMH),
		Details:  details,
		Evidence: []string{from.eventID, to.eventID},
		Key:      e.Subject,
	})
}

// coarseAccuracyKM is the accuracy radius beyond which a location says
// little more than its country: a carrier's gateway, a country-level
// record.
const coarseAccuracyKM = 100

func coarse(r *travelRef) bool { return r.acc >= coarseAccuracyKM }

// trip is the movement between two locations.
type trip struct {
	dist, moved, speed float64 // km, km less both accuracy radii, km/h
	elapsed            int64   // ms
	impossible         bool
}

// measure returns the trip between ref and cur (in either order: a late
// event may predate the reference): impossible when it needs more than
// the speed limit.
func (d *ImpossibleTravel) measure(ref, cur *travelRef) trip {
	if ref.lat == cur.lat && ref.lon == cur.lon {
		return trip{}
	}
	t := trip{dist: geo.DistanceKM(float64(ref.lat), float64(ref.lon), float64(cur.lat), float64(cur.lon))}
	t.moved = t.dist - float64(ref.acc) - float64(cur.acc)
	if t.moved <= 0 {
		return t
	}
	t.elapsed = max(cur.at-ref.at, ref.at-cur.at)
	// Two distant places at the same millisecond: measure over one
	// second rather than divide by zero.
	hours := float64(max(t.elapsed, 1000)) / float64(time.Hour/time.Millisecond)
	t.speed = t.moved / hours
	t.impossible = t.speed > d.cfg.MaxSpeedKMH
	return t
}

// count returns how many of the subject's known entries of kind were
// active in at least minHours hours.
func (s *travelState) count(kind uint32, minHours int) int {
	n := 0
	for _, k := range s.known {
		if !k.empty() && k.kind() == kind && k.hours() >= minHours {
			n++
		}
	}
	return n
}

func placeDetails(r travelRef) map[string]any {
	m := map[string]any{
		"lat":         roundTo(float64(r.lat), 4),
		"lon":         roundTo(float64(r.lon), 4),
		"accuracy_km": roundTo(float64(r.acc), 1),
		"time":        msTime(r.at),
		"event":       r.eventID,
	}
	if r.country != (country{}) {
		m["country"] = r.country.String()
	}
	if r.city != "" {
		m["city"] = r.city
	}
	return m
}

// placeName writes a location for people: "Berlin, DE", "DE" or
// "52.52,13.40".
func placeName(r travelRef) string {
	switch cc := r.country.String(); {
	case r.city != "" && cc != "":
		return r.city + ", " + cc
	case r.city != "":
		return r.city
	case cc != "":
		return cc
	}
	return fmt.Sprintf("%.2f,%.2f", r.lat, r.lon)
}

// roundTo rounds v to the given number of decimals.
func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// Expire forgets subjects and shared egresses unused for the
// shared_egress ttl. A subject's locations older than the time the
// longest trip takes stay until then, or until a newer location of the
// device replaces them: they can no longer make any trip impossible.
func (d *ImpossibleTravel) Expire(watermark time.Time) {
	wm := watermark.UnixMilli()
	cutoff := wm - d.cfg.SharedEgress.TTL.D().Milliseconds()
	d.refs.dropOlder(cutoff, func(s travelState) bool { return s.last() < cutoff })
	d.egress.expire(wm)
}

// Forget drops everything about subject, and its trace in the networks
// still being learned. Shared egresses keep only counts of sign-ins,
// which name no one.
func (d *ImpossibleTravel) Forget(subject string) {
	h := pseudonymHash(subject)
	d.refs.delete(h)
	d.egress.forget(uint32(h))
}

// SharedEgresses returns up to limit learned shared egresses, the most
// used first.
func (d *ImpossibleTravel) SharedEgresses(limit int) []SharedEgress { return d.egress.list(limit) }

// StateKeys returns the number of subjects and networks tracked.
func (d *ImpossibleTravel) StateKeys() int { return d.refs.size() + d.egress.tab.size() }

// StateHorizon is the longer of the time the longest trip on earth takes
// at the speed limit and the shared_egress ttl.
func (d *ImpossibleTravel) StateHorizon() time.Duration {
	return max(time.Duration(d.horizon)*time.Millisecond, d.cfg.SharedEgress.TTL.D())
}

// country is an ISO 3166 alpha-2 code stored without a string.
type country [2]byte

// countryOf returns the code of s ("DE"), or zero when s is not two
// letters long.
func countryOf(s string) country {
	if len(s) != 2 {
		return country{}
	}
	return country{s[0], s[1]}
}

// String returns the code, or "" for zero.
func (c country) String() string {
	if c == (country{}) {
		return ""
	}
	return string(c[:])
}
