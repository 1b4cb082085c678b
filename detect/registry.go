package detect

import (
	"errors"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/schemas"
)

// Rule identifies the logic of a detector in its alerts: the engine stamps
// every alert of the detector with it, so no detector can leave it out.
type Rule struct {
	// Technique is the MITRE ATT&CK technique id a finding is evidence of
	// (schemas.TechniqueByID knows it), or "" for a detector that reports
	// a policy violation, not adversary behaviour.
	Technique string
	// Version is bumped whenever the detector's logic changes what it
	// finds (not for a refactoring or a wording change).
	Version int
}

// factory builds one detector from its YAML section.
type factory struct {
	// rule is the detector's Rule.
	rule Rule
	// build decodes the section strictly over the detector's defaults,
	// validates it (through the detector's constructor, which does no
	// I/O) and returns the detector and its common settings.
	build func(section *yaml.Node, cfg Config, nets *Networks) (Detector, Common, error)
}

// env is what constructors may need beyond their own section.
type env struct {
	policy PolicyDefaults
	nets   *Networks
}

// settings returns the common settings of any detector configuration that
// embeds Common.
func (c Common) settings() Common { return c }

// entry adapts a detector's defaults and constructor to a factory.
func entry[C interface{ settings() Common }, D Detector](name string, defaults func() C, build func(C, env) (D, error)) factory {
	return factory{build: func(section *yaml.Node, cfg Config, nets *Networks) (Detector, Common, error) {
		c := defaults()
		if err := decodeSection(name, section, &c); err != nil {
			return nil, Common{}, err
		}
		d, err := build(c, env{policy: cfg.Policy, nets: nets})
		if err != nil {
			return nil, Common{}, err
		}
		return d, c.settings(), nil
	}}
}

// registrar maps detector names to factories.
type registrar map[string]factory

// add registers f as name, with its rule; a name registered twice, or a
// rule without a version or with a technique outside schemas' catalog, is a
// programming error.
func (r registrar) add(name string, rule Rule, f factory) {
	if _, dup := r[name]; dup {
		panic("detect: detector registered twice: " + name)
	}
	if _, known := schemas.TechniqueByID(rule.Technique); rule.Version < 1 || (rule.Technique != "" && !known) {
		panic("detect: detector " + name + " needs a rule version and a known ATT&CK technique")
	}
	f.rule = rule
	r[name] = f
}

// registry returns every detector by name. It is built here, in one place,
// on each call: adding a detector means adding a line below, with its
// ATT&CK technique and rule version (bump the version when the detector's
// logic changes). docs/detectors.md lists the techniques and
// why each was chosen.
func registry() registrar {
	r := registrar{}
	add := r.add
	// Attacks.
	add("impossible_travel", Rule{Technique: "T1078", Version: 2}, entry("impossible_travel", defaultImpossibleTravelConfig,
		func(c ImpossibleTravelConfig, e env) (*ImpossibleTravel, error) {
			return NewImpossibleTravel(c, e.nets)
		}))
	add("token_reuse", Rule{Technique: "T1550.001", Version: 1}, entry("token_reuse", defaultTokenReuseConfig,
		func(c TokenReuseConfig, _ env) (*TokenReuse, error) { return NewTokenReuse(c) }))
	add("brute_force", Rule{Technique: "T1110.001", Version: 1}, entry("brute_force", defaultBruteForceConfig,
		func(c BruteForceConfig, _ env) (*BruteForce, error) { return NewBruteForce(c) }))
	add("credential_stuffing", Rule{Technique: "T1110.004", Version: 1}, entry("credential_stuffing", defaultCredentialStuffingConfig,
		func(c CredentialStuffingConfig, e env) (*CredentialStuffing, error) {
			return NewCredentialStuffing(c, e.nets)
		}))
	add("session_hijack", Rule{Technique: "T1550.004", Version: 1}, entry("session_hijack", defaultSessionHijackConfig,
		func(c SessionHijackConfig, _ env) (*SessionHijack, error) { return NewSessionHijack(c) }))
	// Session management policy.
	add("idle_timeout_exceeded", Rule{Version: 1}, entry("idle_timeout_exceeded", defaultIdleTimeoutConfig,
		func(c IdleTimeoutConfig, e env) (*IdleTimeout, error) { return NewIdleTimeout(c, e.policy) }))
	add("absolute_timeout_exceeded", Rule{Version: 1}, entry("absolute_timeout_exceeded", defaultAbsoluteTimeoutConfig,
		func(c AbsoluteTimeoutConfig, e env) (*AbsoluteTimeout, error) { return NewAbsoluteTimeout(c, e.policy) }))
	add("missing_reauth", Rule{Version: 1}, entry("missing_reauth", defaultMissingReauthConfig,
		func(c MissingReauthConfig, e env) (*MissingReauth, error) { return NewMissingReauth(c, e.policy) }))
	add("session_fixation", Rule{Technique: "T1539", Version: 1}, entry("session_fixation", defaultSessionFixationConfig,
		func(c SessionFixationConfig, _ env) (*SessionFixation, error) { return NewSessionFixation(c) }))
	add("insecure_cookie", Rule{Version: 1}, entry("insecure_cookie", defaultInsecureCookieConfig,
		func(c InsecureCookieConfig, _ env) (*InsecureCookie, error) { return NewInsecureCookie(c) }))
	add("long_lived_token", Rule{Version: 1}, entry("long_lived_token", defaultLongLivedTokenConfig,
		func(c LongLivedTokenConfig, _ env) (*LongLivedToken, error) { return NewLongLivedToken(c) }))
	add("token_pii_claims", Rule{Version: 1}, entry("token_pii_claims", defaultTokenPIIClaimsConfig,
		func(c TokenPIIClaimsConfig, _ env) (*TokenPIIClaims, error) { return NewTokenPIIClaims(c) }))
	add("retired_signing_key", Rule{Technique: "T1606", Version: 1}, entry("retired_signing_key", defaultRetiredSigningKeyConfig,
		func(c RetiredSigningKeyConfig, _ env) (*RetiredSigningKey, error) { return NewRetiredSigningKey(c) }))
	return r
}

// DetectorNames returns the name of every detector, sorted.
func DetectorNames() []string {
	r := registry()
	names := make([]string, 0, len(r))
	for name := range r {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// NewDetectors returns the enabled detectors of cfg, sorted by name. Every
// problem is reported at once.
func NewDetectors(cfg Config) ([]Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nets := newNetworks(cfg.Networks)
	reg := registry()
	var (
		out  []Detector
		errs []error
	)
	for _, name := range DetectorNames() {
		d, c, err := reg[name].build(cfg.section(name), cfg, nets)
		switch {
		case err != nil:
			errs = append(errs, err)
		case c.Enabled:
			out = append(out, d)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ruleOf returns the rule of the named detector, and the zero Rule for a
// name that is not registered.
func ruleOf(name string) Rule { return registry()[name].rule }

// detectorSettings returns the common settings cfg gives the named
// detector, and false for a name that is not registered.
func detectorSettings(cfg Config, name string) (Common, bool, error) {
	f, ok := registry()[name]
	if !ok {
		return Common{}, false, nil
	}
	_, c, err := f.build(cfg.section(name), cfg, newNetworks(cfg.Networks))
	if err != nil {
		return Common{}, true, fmt.Errorf("detector %s: %w", name, err)
	}
	return c, true, nil
}
