package config

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// check runs Check over a config file with every option, as config check
// does, and returns what it read, its warnings and its error.
func check(t *testing.T, body string) (file string, c *Config, err error) {
	t.Helper()
	file = writeFile(t, body)
	l := &Loader{Getenv: func(string) (string, bool) { return "", false }}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.Register(fs)
	require.NoError(t, fs.Parse([]string{"--config", file}))
	c, err = l.Check(fs)
	require.NotNil(t, c)
	return file, c, err
}

// TestYAMLKeysFollowFlagNames: one rule gives every option its key in the
// config file, and no key is a section's or another option's.
func TestYAMLKeysFollowFlagNames(t *testing.T) {
	t.Parallel()
	for _, o := range Options {
		require.Equal(t, strings.ReplaceAll(o.Name, "-", "_"), o.YAML(), "option %s", o.Name)
		require.NotContains(t, o.YAML(), ".", "option %s: a top-level key", o.Name)
		require.NotEqual(t, o.YAML(), o.LegacyYAML, "option %s: a deprecated key differs from the key", o.Name)
		require.NotContains(t, sectionNames, o.YAML(), "option %s: its key is a section's", o.Name)
	}
	require.Empty(t, keyProblems())
}

// TestLegacyKeys: every deprecated key still sets its option, with one
// warning that names the key to write instead.
func TestLegacyKeys(t *testing.T) {
	t.Parallel()
	file, c, err := check(t, `log:
  level: debug
stream:
  partitions: 16
  max_age: 3d
geo:
  city_dbs: [a.mmdb, b.mmdb]
dashboard:
  addr: 127.0.0.1:9477
  idle_timeout: 10m
serve:
  demo: true
demo:
  users: 17
data_dir: /var/lib/sessionmon
`)
	require.NoError(t, err)
	require.Equal(t, "debug", strings.ToLower(c.LogLevel.String()))
	require.Equal(t, 16, c.Stream.Partitions)
	require.Equal(t, []string{"a.mmdb", "b.mmdb"}, c.Geo.CityDBs)
	require.Equal(t, "127.0.0.1:9477", c.Dashboard.Addr)
	require.True(t, c.Serve.Demo)
	require.Equal(t, 17, c.Demo.Users)
	require.Equal(t, "/var/lib/sessionmon", c.DataDir)
	require.Equal(t, "idle_timeout: 10m\n", string(c.DashboardYAML), "the dashboard: section keeps its own keys")

	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		file + ":2: warning: log.level is a deprecated key: write log_level at the top level of the file instead",
		file + ":4: warning: stream.partitions is a deprecated key: write event_partitions at the top level of the file instead",
		file + ":5: warning: stream.max_age is a deprecated key: write stream_max_age at the top level of the file instead",
		file + ":7: warning: geo.city_dbs is a deprecated key: write geo_city_db at the top level of the file instead",
		file + ":9: warning: dashboard.addr is a deprecated key: write dashboard_addr at the top level of the file instead",
		file + ":12: warning: serve.demo is a deprecated key: write demo at the top level of the file instead",
		file + ":14: warning: demo.users is a deprecated key: write demo_users at the top level of the file instead",
	}
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got, "one warning a deprecated key, none for data_dir")

	// Every option's deprecated key, with its default value.
	def := Default()
	for _, o := range Options {
		if o.LegacyYAML == "" || o.FlagOnly {
			continue
		}
		_, c, _ := check(t, nested(o.LegacyYAML, o.get(&def)))
		require.Equal(t, []Warning{{File: c.ConfigFile, Line: strings.Count(o.LegacyYAML, ".") + 1, Key: o.LegacyYAML, Use: o.YAML()}}, c.Warnings, "option %s", o.Name)
	}
}

