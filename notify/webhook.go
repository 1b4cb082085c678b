package notify

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/schemas"
)

// Defaults of a webhook and of the notifier.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultGiveUpAfter = 24 * time.Hour
	DefaultConcurrency = 2
	DefaultRetryMin    = 2 * time.Second
	DefaultRetryMax    = 10 * time.Minute
	DefaultAckWait     = 2 * time.Minute
)

// Limits on configuration values.
const (
	maxTimeout     = 5 * time.Minute
	maxConcurrency = 64
	maxWebhooks    = 100
)

// Format is how an alert is turned into a request body.
type Format string

// Formats.
const (
	// FormatJSON sends the alert's JSON as published on SESSIONMON_ALERTS.
	FormatJSON Format = "json"
	// FormatSlack sends a Slack incoming-webhook message.
	FormatSlack Format = "slack"
	// FormatOCSF sends an OCSF 1.x Detection Finding (class_uid 2004),
	// for SIEMs and security data lakes that ingest OCSF.
	FormatOCSF Format = "ocsf"
	// FormatTemplate renders the webhook's text/template.
	FormatTemplate Format = "template"
)

// webhookName keeps names usable in consumer names, subjects and KV keys.
var webhookName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// detectorName is a detector name as it appears in alert subjects.
var detectorName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// Webhook is one configured receiver.
type Webhook struct {
	// Name identifies the webhook in metrics, logs, the delivery log and
	// its JetStream consumer. Lower case letters, digits, _ and -.
	Name string `yaml:"name"`
	// URL receives a POST per alert. https only, unless AllowHTTP.
	URL string `yaml:"url"`
	// Secret signs requests (whsec_ + base64), or SecretFile holds it.
	// Exactly one of them must be set, except for FormatSlack: Slack
	// checks no signature (the incoming-webhook URL is its credential), so
	// a Slack webhook may have neither and is then sent unsigned.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// PreviousSecrets (or files) are also signed with during a secret
	// rotation, so receivers still on the old secret verify.
	PreviousSecrets     []string `yaml:"previous_secrets"`
	PreviousSecretFiles []string `yaml:"previous_secret_files"`

	// Format of the body: json (default), slack, ocsf or template.
	Format Format `yaml:"format"`
	// Template (or TemplateFile) is the text/template of FormatTemplate.
	Template     string `yaml:"template"`
	TemplateFile string `yaml:"template_file"`
	// ContentType of FormatTemplate bodies (default application/json).
	ContentType string `yaml:"content_type"`

	// MinSeverity: only alerts at least this severe (default low: all).
	MinSeverity schemas.Severity `yaml:"min_severity"`
	// Detectors: only alerts of these detectors (default all).
	Detectors []string `yaml:"detectors"`
	// Apps: only alerts of these apps (default all).
	Apps []string `yaml:"apps"`

	// Timeout bounds one attempt, connection to last body byte.
	Timeout time.Duration `yaml:"timeout"`
	// RateLimit is the most requests per second (0: unlimited), with
	// bursts of up to Burst (default 1).
	RateLimit float64 `yaml:"rate_limit"`
	Burst     int     `yaml:"burst"`
	// Concurrency is how many requests may be in flight at once.
	Concurrency int `yaml:"concurrency"`
	// GiveUpAfter is how long after an alert was published it is retried;
	// after that it is recorded as undeliverable.
	GiveUpAfter time.Duration `yaml:"give_up_after"`

	// AllowHTTP permits a plain http:// URL.
	AllowHTTP bool `yaml:"allow_http"`
	// AllowPrivate permits loopback, private, link-local and every other
	// address that is not globally reachable (see forbiddenAddr), both in
	// the URL and where its name resolves to.
	AllowPrivate bool `yaml:"allow_private"`
}

// Config is the notify: section of sessionmon's configuration.
type Config struct {
	// DashboardURL is the dashboard's base URL; formats link an alert as
	// DashboardURL + "/alerts/" + id. Empty: no links.
	DashboardURL string `yaml:"dashboard_url"`
	// RetryMin and RetryMax bound the exponential backoff between attempts.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// AckWait is how long JetStream waits for an in-flight attempt before
	// delivering the alert again (after a crash). It must exceed twice the
	// longest timeout.
	AckWait time.Duration `yaml:"ack_wait"`
	// Webhooks are the receivers.
	Webhooks []Webhook `yaml:"webhooks"`
}

// DefaultConfig returns a Config with no webhooks and default timings.
func DefaultConfig() Config {
	return Config{RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, AckWait: DefaultAckWait}
}

// ParseConfig decodes the notify: section (the mapping under the notify:
// key) over DefaultConfig, strictly: an unknown key is an error. It fills
// each webhook's defaults and validates the result, returning every
// problem at once. It does no I/O: secret and template files are read by
// New.
func ParseConfig(b []byte) (Config, error) {
	n, err := config.ParseNode(b)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ParseConfigNode(n)
}

