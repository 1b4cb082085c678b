package detect

import (
	"errors"
	"fmt"
	"math"
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
	// about an airliner's top ground speed).
	MaxSpeedKMH float64 `yaml:"max_speed_kmh"`
	// MinAccuracyKM is the least uncertainty assumed for any location
	// (default 10 km): IP geolocation is rarely better, whatever an event
	// claims.
	MinAccuracyKM float64 `yaml:"min_accuracy_km"`
	// NetworkSeverity is the severity when the new location is on a known
	// VPN, relay, satellite or corporate network, or an anonymous one
	// (default low).
	NetworkSeverity schemas.Severity `yaml:"network_severity"`
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
		MaxSpeedKMH:     1000,
		MinAccuracyKM:   10,
		NetworkSeverity: schemas.SeverityLow,
		MaxKeys:         defaultMaxKeys,
	}
}

// ImpossibleTravel flags a subject whose consecutive locations (any session,
// any device, any event with client.lat/lon) imply a speed above
// max_speed_kmh. Distances are great-circle; the two points' accuracy radii
// are subtracted first, so a move within their combined accuracy is not
// travel and jitter never adds speed. Events without a location are
// ignored. A location on a known network (see Config.Networks and the
// anonymous-IP database) is judged against the reference at
// network_severity but never becomes the reference itself: its geolocation
// says where the network's exit is, not where the user is. The dedup key is
// the subject.
type ImpossibleTravel struct {
	sharedKeys
	cfg  ImpossibleTravelConfig
	nets *Networks
	// horizon is how long a reference can matter: after it, even the
	// longest trip on earth is below the speed limit.
	horizon int64                 // ms
	refs    *hashTable[travelRef] // by subject
}

var _ Detector = (*ImpossibleTravel)(nil)

// travelRef is a subject's last trusted location: 56 bytes plus the event
// id and city, which are shared with the event they came from. Degrees in
// float32 are precise to about a metre, far below IP geolocation's error.
type travelRef struct {
	at       int64 // Unix ms
	eventID  string
	city     string
	lat, lon float32
	acc      float32
	country  country
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
		refs:    newHashTable(cfg.MaxKeys, func(r travelRef) int64 { return r.at }),
	}, nil
}

// Name returns "impossible_travel".
func (d *ImpossibleTravel) Name() string { return impossibleTravelName }

// Observe compares a located event with its subject's reference location.
func (d *ImpossibleTravel) Observe(e *schemas.Event, emit Emit) {
	c := e.Client
	if !c.HasGeo() {
		return
	}
	cur := travelRef{
		lat: float32(*c.Lat), lon: float32(*c.Lon), acc: float32(max(c.AccuracyKM, d.cfg.MinAccuracyKM)),
		at: e.Time.UnixMilli(), eventID: e.ID, country: countryOf(c.Country), city: c.City,
	}
	net, onNetwork := d.nets.classify(c, e.Time.Time)
	key := d.subjectKey(e)
	ref, ok := d.refs.get(key)
	if ok && (ref.lat != cur.lat || ref.lon != cur.lon) {
		d.judge(e, ref, cur, net, onNetwork, emit)
	}
	switch {
	case onNetwork:
	case !ok:
		d.refs.put(key, cur)
	case cur.at >= ref.at:
		d.refs.update(key, cur)
	}
}

// judge alerts when getting from ref to cur (in either order: a late event
// may predate the reference) needs more than the speed limit.
func (d *ImpossibleTravel) judge(e *schemas.Event, ref, cur travelRef, net networkMatch, onNetwork bool, emit Emit) {
	dist := geo.DistanceKM(float64(ref.lat), float64(ref.lon), float64(cur.lat), float64(cur.lon))
	moved := dist - float64(ref.acc) - float64(cur.acc)
	if moved <= 0 {
		return
	}
	elapsed := max(cur.at-ref.at, ref.at-cur.at)
	// Two distant places at the same millisecond: measure over one
	// second rather than divide by zero.
	hours := float64(max(elapsed, 1000)) / float64(time.Hour/time.Millisecond)
	speed := moved / hours
	if speed <= d.cfg.MaxSpeedKMH {
		return
	}
	sev := d.cfg.Severity
	details := map[string]any{
		"from":          placeDetails(ref),
		"to":            placeDetails(cur),
		"distance_km":   math.Round(dist),
		"moved_km":      math.Round(moved),
		"elapsed_s":     elapsed / 1000,
		"speed_kmh":     math.Round(speed),
		"max_speed_kmh": d.cfg.MaxSpeedKMH,
	}
	via := ""
	if onNetwork {
		sev = d.cfg.NetworkSeverity
		details["network"] = net.details()
		via = " through " + net.text()
	}
	from, to := ref, cur
	if cur.at < ref.at {
		from, to = cur, ref
	}
	emit(schemas.Alert{
		Detector: impossibleTravelName,
		Severity: sev,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Impossible travel",
		Summary: fmt.Sprintf("Seen in %s %s after %s, %.0f km away%s: at least %.0f km/h, over the %.0f km/h limit.",
			placeName(to), durationText(time.Duration(elapsed)*time.Millisecond), placeName(from), dist, via, speed, d.cfg.MaxSpeedKMH),
		Details:  details,
		Evidence: []string{from.eventID, to.eventID},
		Key:      e.Subject,
	})
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

// Expire forgets references too old to make any trip impossible.
func (d *ImpossibleTravel) Expire(watermark time.Time) {
	cutoff := watermark.UnixMilli() - d.horizon
	d.refs.dropOlder(cutoff, func(r travelRef) bool { return r.at < cutoff })
}

// Forget drops subject's reference location.
func (d *ImpossibleTravel) Forget(subject string) { d.refs.delete(pseudonymHash(subject)) }

// StateKeys returns the number of subjects tracked.
func (d *ImpossibleTravel) StateKeys() int { return d.refs.size() }

// StateHorizon is the time the longest trip on earth takes at the speed
// limit.
func (d *ImpossibleTravel) StateHorizon() time.Duration {
	return time.Duration(d.horizon) * time.Millisecond
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
