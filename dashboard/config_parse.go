package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalidConfig wraps every problem ParseConfig finds.
var ErrInvalidConfig = errors.New("invalid dashboard config")

// userName is what a user name may be: it shows up in the audit log.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidUserName reports whether name may name a dashboard user.
func ValidUserName(name string) bool { return userName.MatchString(name) }

// yamlDuration reads a Go duration ("15m", "8h").
type yamlDuration time.Duration

func (d *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like 15m or 8h", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q: want a duration like 15m or 8h", n.Line, s)
	}
	*d = yamlDuration(v)
	return nil
}

// rawConfig is the dashboard: section as written. addr and
// insecure_dev_cookies are options of their own (dashboard-addr,
// insecure-dev-cookies) that the config loader takes out of the section.
type rawConfig struct {
	PublicURL       string        `yaml:"public_url"`
	TLSCertFile     string        `yaml:"tls_cert_file"`
	TLSKeyFile      string        `yaml:"tls_key_file"`
	TrustedProxies  []string      `yaml:"trusted_proxies"`
	IdleTimeout     *yamlDuration `yaml:"idle_timeout"`
	AbsoluteTimeout *yamlDuration `yaml:"absolute_timeout"`
	ReauthWindow    *yamlDuration `yaml:"reauth_window"`
	Users           []User        `yaml:"users"`
}

// ParseConfig reads the dashboard: section of the config file over
// DefaultConfig, strictly (an unknown key is an error naming its line),
// and validates it, returning every problem at once. For example:
//
//	dashboard:
//	  public_url: https://sessionmon.example.com
//	  trusted_proxies: [10.0.0.0/8]
//	  idle_timeout: 15m
//	  absolute_timeout: 8h
//	  reauth_window: 5m
//	  users:
//	    - {name: alice, role: admin, password_hash: "$argon2id$v=19$m=65536,t=3,p=2$..."}
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: dashboard: %w", ErrInvalidConfig, err)
	}
	cfg.PublicURL, cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Users = raw.PublicURL, raw.TLSCertFile, raw.TLSKeyFile, raw.Users
	var errs []error
	for i, s := range raw.TrustedProxies {
		p, err := parseProxy(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: dashboard.trusted_proxies[%d]: %q: want an address or a CIDR prefix like 10.0.0.0/8", ErrInvalidConfig, i, s))
			continue
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, p)
	}
	if raw.IdleTimeout != nil {
		cfg.IdleTimeout = time.Duration(*raw.IdleTimeout)
	}
	if raw.AbsoluteTimeout != nil {
		cfg.AbsoluteTimeout = time.Duration(*raw.AbsoluteTimeout)
	}
	if raw.ReauthWindow != nil {
		cfg.ReauthWindow = time.Duration(*raw.ReauthWindow)
	}
	if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseProxy reads a trusted proxy: a CIDR prefix, or one address.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy: %w", err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Validate checks every field and the rules between them, returning all
// problems joined, each naming its field and wrapping ErrInvalidConfig.
// New runs the checks that involve Addr and InsecureDevCookies again,
// since flags set those after ParseConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: dashboard.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("public_url", "must be an absolute http(s) URL")
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls_cert_file", "a certificate needs its key (tls_key_file) and the reverse")
	}
	if err := c.validateAuth(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
	}
	seen := map[string]int{}
	for i, u := range c.Users {
		field := fmt.Sprintf("users[%d]", i)
		switch {
		case !ValidUserName(u.Name):
			bad(field+".name", "must be 1-64 characters of A-Z a-z 0-9 . _ @ - (got %q)", u.Name)
		case seen[u.Name] > 0:
			bad(field+".name", "%q is already users[%d]", u.Name, seen[u.Name]-1)
		default:
			seen[u.Name] = i + 1
		}
		if u.Role == RoleNone {
			bad(field+".role", "must be viewer, analyst or admin")
		}
		if _, err := parsePasswordHash(u.PasswordHash); err != nil {
			bad(field+".password_hash", "%v (make one with `sessionmon user add`)", err)
		}
	}
	return errors.Join(errs...)
}