// ParseConfigNode is ParseConfig of the section as read from the config
// file: its problems are *config.FieldError with the file's lines.
func ParseConfigNode(n *yaml.Node) (Config, error) { return ParseConfigNodeWith(n, nil) }

// ParseConfigNodeWith is ParseConfigNode that also checks the names in
// webhooks[].detectors against detectors, the names of package detect's
// detectors (see CheckDetectors); nil checks their form only.
func ParseConfigNodeWith(n *yaml.Node, detectors []string) (Config, error) {
	cfg := DefaultConfig()
	if err := config.DecodeNode(n, &cfg, ""); err != nil {
		return Config{}, config.Mark(err, ErrInvalidConfig)
	}
	cfg.ApplyDefaults()
	errs := []error{cfg.Validate()}
	if detectors != nil {
		errs = append(errs, cfg.CheckDetectors(detectors))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, config.Lines(err, n, "")
	}
	return cfg, nil
}

// CheckDetectors reports every name in webhooks[].detectors that is not
// one of known (the detectors of package detect): such a webhook would
// never fire.
func (c *Config) CheckDetectors(known []string) error {
	var errs []error
	for i, w := range c.Webhooks {
		for j, d := range w.Detectors {
			if detectorName.MatchString(d) && !slices.Contains(known, d) {
				errs = append(errs, config.Problem(ErrInvalidConfig, fmt.Sprintf("webhooks[%d].detectors[%d]", i, j),
					"unknown detector %q (known: %s)", d, strings.Join(known, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// ApplyDefaults fills unset webhook fields with their defaults.
func (c *Config) ApplyDefaults() {
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if w.Format == "" {
			w.Format = FormatJSON
		}
		if w.MinSeverity == "" {
			w.MinSeverity = schemas.SeverityLow
		}
		if w.Timeout == 0 {
			w.Timeout = DefaultTimeout
		}
		if w.Concurrency == 0 {
			w.Concurrency = DefaultConcurrency
		}
		if w.GiveUpAfter == 0 {
			w.GiveUpAfter = DefaultGiveUpAfter
		}
		if w.RateLimit > 0 && w.Burst == 0 {
			w.Burst = 1
		}
		if w.Format == FormatTemplate && w.ContentType == "" {
			w.ContentType = "application/json"
		}
	}
}

// Validate checks every field and the rules between them, and returns all
// problems joined, each naming its field (webhooks[0].url) and wrapping
// ErrInvalidConfig. It does no I/O; call ApplyDefaults first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, config.Problem(ErrInvalidConfig, field, format, args...))
	}
	if c.DashboardURL != "" {
		u, err := url.Parse(c.DashboardURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("dashboard_url", "must be an absolute http(s) URL")
		}
	}
	if c.RetryMin <= 0 {
		bad("retry_min", "must be positive")
	}
	if c.RetryMax < c.RetryMin {
		bad("retry_max", "must be at least retry_min")
	}
	if len(c.Webhooks) > maxWebhooks {
		bad("webhooks", "at most %d", maxWebhooks)
	}
	names := make(map[string]int)
	var longest time.Duration
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		p := fmt.Sprintf("webhooks[%d]", i)
		if !webhookName.MatchString(w.Name) {
			bad(p+".name", "must be 1 to 48 lower case letters, digits, _ or - (got %q)", w.Name)
		} else if j, dup := names[w.Name]; dup {
			bad(p+".name", "%q is also webhooks[%d].name", w.Name, j)
		} else {
			names[w.Name] = i
		}
		if err := CheckURL(w.URL, w.AllowHTTP, w.AllowPrivate); err != nil {
			bad(p+".url", "%v", err)
		}
		switch {
		case w.Secret != "" && w.SecretFile != "":
			bad(p+".secret", "set secret or secret_file, not both")
		case w.Secret == "" && w.SecretFile == "":
			// Slack checks no signature: its incoming-webhook URL is the
			// credential. Every other receiver verifies one.
			if w.Format != FormatSlack {
				bad(p+".secret", "a secret (or secret_file) is required")
			}
		case w.Secret != "":
			if _, err := ParseSecret(w.Secret); err != nil {
				bad(p+".secret", "%v", err)
			}
		}
		for j, s := range w.PreviousSecrets {
			if _, err := ParseSecret(s); err != nil {
				bad(fmt.Sprintf("%s.previous_secrets[%d]", p, j), "%v", err)
			}
		}
		for j, f := range w.PreviousSecretFiles {
			if f == "" {
				bad(fmt.Sprintf("%s.previous_secret_files[%d]", p, j), "must not be empty")
			}
		}
		switch w.Format {
		case FormatJSON, FormatSlack, FormatOCSF:
			if w.Template != "" || w.TemplateFile != "" {
				bad(p+".template", "only used with format: template")
			}
		case FormatTemplate:
			switch {
			case w.Template != "" && w.TemplateFile != "":
				bad(p+".template", "set template or template_file, not both")
			case w.Template == "" && w.TemplateFile == "":
				bad(p+".template", "format template needs a template (or template_file)")
			case w.Template != "":
				if _, err := parseTemplate(w.Name, w.Template); err != nil {
					bad(p+".template", "%v", err)
				}
			}
		default:
			bad(p+".format", "must be json, slack, ocsf or template (got %q)", w.Format)
		}
		if w.ContentType != "" && w.Format != FormatTemplate {
			bad(p+".content_type", "only used with format: template")
		}
		if w.MinSeverity.Rank() == 0 {
			bad(p+".min_severity", "must be low, medium, high or critical (got %q)", w.MinSeverity)
		}
		seenDetectors := make(map[string]bool)
		for j, d := range w.Detectors {
			switch {
			case !detectorName.MatchString(d):
				bad(fmt.Sprintf("%s.detectors[%d]", p, j), "must be a detector name (got %q)", d)
			case seenDetectors[d]:
				bad(fmt.Sprintf("%s.detectors[%d]", p, j), "%q is listed twice", d)
			}
			seenDetectors[d] = true
		}
		for j, a := range w.Apps {
			if a == "" {
				bad(fmt.Sprintf("%s.apps[%d]", p, j), "must not be empty")
			}
		}
		if w.Timeout <= 0 || w.Timeout > maxTimeout {
			bad(p+".timeout", "must be between 0 and %s (got %s)", maxTimeout, w.Timeout)
		}
		longest = max(longest, w.Timeout)
		if w.RateLimit < 0 {
			bad(p+".rate_limit", "must not be negative")
		}
		if w.Burst < 0 || (w.RateLimit > 0 && w.Burst < 1) {
			bad(p+".burst", "must be at least 1 with a rate_limit")
		}
		if w.Concurrency < 1 || w.Concurrency > maxConcurrency {
			bad(p+".concurrency", "must be 1 to %d (got %d)", maxConcurrency, w.Concurrency)
		}
		if w.GiveUpAfter <= 0 {
			bad(p+".give_up_after", "must be positive")
		}
	}
	if c.AckWait < 2*longest || c.AckWait < time.Second {
		bad("ack_wait", "must be at least 1s and twice the longest timeout (%s)", longest)
	}
	return errors.Join(errs...)
}

// Redacted returns a copy fit for a config dump: secrets are replaced and
// URLs cut to scheme and host, since their paths often hold tokens.
func (c Config) Redacted() Config {
	out := c
	out.Webhooks = make([]Webhook, len(c.Webhooks))
	for i, w := range c.Webhooks {
		if w.Secret != "" {
			w.Secret = "REDACTED"
		}
		if len(w.PreviousSecrets) > 0 {
			w.PreviousSecrets = []string{"REDACTED"}
		}
		w.URL = redactURL(w.URL)
		out.Webhooks[i] = w
	}
	return out
}

// redactURL keeps a URL's scheme and host.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "REDACTED"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// CheckURL checks a webhook URL at configuration time: absolute, https
// (http only with allowHTTP), a host, no user info, and, unless
// allowPrivate, no localhost name and no IP literal that is not a globally
// reachable unicast address by the IANA special-purpose registries
// (loopback, private, link local, documentation, benchmarking, reserved,
// NAT64 or 6to4 embedding such an IPv4 address, ...; see forbiddenAddr).
// Names that resolve to such addresses are refused when connecting (see
// dialControl).
func CheckURL(raw string, allowHTTP, allowPrivate bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return errors.New("plain http needs allow_http: true")
		}
	default:
		return fmt.Errorf("scheme must be https (got %q)", u.Scheme)
	}
	if u.User != nil {
		return errors.New("must not contain user info")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("must name a host")
	}
	if allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := forbiddenAddr(ip); why != "" {
			return fmt.Errorf("%w: %s is an internal address (%s); allow_private: true permits it", ErrForbiddenAddress, ip, why)
		}
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%w: %s is loopback (allow_private: true permits it)", ErrForbiddenAddress, host)
	}
	if net.ParseIP(host) != nil {
		// A form netip rejects but the resolver might accept.
		return fmt.Errorf("%w: unusual IP literal %q", ErrForbiddenAddress, host)
	}
	if labels := strings.Split(h, "."); h != "" && labels[len(labels)-1] != "" && labels[len(labels)-1][0] >= '0' && labels[len(labels)-1][0] <= '9' {
		// No top-level domain starts with a digit: this is an IPv4
		// address in a form a system resolver may still read (2130706433,
		// 0177.0.0.1, 127.1, 0x7f.1), not a name.
		return fmt.Errorf("%w: %q is an IP address in a shortened, octal, hex or decimal form (write it as a.b.c.d)", ErrForbiddenAddress, host)
	}
	return nil
}
