// Package deploy_test checks the deployment files: the compose files
// (loaded with the compose-spec loader, since these machines have no Docker
// engine), the Dockerfile, the NATS configurations (run in an embedded
// nats-server), the systemd unit and the example environment. Every
// SESSIONMON_* variable they set must be one sessionmon reads.
package deploy_test

import (
	"context"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
)

// repoRoot is the repository's top directory (this package is deploy/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	return root
}

// loadProject loads compose files, relative to the repository, with every
// profile enabled.
func loadProject(t *testing.T, files ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	details := types.ConfigDetails{WorkingDir: root, Environment: types.Mapping{}}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: filepath.Join(root, f), Content: b})
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("sessionmon", true)
		o.Profiles = []string{"*"}
	})
	require.NoError(t, err, "load %v", files)
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	require.NoError(t, err, "service %s", name)
	return s
}

// secretOptions maps the environment variable of every secret option to
// its option name.
func secretEnv() map[string]string {
	out := map[string]string{}
	for _, o := range config.Options {
		if o.Secret {
			out[config.EnvName(o.Name)] = o.Name
		}
	}
	return out
}

// checkSessionmonEnv checks that every SESSIONMON_* variable is one
// sessionmon reads, that secrets are given only as files, and returns the
// environment as a plain map.
func checkSessionmonEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	secrets := secretEnv()
	for name, value := range env {
		if !strings.HasPrefix(name, "SESSIONMON_") {
			continue
		}
		if name == config.ConfigEnv {
			continue
		}
		base, isFile := strings.CutSuffix(name, "_FILE")
		if isFile {
			_, ok := secrets[base]
			require.True(t, ok, "%s: %s: only secret options can be read from a file", where, name)
			require.NotEmpty(t, value, "%s: %s", where, name)
			continue
		}
		_, secret := secrets[name]
		require.False(t, secret, "%s: %s must come from a file (%s_FILE), not a value in the file", where, name, name)
		opt := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "SESSIONMON_"), "_", "-"))
		o, ok := config.Lookup(opt)
		require.True(t, ok, "%s: %s is not an option sessionmon reads", where, name)
		require.Equal(t, name, config.EnvName(o.Name))
	}
}

// loadConfig builds sessionmon's Config from a service's environment, with
// container paths (bind mounts, secrets) mapped to files here, and so
// proves the values valid, not just the names.
func loadConfig(t *testing.T, p *types.Project, s types.ServiceConfig) *config.Config {
	t.Helper()
	paths := map[string]string{}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			paths[v.Target] = v.Source
		}
	}
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = "/run/secrets/" + sec.Source
		} else if !filepath.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		f := filepath.Join(t.TempDir(), sec.Source)
		require.NoError(t, os.WriteFile(f, []byte("test-secret-"+sec.Source+"\n"), 0o600))
		paths[target] = f
		require.Contains(t, p.Secrets, sec.Source, "service %s uses undeclared secret %s", s.Name, sec.Source)
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		require.NotNil(t, v, "%s: %s has no value", s.Name, k)
		val := *v
		if local, ok := paths[val]; ok {
			val = local
		}
		env[k] = val
	}
	fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
	l := &config.Loader{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	l.Register(fs)
	require.NoError(t, fs.Parse(nil))
	cfg, err := l.Load(fs)
	require.NoError(t, err, "service %s: sessionmon rejects its environment", s.Name)
	return cfg
}

func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func volumeAt(t *testing.T, s types.ServiceConfig, target string) types.ServiceVolumeConfig {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			return v
		}
	}
	require.Failf(t, "missing volume", "service %s mounts nothing at %s", s.Name, target)
	return types.ServiceVolumeConfig{}
}

var (
	natsImage       = regexp.MustCompile(`^nats:2\.(\d+)(\.\d+)?-alpine$`)
	clickhouseImage = regexp.MustCompile(`^clickhouse/clickhouse-server:(\d+)\.(\d+)$`)
)