// nested writes value under the key path (a.b.c) as nested mappings, one
// key a line.
func nested(path, value string) string {
	var b strings.Builder
	parts := strings.Split(path, ".")
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i < len(parts)-1 {
			b.WriteString("\n")
		}
	}
	v, _ := yaml.Marshal(value)
	b.WriteString(" " + string(v))
	return b.String()
}

// TestNewKeys: the top-level keys set their options without warnings,
// next to the dashboard: section's own keys.
func TestNewKeys(t *testing.T) {
	t.Parallel()
	_, c, err := check(t, `log_level: debug
event_partitions: 16
geo_city_db: [a.mmdb, b.mmdb]
dashboard_addr: 127.0.0.1:9477
insecure_dev_cookies: true
dashboard_record_key: fedcba9876543210fedcba9876543210
dashboard:
  idle_timeout: 10m
demo: true
demo_users: 17
http: true
metrics_addr: 127.0.0.1:9193
`)
	require.NoError(t, err)
	require.Empty(t, c.Warnings)
	require.Equal(t, "debug", strings.ToLower(c.LogLevel.String()))
	require.Equal(t, 16, c.Stream.Partitions)
	require.Equal(t, []string{"a.mmdb", "b.mmdb"}, c.Geo.CityDBs)
	require.Equal(t, "127.0.0.1:9477", c.Dashboard.Addr)
	require.True(t, c.Dashboard.InsecureDevCookies)
	require.Equal(t, "fedcba9876543210fedcba9876543210", c.Dashboard.RecordKey)
	require.Equal(t, "idle_timeout: 10m\n", string(c.DashboardYAML))
	require.True(t, c.Serve.Demo)
	require.Equal(t, 17, c.Demo.Users)
	require.True(t, c.Creds.HTTP)
	require.Equal(t, "127.0.0.1:9193", c.MetricsAddr)
	require.Empty(t, c.HTTPAddr)
}

// TestKeyAndLegacyKey: an option set under both its keys is an error that
// names both lines, and neither value applies.
func TestKeyAndLegacyKey(t *testing.T) {
	t.Parallel()
	file, c, err := check(t, "event_partitions: 8\nlog_level: info\nstream:\n  partitions: 16\n")
	require.EqualError(t, err, file+":1: event_partitions: set twice: here and on line 4 by its deprecated key stream.partitions; remove stream.partitions")
	require.Equal(t, Default().Stream.Partitions, c.Stream.Partitions)
	require.Empty(t, c.Warnings)

	file, _, err = check(t, "dashboard:\n  users: []\n  addr: 127.0.0.1:1\ndashboard_addr: 127.0.0.1:2\n")
	require.EqualError(t, err, file+":4: dashboard_addr: set twice: here and on line 3 by its deprecated key dashboard.addr; remove dashboard.addr")

	file, _, err = check(t, "dashboard:\n  users: []\n  dashboard_addr: 127.0.0.1:1\n")
	require.EqualError(t, err, file+":3: dashboard.dashboard_addr: unknown key (did you mean dashboard_addr, at the top level?)")
}

// TestOptionErrorsInFileNewKey: a problem Validate finds is placed at the
// key the file sets the option with.
func TestOptionErrorsInFileNewKey(t *testing.T) {
	t.Parallel()
	file, c, err := check(t, "log_level: warn\nstream_max_age: 1d\nstream:\n  duplicates: 2d\n")
	problems := c.InFile(err)
	require.Len(t, problems, 1)
	require.Equal(t, file+":4: stream.duplicates: stream-duplicates (SESSIONMON_STREAM_DUPLICATES): must not be longer than stream-max-age", problems[0].Error())

	file, c, err = check(t, "log_level: warn\nstream_max_age: 1d\nstream_duplicates: 2d\n")
	problems = c.InFile(err)
	require.Len(t, problems, 1)
	require.Equal(t, file+":3: stream_duplicates: stream-duplicates (SESSIONMON_STREAM_DUPLICATES): must not be longer than stream-max-age", problems[0].Error())
}
