package detect

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/internal/config"
)

// Engine defaults.
const (
	// DefaultLateness is how long the engine waits for out-of-order events
	// by default: apps run many instances whose clocks and queues differ by
	// a few seconds.
	DefaultLateness = 5 * time.Second
	// maxLateness bounds lateness: every pending event is held in memory.
	maxLateness = 10 * time.Minute
	// DefaultMaxPending bounds the reorder buffer (about 600 bytes an event).
	DefaultMaxPending = 200_000
)

// Config is the detect: section of sessionmon's YAML file: the engine's
// settings, the known networks, and one section per detector. Build it
// with DefaultConfig or ParseConfig; both leave it valid.
//
//	detect:
//	  lateness: 5s
//	  max_pending: 200000
//	  policy: {idle_timeout: 30m, absolute_timeout: 12h, reauth_window: 15m}
//	  networks:
//	    - {prefix: 198.51.100.0/24, kind: vpn, note: corporate VPN egress, expires: 2027-01-01}
//	    - {asn: 14593, kind: satellite, note: Starlink}
//	  detectors:
//	    impossible_travel: {max_speed_kmh: 900, severity: high}
//	    brute_force: {threshold: 20, window: 5m}
//	    insecure_cookie: {enabled: false}
type Config struct {
	// Lateness is how far behind the newest event time an event may
	// arrive and still be processed in event-time order.
	Lateness Duration `yaml:"lateness"`
	// MaxPending bounds the events held for reordering; beyond it the
	// oldest is released early.
	MaxPending int `yaml:"max_pending"`
	// Policy is the session policy assumed when a session declares none.
	Policy PolicyDefaults `yaml:"policy"`
	// Networks lists known VPN, relay, satellite and corporate networks.
	Networks []Network `yaml:"-"`
	// Detectors holds each detector's section as written; the registry
	// decodes it strictly over that detector's defaults. A detector
	// without a section runs with its defaults.
	Detectors map[string]yaml.Node `yaml:"detectors"`
}

// Network is a known network whose geolocation says little about where its
// users are: a VPN or relay egress, a satellite ISP, a corporate proxy. It is
// matched by prefix or ASN (or both: either matches) until Expires.
type Network struct {
	// Prefix is the network (zero when matched by ASN only).
	Prefix netip.Prefix
	// ASN is the autonomous system (0 when matched by prefix only).
	ASN uint32
	// Kind is vpn, relay, satellite or corporate.
	Kind NetworkKind
	// Note says what the network is, for people reading alerts.
	Note string
	// Expires ends the entry (zero: never). An entry is honoured for
	// events before this time, so a replay of history judges each event by
	// the list as it stood then; an entry that has expired at load is
	// reported by Warnings.
	Expires time.Time
}

// networkYAML is a networks: entry as written.
type networkYAML struct {
	Prefix  string      `yaml:"prefix"`
	ASN     uint32      `yaml:"asn"`
	Kind    NetworkKind `yaml:"kind"`
	Note    string      `yaml:"note"`
	Expires string      `yaml:"expires"`
}

// configYAML is the detect: section as written.
type configYAML struct {
	Config   `yaml:",inline"`
	Networks []networkYAML `yaml:"networks"`
	// AnonymousIPDB is the retired detect.anonymous_ip_db (now the
	// top-level geo_anonymous_db), refused with a message naming its
	// replacement.
	AnonymousIPDB *string `yaml:"anonymous_ip_db"`
}

// DefaultConfig returns the engine defaults, the default policy, no known
// networks, and every detector with its defaults.
func DefaultConfig() Config {
	return Config{
		Lateness:   Duration(DefaultLateness),
		MaxPending: DefaultMaxPending,
		Policy:     DefaultPolicy,
	}
}

// ParseConfig reads the detect: section of sessionmon's YAML file (the
// mapping under the detect: key) over DefaultConfig, strictly: an unknown key
// anywhere, including inside a detector's section, is an error. It then
// validates the result and returns every problem at once. It does no I/O.
func ParseConfig(b []byte) (Config, error) {
	n, err := config.ParseNode(b)
	if err != nil {
		return Config{}, fmt.Errorf("detect config: %w", err)
	}
	return ParseConfigNode(n)
}