func TestComposeSingleHost(t *testing.T) {
	t.Parallel()
	p := loadProject(t, "docker-compose.yml")
	require.ElementsMatch(t, []string{"nats", "clickhouse", "sessionmon", "ingest"}, slices.Collect(maps.Keys(p.Services)))

	nats := service(t, p, "nats")
	m := natsImage.FindStringSubmatch(nats.Image)
	require.NotNil(t, m, "nats image %q: want a pinned nats:2.N-alpine (alpine: its healthcheck needs wget)", nats.Image)
	require.Equal(t, types.VolumeTypeVolume, volumeAt(t, nats, "/data").Type, "JetStream store on a named volume")
	require.Equal(t, "nats-data", volumeAt(t, nats, "/data").Source)
	conf := volumeAt(t, nats, "/etc/nats/nats.conf")
	require.True(t, conf.ReadOnly)
	require.FileExists(t, conf.Source)
	require.Contains(t, strings.Join(nats.Command, " "), "--config /etc/nats/nats.conf")
	auth := volumeAt(t, nats, "/etc/nats/auth.conf")
	require.True(t, auth.ReadOnly)
	require.Equal(t, filepath.Join(repoRoot(t), "secrets", "nats", "auth.conf"), auth.Source, "written by sessionmon creds init --dir secrets/nats")
	requirePorts(t, nats, map[uint32]string{4222: "127.0.0.1"})

	ch := service(t, p, "clickhouse")
	m = clickhouseImage.FindStringSubmatch(ch.Image)
	require.NotNil(t, m, "clickhouse image %q: want the official image pinned to major.minor", ch.Image)
	require.Contains(t, []string{"3", "8"}, m[2], "ClickHouse LTS releases are YY.3 and YY.8, got %s", ch.Image)
	require.Equal(t, "clickhouse-data", volumeAt(t, ch, "/var/lib/clickhouse").Source)
	require.Empty(t, ch.Ports, "ClickHouse stays inside the compose network")
	chEnv := envOf(ch)
	require.Equal(t, "sessionmon", chEnv["CLICKHOUSE_USER"])
	require.NotContains(t, chEnv, "CLICKHOUSE_PASSWORD", "the password comes from the secret file")
	require.Contains(t, strings.Join(ch.Command, " "), "/run/secrets/clickhouse_password")

	sm := service(t, p, "sessionmon")
	require.NotNil(t, sm.Build)
	require.Equal(t, "Dockerfile", sm.Build.Dockerfile)
	require.Equal(t, repoRoot(t), sm.Build.Context)
	require.Equal(t, types.ShellCommand{"serve"}, sm.Command)
	requirePorts(t, sm, map[uint32]string{8080: "127.0.0.1", 9477: "127.0.0.1"})
	requireHealthy(t, sm, "nats", "clickhouse")
	checkSessionmonEnv(t, "sessionmon", envOf(sm))
	cfg := loadConfig(t, p, sm)
	require.Equal(t, "nats://nats:4222", cfg.NATS.URL)
	require.Empty(t, cfg.NATS.User)
	require.Equal(t, "sessionmon.creds", filepath.Base(p.Secrets["nats_sessionmon_creds"].File), "the service user, not the admin")
	creds, err := os.ReadFile(cfg.NATS.CredsFile)
	require.NoError(t, err)
	require.Equal(t, "test-secret-nats_sessionmon_creds\n", string(creds))
	require.Equal(t, "test-secret-clickhouse_password", cfg.ClickHousePassword)
	require.Equal(t, "test-secret-dashboard_admin_password", cfg.Dashboard.AdminPassword,
		"the first admin's password, so that a fresh `docker compose up` has a dashboard one can sign in to")
	require.Contains(t, cfg.ClickHouseURL(), "@clickhouse:9000/sessionmon")
	require.Equal(t, 1, cfg.Stream.Replicas)
	require.Equal(t, "0.0.0.0:8080", cfg.Dashboard.Addr, "the published port 8080 must reach the dashboard and the intake")
	require.Equal(t, "0.0.0.0:9477", cfg.MetricsAddr, "the published port 9477 must reach /metrics, and the healthcheck /readyz")
	require.Empty(t, cfg.HTTPAddr, "not the deprecated http-addr")
	require.Equal(t, "json", cfg.LogFormat)
	require.Equal(t, types.VolumeTypeVolume, volumeAt(t, sm, cfg.DataDir).Type, "data dir on a named volume")
	require.NotEmpty(t, cfg.ConfigFile)

	ing := service(t, p, "ingest")
	require.Equal(t, []string{"scale"}, ing.Profiles)
	require.Equal(t, types.ShellCommand{"ingest"}, ing.Command)
	require.Equal(t, sm.Image, ing.Image)
	requireHealthy(t, ing, "sessionmon")
	checkSessionmonEnv(t, "ingest", envOf(ing))
	require.Equal(t, "0.0.0.0:9477", loadConfig(t, p, ing).MetricsAddr, "its healthcheck probes /readyz there")

	for _, s := range []types.ServiceConfig{nats, ch, sm, ing} {
		requireHealthcheck(t, s)
		requireNoSecretFlags(t, s)
	}
	for name, sec := range p.Secrets {
		require.NotEmpty(t, sec.File, "secret %s must come from a file", name)
		require.True(t, strings.HasPrefix(sec.File, filepath.Join(repoRoot(t), "secrets")+string(filepath.Separator)),
			"secret %s: file %s outside ./secrets (kept out of git and the image)", name, sec.File)
	}
}

