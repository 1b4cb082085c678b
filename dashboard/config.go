package dashboard

import (
	"net/netip"
	"time"
)

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultAbsoluteTimeout = 8 * time.Hour
	// DefaultReauthWindow is how long a re-authentication allows sensitive
	// actions.
	DefaultReauthWindow = 5 * time.Minute
)

// Config configures the dashboard. It is the dashboard: section of the
// config file (ParseConfig) plus the flags that override it.
type Config struct {
	// Addr is the listen address (host:port).
	Addr string
	// PublicURL is the URL users reach the dashboard at (links in alerts).
	PublicURL string
	// InsecureDevCookies drops the __Host- prefix and the Secure attribute
	// so plain-http localhost works; refused on non-loopback addresses.
	InsecureDevCookies bool
	// TLSCertFile and TLSKeyFile make the dashboard serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the
	// dashboard believes: the client address (sign-in rate limits, audit
	// log, self-monitoring) is read from the header right to left,
	// skipping these proxies (sdk.RequestInspector). Empty: the TCP peer
	// is the client and the header is ignored.
	TrustedProxies []netip.Prefix

	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	ReauthWindow    time.Duration

	// Users are the local users.
	Users []User
}

// User is a local user of the dashboard.
type User struct {
	Name string `yaml:"name"`
	Role Role   `yaml:"role"`
	// PasswordHash is an argon2id hash in the PHC string format
	// ($argon2id$v=19$m=...,t=...,p=...$salt$hash), as `sessionmon user add`
	// prints it.
	PasswordHash string `yaml:"password_hash"`
}

// DefaultConfig returns the configuration out of the box.
func DefaultConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		IdleTimeout:     DefaultIdleTimeout,
		AbsoluteTimeout: DefaultAbsoluteTimeout,
		ReauthWindow:    DefaultReauthWindow,
	}
}
