package config

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// load runs a Loader with the given flags, environment and config file.
func load(t *testing.T, names []string, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	l := &Loader{Names: names, Getenv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.Register(fs)
	require.NoError(t, fs.Parse(args))
	return l.Load(fs)
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sessionmon.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "nats:\n  url: nats://file:4222\nstream:\n  max_age: 30d\nhttp:\n  addr: 127.0.0.1:9001\nlog:\n  level: debug\n")
	names := []string{"nats-url", "stream-max-age", "http-addr", "demo", "log-level", "clickhouse-cluster"}

	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c *Config) {
				require.Equal(t, Default(), *c)
			},
		},
		{
			name: "file over defaults",
			args: []string{"--config", file},
			check: func(t *testing.T, c *Config) {
				require.Equal(t, "nats://file:4222", c.NATS.URL)
				require.Equal(t, 30*24*time.Hour, c.Stream.MaxAge)
				require.Equal(t, slog.LevelDebug, c.LogLevel)
			},
		},
		{
			name: "env over file",
			args: []string{"--config", file},
			env:  map[string]string{"SESSIONMON_NATS_URL": "nats://env:4222", "SESSIONMON_STREAM_MAX_AGE": "48h"},
			check: func(t *testing.T, c *Config) {
				require.Equal(t, "nats://env:4222", c.NATS.URL)
				require.Equal(t, 48*time.Hour, c.Stream.MaxAge)
				require.Equal(t, "127.0.0.1:9001", c.HTTPAddr)
			},
		},
		{
			name: "clickhouse cluster from env and file",
			args: []string{"--config", writeFile(t, "clickhouse:\n  cluster: from_file\n")},
			env:  map[string]string{"SESSIONMON_CLICKHOUSE_CLUSTER": "prod_1"},
			check: func(t *testing.T, c *Config) {
				require.Equal(t, "prod_1", c.ClickHouseCluster)
				require.Empty(t, Default().ClickHouseCluster, "single-node mode is the default")
			},
		},
		{
			name: "flag over env",
			args: []string{"--nats-url", "nats://flag:4222", "--demo"},
			env:  map[string]string{"SESSIONMON_NATS_URL": "nats://env:4222", ConfigEnv: file},
			check: func(t *testing.T, c *Config) {
				require.Equal(t, "nats://flag:4222", c.NATS.URL)
				require.True(t, c.Serve.Demo)
				require.Equal(t, file, c.ConfigFile)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, names, tt.args, tt.env)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string
	}{
		{
			name: "unknown key in file",
			file: "nats:\n  ulr: nats://x:4222\n",
			want: []string{`sessionmon.yaml:2: nats.ulr: unknown key (did you mean nats_url?)`},
		},
		{
			name: "unknown top-level key in file",
			file: "log_level: info\nnats_ulr: nats://x:4222\n",
			want: []string{`sessionmon.yaml:2: nats_ulr: unknown key (did you mean nats_url?)`},
		},
		{
			name: "option key nested in file",
			file: "nats:\n  nats_url: nats://x:4222\n",
			want: []string{`sessionmon.yaml:2: nats.nats_url: unknown key (did you mean nats_url, at the top level?)`},
		},
		{
			name: "bad duration in env names the variable",
			env:  map[string]string{"SESSIONMON_STREAM_MAX_AGE": "a week"},
			want: []string{"SESSIONMON_STREAM_MAX_AGE", "must be a duration"},
		},
		{
			name: "every validation problem at once, each with its variable",
			args: []string{"--log-format", "xml", "--nats-url", "http://x"},
			env:  map[string]string{"SESSIONMON_STREAM_DUPLICATES": "0s"},
			want: []string{"SESSIONMON_LOG_FORMAT", "SESSIONMON_NATS_URL", "SESSIONMON_STREAM_DUPLICATES"},
		},
		{
			name: "user without password",
			env:  map[string]string{"SESSIONMON_NATS_USER": "app", "SESSIONMON_NATS_URL": "nats://x:4222"},
			want: []string{"user and password go together"},
		},
		{
			name: "clickhouse cluster name that is not an identifier",
			env:  map[string]string{"SESSIONMON_CLICKHOUSE_CLUSTER": "prod-1"},
			want: []string{"clickhouse-cluster (SESSIONMON_CLICKHOUSE_CLUSTER): must be a cluster name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			names := []string{"log-format", "nats-url", "stream-max-age", "stream-duplicates", "nats-user", "nats-password", "clickhouse-cluster"}
			_, err := load(t, names, args, tt.env)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(secretFile, []byte("s3cret-token\n"), 0o600))

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := &Loader{Names: []string{"nats-url", "nats-token"}}
	l.Register(fs)
	require.Nil(t, fs.Lookup("nats-token"), "a secret must have no flag")

	c, err := load(t, []string{"nats-url", "nats-token"}, nil, map[string]string{
		"SESSIONMON_NATS_URL":        "nats://x:4222",
		"SESSIONMON_NATS_TOKEN_FILE": secretFile,
	})
	require.NoError(t, err)
	require.Equal(t, "s3cret-token", c.NATS.Token)
	for _, a := range c.Dump() {
		require.NotContains(t, a.Value.String(), "s3cret", "dump of %s", a.Key)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"0", 0, true},
		{"1.5w", 0, false},
		{"99999999999999w", 0, false},
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"-1d", 0, false},
		{"d", 0, false},
		{"week", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDetectSectionIsKeptForItsPackage(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "log:\n  level: warn\ndetect:\n  lateness: 3s\n  detectors:\n    brute_force: {threshold: 7}\nnotify:\n  webhooks: [{name: ops}]\n")
	c, err := load(t, nil, []string{"--config", file}, nil)
	require.NoError(t, err)
	require.Equal(t, slog.LevelWarn, c.LogLevel)
	require.Contains(t, string(c.DetectYAML), "lateness: 3s")
	require.Contains(t, string(c.DetectYAML), "threshold: 7")
	require.Contains(t, string(c.NotifyYAML), "name: ops")
}

func TestClickHousePasswordIsASecret(t *testing.T) {
	t.Parallel()
	c, err := load(t, []string{"clickhouse-dsn", "clickhouse-password"}, []string{"--clickhouse-dsn", "clickhouse://ingest@db:9000/sessionmon"},
		map[string]string{"SESSIONMON_CLICKHOUSE_PASSWORD": "pa55"})
	require.NoError(t, err)
	require.Equal(t, "clickhouse://ingest:pa55@db:9000/sessionmon", c.ClickHouseURL())
	for _, a := range c.Dump() {
		require.NotContains(t, a.Value.String(), "pa55", "dump of %s", a.Key)
	}
	d := Default()
	require.Equal(t, d.ClickHouseDSN, d.ClickHouseURL(), "no password: the DSN as given")
}

func TestLoadReadsOnlyTheCommandsOptions(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "http:\n  addr: 127.0.0.1:9001\nbench:\n  events: 0\nstream:\n  max_age: 2d\n")
	env := map[string]string{
		"SESSIONMON_EVENTS":         "not a number", // another command's option, malformed
		"SESSIONMON_STREAM_MAX_AGE": "3d",           // another command's option
		"SESSIONMON_HTTP_ADDR":      "127.0.0.1:9002",
	}
	c, err := load(t, []string{"http-addr"}, []string{"--config", file}, env)
	require.NoError(t, err, "the variables and keys of options the command does not take are ignored")
	require.Equal(t, "127.0.0.1:9002", c.HTTPAddr)
	require.Equal(t, Default().Stream.MaxAge, c.Stream.MaxAge)
	require.Equal(t, Default().Bench.Events, c.Bench.Events)

	_, err = load(t, []string{"events"}, nil, env)
	require.ErrorContains(t, err, "SESSIONMON_EVENTS", "a command reads its own options")

	_, err = load(t, []string{"http-addr"}, []string{"--config", writeFile(t, "htpp:\n  addr: x\n")}, nil)
	require.ErrorContains(t, err, `sessionmon.yaml:2: htpp.addr: unknown key`, "a key no option has is still an error")

	c, err = load(t, []string{}, nil, map[string]string{"SESSIONMON_LOG_LEVEL": "verbose"})
	require.NoError(t, err, "a command without options reads none")
	require.Equal(t, Default(), *c)
}

func TestFlagOnlyOptions(t *testing.T) {
	t.Parallel()
	names := []string{"input", "format"}
	c, err := load(t, names, nil, map[string]string{"SESSIONMON_INPUT": "events.ndjson", "SESSIONMON_FORMAT": "json"})
	require.NoError(t, err)
	require.Empty(t, c.Detect.Input, "--input is a flag only: the environment does not switch detect offline")
	require.Equal(t, "table", c.Format)

	_, err = load(t, names, []string{"--config", writeFile(t, "detect_offline:\n  input: events.ndjson\n")}, nil)
	require.ErrorContains(t, err, "--input is a command-line flag only")

	c, err = load(t, names, []string{"--input", "events.ndjson", "-o", "json"}, nil)
	require.NoError(t, err)
	require.Equal(t, "events.ndjson", c.Detect.Input)
	require.Equal(t, "json", c.Format)
	_, err = load(t, names, []string{"--format", "yaml"}, nil)
	require.ErrorContains(t, err, "must be table or json")
}