func TestComposeCluster(t *testing.T) {
	t.Parallel()
	p := loadProject(t, "docker-compose.yml", "deploy/docker-compose.cluster.yml")
	nodes := []string{"nats", "nats-2", "nats-3"}
	names := map[string]bool{}
	stores := map[string]bool{}
	for _, n := range nodes {
		s := service(t, p, n)
		require.Regexp(t, natsImage, s.Image)
		conf := volumeAt(t, s, "/etc/nats/cluster.conf")
		require.FileExists(t, conf.Source)
		require.Equal(t, filepath.Join(repoRoot(t), "secrets", "nats", "auth.conf"), volumeAt(t, s, "/etc/nats/auth.conf").Source, n)
		require.Contains(t, strings.Join(s.Command, " "), "--config /etc/nats/cluster.conf", n)
		names[envOf(s)["NATS_SERVER_NAME"]] = true
		data := volumeAt(t, s, "/data")
		require.Equal(t, types.VolumeTypeVolume, data.Type)
		stores[data.Source] = true
		requireHealthcheck(t, s)
		for _, port := range s.Ports {
			require.NotEqual(t, uint32(6222), port.Target, "%s: the route port must not be published", n)
		}
	}
	require.Len(t, names, 3, "each node needs its own server name")
	require.Len(t, stores, 3, "each node needs its own JetStream volume")

	for _, name := range []string{"sessionmon", "ingest"} {
		s := service(t, p, name)
		checkSessionmonEnv(t, name, envOf(s))
		cfg := loadConfig(t, p, s)
		require.Equal(t, 3, cfg.Stream.Replicas, name)
		urls := strings.Split(cfg.NATS.URL, ",")
		require.Len(t, urls, 3, name)
		for i, n := range nodes {
			require.Equal(t, "nats://"+n+":4222", urls[i])
		}
	}
	requireHealthy(t, service(t, p, "sessionmon"), append(nodes, "clickhouse")...)
}

func requirePorts(t *testing.T, s types.ServiceConfig, want map[uint32]string) {
	t.Helper()
	got := map[uint32]string{}
	for _, port := range s.Ports {
		got[port.Target] = port.HostIP
	}
	require.Equal(t, want, got, "service %s: published ports (target → host address)", s.Name)
}

func requireHealthy(t *testing.T, s types.ServiceConfig, deps ...string) {
	t.Helper()
	require.Len(t, s.DependsOn, len(deps), "service %s depends_on", s.Name)
	for _, d := range deps {
		dep, ok := s.DependsOn[d]
		require.True(t, ok, "service %s must depend on %s", s.Name, d)
		require.Equal(t, types.ServiceConditionHealthy, dep.Condition, "service %s waits for %s to be healthy", s.Name, d)
	}
}

func requireHealthcheck(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	require.NotNil(t, s.HealthCheck, "service %s has no healthcheck", s.Name)
	require.False(t, s.HealthCheck.Disable)
	require.GreaterOrEqual(t, len(s.HealthCheck.Test), 2)
	require.Equal(t, "CMD", s.HealthCheck.Test[0], "service %s: exec form, no shell needed", s.Name)
	require.NotNil(t, s.HealthCheck.Interval)
	require.NotNil(t, s.HealthCheck.Retries)
	if strings.HasSuffix(s.HealthCheck.Test[1], "/sessionmon") {
		require.Equal(t, []string{"CMD", "/usr/local/bin/sessionmon", "health"}, []string(s.HealthCheck.Test))
	}
}

// requireNoSecretFlags checks that no password or token is on a command
// line, where process lists and `docker inspect` show it.
func requireNoSecretFlags(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	cmd := strings.ToLower(strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " "))
	for _, o := range config.Options {
		if o.Secret {
			require.NotContains(t, cmd, "--"+o.Name, "service %s", s.Name)
		}
	}
	for _, m := range secretAssignment.FindAllStringSubmatch(cmd, -1) {
		require.True(t, strings.HasPrefix(m[2], `"$(cat /run/secrets/`), "service %s: %s= must be read from a secret file, got %s", s.Name, m[1], m[2])
	}
}

// secretAssignment finds NAME_PASSWORD=value or NAME_TOKEN=value in a
// (lower-cased) command.
var secretAssignment = regexp.MustCompile(`(\w*(?:password|token))=([^\n]*)`)
