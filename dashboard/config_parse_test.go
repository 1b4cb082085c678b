package dashboard

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	hash := hashPasswordWith("secret password", 8, 1, 1)
	cfg, err := ParseConfig([]byte(`
public_url: https://sessionmon.example.com
idle_timeout: 10m
absolute_timeout: 4h
trusted_proxies: [10.0.0.0/8, 192.0.2.10, "2001:db8::/32", "::ffff:198.51.100.1"]
users:
  - {name: alice, role: admin, password_hash: "` + hash + `"}
  - {name: bob, role: viewer, password_hash: "` + hash + `"}
`))
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, cfg.IdleTimeout)
	require.Equal(t, 4*time.Hour, cfg.AbsoluteTimeout)
	require.Equal(t, DefaultReauthWindow, cfg.ReauthWindow, "unset keys keep their default")
	require.Equal(t, DefaultAddr, cfg.Addr)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.10/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.1/32")}, cfg.TrustedProxies)
	require.Equal(t, []User{{Name: "alice", Role: RoleAdmin, PasswordHash: hash}, {Name: "bob", Role: RoleViewer, PasswordHash: hash}}, cfg.Users)

	empty, err := ParseConfig(nil)
	require.NoError(t, err)
	require.Equal(t, DefaultConfig(), empty)
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	hash := hashPasswordWith("secret password", 8, 1, 1)
	tests := []struct{ name, yaml, want string }{
		{name: "unknown key", yaml: "idle_timout: 5m", want: "line 1: dashboard.idle_timout: unknown key"},
		{name: "bad duration", yaml: "idle_timeout: soon", want: `line 1: dashboard.idle_timeout: must be a duration like 90s, 15m, 12h, 30d or 2w (got "soon")`},
		{name: "days", yaml: "idle_timeout: 2w\nabsolute_timeout: 1d", want: "dashboard.idle_timeout: must not be longer than absolute_timeout"},
		{name: "bad role", yaml: "users: [{name: a, role: root, password_hash: x}]", want: "role must be viewer, analyst or admin"},
		{name: "bad hash", yaml: "users: [{name: a, role: admin, password_hash: plain}]", want: "dashboard.users[0].password_hash"},
		{name: "duplicate user", yaml: "users: [{name: a, role: admin, password_hash: '" + hash + "'}, {name: a, role: viewer, password_hash: '" + hash + "'}]", want: `dashboard.users[1].name: "a" is already users[0]`},
		{name: "bad name", yaml: "users: [{name: 'a b', role: admin, password_hash: '" + hash + "'}]", want: "dashboard.users[0].name"},
		{name: "no role", yaml: "users: [{name: a, password_hash: '" + hash + "'}]", want: "dashboard.users[0].role"},
		{name: "idle over absolute", yaml: "idle_timeout: 9h", want: "dashboard.idle_timeout: must not be longer than absolute_timeout"},
		{name: "reauth", yaml: "reauth_window: 0s", want: "dashboard.reauth_window: must be positive"},
		{name: "public url", yaml: "public_url: sessionmon.example.com", want: "dashboard.public_url"},
		{name: "tls", yaml: "tls_cert_file: cert.pem", want: "dashboard.tls_cert_file"},
		{name: "trusted proxy", yaml: "trusted_proxies: [10.0.0.0/8, proxy.local]", want: `dashboard.trusted_proxies[1]: "proxy.local"`},
		{name: "trusted proxy prefix", yaml: "trusted_proxies: [10.0.0.0/40]", want: "dashboard.trusted_proxies[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
