package dashboard

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/internal/config"
)

// ErrInvalidConfig wraps every problem ParseConfig finds.
var ErrInvalidConfig = errors.New("invalid dashboard config")

// userName is what a user name may be: it shows up in the audit log.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidUserName reports whether name may name a dashboard user.
func ValidUserName(name string) bool { return userName.MatchString(name) }

// rawConfig is the dashboard: section as written. addr and
// insecure_dev_cookies are options of their own (dashboard-addr,
// insecure-dev-cookies) that the config loader takes out of the section.
type rawConfig struct {
	PublicURL       string         `yaml:"public_url"`
	TLSCertFile     string         `yaml:"tls_cert_file"`
	TLSKeyFile      string         `yaml:"tls_key_file"`
	TrustedProxies  []string       `yaml:"trusted_proxies"`
	IdleTimeout     *time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout *time.Duration `yaml:"absolute_timeout"`
	ReauthWindow    *time.Duration `yaml:"reauth_window"`
	Users           []User         `yaml:"users"`
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
	n, err := config.ParseNode(b)
	if err != nil {
		return Config{}, fmt.Errorf("%w: dashboard: %w", ErrInvalidConfig, err)
	}
	return ParseConfigNode(n)
}

// ParseConfigNode is ParseConfig of the section as read from the config
// file: its problems are *config.FieldError with the file's lines.
func ParseConfigNode(n *yaml.Node) (Config, error) {
	cfg := DefaultConfig()
	var raw rawConfig
	if err := config.DecodeNode(n, &raw, "dashboard"); err != nil {
		return Config{}, config.Mark(err, ErrInvalidConfig)
	}
	cfg.PublicURL, cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Users = raw.PublicURL, raw.TLSCertFile, raw.TLSKeyFile, raw.Users
	var errs []error
	for i, s := range raw.TrustedProxies {
		p, err := parseProxy(s)
		if err != nil {
			errs = append(errs, config.Problem(ErrInvalidConfig, fmt.Sprintf("dashboard.trusted_proxies[%d]", i), "%q: want an address or a CIDR prefix like 10.0.0.0/8", s))
			continue
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, p)
	}
	if raw.IdleTimeout != nil {
		cfg.IdleTimeout = *raw.IdleTimeout
	}
	if raw.AbsoluteTimeout != nil {
		cfg.AbsoluteTimeout = *raw.AbsoluteTimeout
	}
	if raw.ReauthWindow != nil {
		cfg.ReauthWindow = *raw.ReauthWindow
	}
	if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
		return Config{}, config.Lines(err, n, "dashboard")
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
		errs = append(errs, config.Problem(ErrInvalidConfig, "dashboard."+field, format, args...))
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
		errs = append(errs, config.Mark(err, ErrInvalidConfig))
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
