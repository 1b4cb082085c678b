package detect

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/schemas"
)

// Duration is a time.Duration written in YAML as "90s", "15m", "12h", "30d"
// or "2w" (config.ParseDuration).
type Duration time.Duration

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: must be a duration like 90s, 15m, 12h, 30d or 2w", n.Line)
	}
	v, err := config.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Common holds the settings every detector has.
type Common struct {
	// Enabled turns the detector on (default true).
	Enabled bool `yaml:"enabled"`
	// Severity of its alerts (a detector may raise or lower it per finding,
	// e.g. impossible travel through a known VPN is lower).
	Severity schemas.Severity `yaml:"severity"`
	// DedupWindow: the same finding (detector and key) is alerted once
	// within this window.
	DedupWindow Duration `yaml:"dedup_window"`
}

// Validate checks the common settings; name prefixes the messages.
func (c Common) Validate(name string) error {
	var errs []string
	if c.Severity.Rank() == 0 {
		errs = append(errs, fmt.Sprintf("detectors.%s.severity: must be low, medium, high or critical (got %q)", name, c.Severity))
	}
	if c.DedupWindow < 0 {
		errs = append(errs, fmt.Sprintf("detectors.%s.dedup_window: must not be negative", name))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// PolicyDefaults is the session policy assumed when a session declared none
// on session.started.
type PolicyDefaults struct {
	IdleTimeout     Duration `yaml:"idle_timeout"`
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
	ReauthWindow    Duration `yaml:"reauth_window"`
}

// DefaultPolicy follows OWASP ASVS's session management guidance.
var DefaultPolicy = PolicyDefaults{
	IdleTimeout:     Duration(30 * time.Minute),
	AbsoluteTimeout: Duration(12 * time.Hour),
	ReauthWindow:    Duration(15 * time.Minute),
}
