package config

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestDashboardSection(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
dashboard:
  addr: 127.0.0.1:9477
  insecure_dev_cookies: true
  pseudonym_key: 0123456789abcdef0123456789abcdef
  record_key: fedcba9876543210fedcba9876543210
  idle_timeout: 10m
  users:
    - {name: alice, role: admin, password_hash: x}
`)
	names := []string{"dashboard-addr", "insecure-dev-cookies", "dashboard-pseudonym-key", "dashboard-record-key"}

	c, err := load(t, names, []string{"--config", file}, nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9477", c.Dashboard.Addr)
	require.True(t, c.Dashboard.InsecureDevCookies)
	require.Equal(t, "0123456789abcdef0123456789abcdef", c.Dashboard.PseudonymKey)
	require.Equal(t, "fedcba9876543210fedcba9876543210", c.Dashboard.RecordKey)
	// The rest is left to dashboard.ParseConfig, without the option keys.
	var rest map[string]any
	require.NoError(t, yaml.Unmarshal(c.DashboardYAML, &rest))
	require.Equal(t, []string{"idle_timeout", "users"}, slices.Sorted(maps.Keys(rest)))

	c, err = load(t, names, []string{"--config", file, "--dashboard-addr", "127.0.0.1:7070"},
		map[string]string{"SESSIONMON_INSECURE_DEV_COOKIES": "false"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7070", c.Dashboard.Addr, "flag over file")
	require.False(t, c.Dashboard.InsecureDevCookies, "env over file")

	c, err = load(t, names, nil, nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", c.Dashboard.Addr)
	require.Empty(t, c.DashboardYAML)

	_, err = load(t, names, []string{"--dashboard-addr", "nope"}, nil)
	require.ErrorContains(t, err, "dashboard-addr (SESSIONMON_DASHBOARD_ADDR)")
	_, err = load(t, names, nil, map[string]string{"SESSIONMON_DASHBOARD_PSEUDONYM_KEY": "short"})
	require.ErrorContains(t, err, "dashboard-pseudonym-key (SESSIONMON_DASHBOARD_PSEUDONYM_KEY): must be at least 32 bytes")
	_, err = load(t, names, []string{"--config", writeFile(t, "dashboard: [1]\n")}, nil)
	require.ErrorContains(t, err, "dashboard: must be a mapping")

	_, err = load(t, names, nil, map[string]string{"SESSIONMON_DASHBOARD_RECORD_KEY": "short"})
	require.ErrorContains(t, err, "dashboard-record-key (SESSIONMON_DASHBOARD_RECORD_KEY): must be at least 32 bytes")
	recordKeyFile := writeFile(t, "0123456789abcdef0123456789abcdef-from-a-file\n")
	c, err = load(t, names, nil, map[string]string{"SESSIONMON_DASHBOARD_RECORD_KEY_FILE": recordKeyFile})
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef0123456789abcdef-from-a-file", c.Dashboard.RecordKey)

	for _, name := range []string{"dashboard-pseudonym-key", "dashboard-record-key"} {
		o, ok := Lookup(name)
		require.True(t, ok)
		require.True(t, o.Secret, "%s: a secret: no flag, _FILE, redacted in dumps", name)
	}
}
