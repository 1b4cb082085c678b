package detect

import (
	"errors"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// factory builds one detector from its YAML section.
type factory struct {
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

// add registers f as name; a name registered twice is a programming error.
func (r registrar) add(name string, f factory) {
	if _, dup := r[name]; dup {
		panic("detect: detector registered twice: " + name)
	}
	r[name] = f
}

// registry returns every detector by name. It is built here, in one place,
// on each call: adding a detector means adding a line below.
func registry() registrar {
	r := registrar{}
	add := r.add
	// Attacks.
	add("impossible_travel", entry("impossible_travel", defaultImpossibleTravelConfig,
		func(c ImpossibleTravelConfig, e env) (*ImpossibleTravel, error) {
			return NewImpossibleTravel(c, e.nets)
		}))
	add("token_reuse", entry("token_reuse", defaultTokenReuseConfig,
		func(c TokenReuseConfig, _ env) (*TokenReuse, error) { return NewTokenReuse(c) }))
	add("brute_force", entry("brute_force", defaultBruteForceConfig,
		func(c BruteForceConfig, _ env) (*BruteForce, error) { return NewBruteForce(c) }))
	add("credential_stuffing", entry("credential_stuffing", defaultCredentialStuffingConfig,
		func(c CredentialStuffingConfig, e env) (*CredentialStuffing, error) {
			return NewCredentialStuffing(c, e.nets)
		}))
	add("session_hijack", entry("session_hijack", defaultSessionHijackConfig,
		func(c SessionHijackConfig, _ env) (*SessionHijack, error) { return NewSessionHijack(c) }))
	// Session management policy.
	add("idle_timeout_exceeded", entry("idle_timeout_exceeded", defaultIdleTimeoutConfig,
		func(c IdleTimeoutConfig, e env) (*IdleTimeout, error) { return NewIdleTimeout(c, e.policy) }))
	add("absolute_timeout_exceeded", entry("absolute_timeout_exceeded", defaultAbsoluteTimeoutConfig,
		func(c AbsoluteTimeoutConfig, e env) (*AbsoluteTimeout, error) { return NewAbsoluteTimeout(c, e.policy) }))
	add("missing_reauth", entry("missing_reauth", defaultMissingReauthConfig,
		func(c MissingReauthConfig, e env) (*MissingReauth, error) { return NewMissingReauth(c, e.policy) }))
	add("session_fixation", entry("session_fixation", defaultSessionFixationConfig,
		func(c SessionFixationConfig, _ env) (*SessionFixation, error) { return NewSessionFixation(c) }))
	add("insecure_cookie", entry("insecure_cookie", defaultInsecureCookieConfig,
		func(c InsecureCookieConfig, _ env) (*InsecureCookie, error) { return NewInsecureCookie(c) }))
	add("long_lived_token", entry("long_lived_token", defaultLongLivedTokenConfig,
		func(c LongLivedTokenConfig, _ env) (*LongLivedToken, error) { return NewLongLivedToken(c) }))
	add("token_pii_claims", entry("token_pii_claims", defaultTokenPIIClaimsConfig,
		func(c TokenPIIClaimsConfig, _ env) (*TokenPIIClaims, error) { return NewTokenPIIClaims(c) }))
	add("retired_signing_key", entry("retired_signing_key", defaultRetiredSigningKeyConfig,
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