// ParseConfigNode is ParseConfig of the section as read from the config
// file: its problems name the file's lines.
func ParseConfigNode(n *yaml.Node) (Config, error) {
	raw := configYAML{Config: DefaultConfig()}
	if err := config.DecodeNode(n, &raw, ""); err != nil {
		return Config{}, err
	}
	cfg := raw.Config
	var errs []error
	if raw.AnonymousIPDB != nil {
		errs = append(errs, errors.New("anonymous_ip_db: moved to the top-level geo_anonymous_db (--geo-anonymous-db, SESSIONMON_GEO_ANONYMOUS_DB), "+
			"which ingest and the detectors share"))
	}
	for i, n := range raw.Networks {
		net, err := n.parse(fmt.Sprintf("networks[%d]", i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Networks = append(cfg.Networks, net)
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parse checks one networks: entry; path names it in messages.
func (n networkYAML) parse(path string) (Network, error) {
	var errs []error
	out := Network{ASN: n.ASN, Kind: n.Kind, Note: n.Note}
	if n.Prefix != "" {
		p, err := netip.ParsePrefix(n.Prefix)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.prefix: must be a network in CIDR notation (got %q)", path, n.Prefix))
		case p.Masked() != p:
			errs = append(errs, fmt.Errorf("%s.prefix: must have its host bits zero (got %q, did you mean %s?)", path, n.Prefix, p.Masked()))
		default:
			out.Prefix = p
		}
	}
	if n.Expires != "" {
		t, err := time.Parse(time.DateOnly, n.Expires)
		if err != nil {
			t, err = time.Parse(time.RFC3339, n.Expires)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.expires: must be a date like 2027-01-01 (got %q)", path, n.Expires))
		}
		out.Expires = t
	}
	if len(errs) == 0 {
		errs = append(errs, out.validate(path)...)
	}
	return out, errors.Join(errs...)
}

func (n Network) validate(path string) []error {
	var errs []error
	if !n.Prefix.IsValid() && n.ASN == 0 {
		errs = append(errs, fmt.Errorf("%s: needs a prefix, an asn, or both", path))
	}
	if !n.Kind.valid() {
		errs = append(errs, fmt.Errorf("%s.kind: must be vpn, relay, satellite or corporate (got %q)", path, n.Kind))
	}
	return errs
}

// Validate checks every setting, including each detector's section
// (decoded strictly over its defaults and checked by its constructor, with no
// I/O), and returns all problems joined.
func (c Config) Validate() error {
	var errs []error
	if c.Lateness < 0 || c.Lateness.D() > maxLateness {
		errs = append(errs, fmt.Errorf("lateness: must be between 0 and %s (got %s)", maxLateness, c.Lateness.D()))
	}
	if c.MaxPending <= 0 {
		errs = append(errs, fmt.Errorf("max_pending: must be positive (got %d)", c.MaxPending))
	}
	for name, d := range map[string]Duration{
		"idle_timeout":     c.Policy.IdleTimeout,
		"absolute_timeout": c.Policy.AbsoluteTimeout,
		"reauth_window":    c.Policy.ReauthWindow,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("policy.%s: must not be negative (got %s)", name, d.D()))
		}
	}
	for i, n := range c.Networks {
		errs = append(errs, n.validate(fmt.Sprintf("networks[%d]", i))...)
	}
	reg := registry()
	names := make([]string, 0, len(c.Detectors))
	for name := range c.Detectors {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, ok := reg[name]; !ok {
			errs = append(errs, fmt.Errorf("detectors.%s: unknown detector (known: %s)", name, strings.Join(DetectorNames(), ", ")))
		}
	}
	nets := newNetworks(c.Networks)
	for _, name := range DetectorNames() {
		if _, _, err := reg[name].build(c.section(name), c, nets); err != nil {
			errs = append(errs, err)
		}
	}
	// Go's map order would shuffle the policy messages.
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Warnings returns what is valid but probably a mistake at wall time now:
// networks entries that have expired (they no longer match current events).
func (c Config) Warnings(now time.Time) []string {
	var out []string
	for i, n := range c.Networks {
		if !n.Expires.IsZero() && !now.Before(n.Expires) {
			out = append(out, fmt.Sprintf("networks[%d] (%s): expired on %s and is ignored for events since then",
				i, n.describe(), n.Expires.Format(time.DateOnly)))
		}
	}
	return out
}

// describe names a network for messages: "198.51.100.0/24 AS64500 vpn".
func (n Network) describe() string {
	var parts []string
	if n.Prefix.IsValid() {
		parts = append(parts, n.Prefix.String())
	}
	if n.ASN != 0 {
		parts = append(parts, fmt.Sprintf("AS%d", n.ASN))
	}
	return strings.Join(append(parts, string(n.Kind)), " ")
}

// section returns the detector's YAML section, or nil.
func (c Config) section(name string) *yaml.Node {
	n, ok := c.Detectors[name]
	if !ok {
		return nil
	}
	return &n
}

// decodeSection decodes a detector's section over its defaults, strictly:
// a key that is no field of the configuration is an error naming the YAML
// path and line. A missing or empty section leaves the defaults.
func decodeSection[C any](name string, node *yaml.Node, cfg *C) error {
	return config.DecodeNode(node, cfg, "detectors."+name)
}
