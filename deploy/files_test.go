package deploy_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsauth"
)

// dockerInstruction is one instruction of a Dockerfile, continuation
// lines joined.
type dockerInstruction struct {
	cmd  string
	args string
}

func readDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := readDockerfile(t)
	var froms, users, healthchecks, runs []string
	env := map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "USER":
			users = append(users, in.args)
		case "HEALTHCHECK":
			healthchecks = append(healthchecks, in.args)
		case "RUN":
			runs = append(runs, in.args)
		case "ENV", "ARG":
			for _, word := range strings.Fields(in.args) {
				name, value, _ := strings.Cut(word, "=")
				if in.cmd == "ENV" {
					env[name] = value
				}
				require.NotRegexp(t, `(?i)password|token|secret|creds|key`, name, "%s %s: no secrets at build time or in the image", in.cmd, name)
				if strings.HasPrefix(name, "SESSIONMON_") {
					checkSessionmonEnv(t, "Dockerfile", map[string]string{name: "x"})
				}
			}
		}
	}
	require.Len(t, froms, 2, "multi-stage: a build stage and the final image")
	require.Regexp(t, `^golang:\$\{GO_VERSION\} AS build$`, froms[0])
	require.Contains(t, strings.Join(argValues(ins), " "), "GO_VERSION=1.26")
	require.Regexp(t, `^gcr\.io/distroless/static-debian\d+:nonroot$`, froms[1], "final image: distroless static, nonroot")

	build := strings.Join(runs, " ")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/sessionmon"} {
		require.Contains(t, build, want)
	}
	// Every -X main.NAME of the build must be a string variable of the
	// command, or the linker silently sets nothing.
	vars := mainStringVars(t)
	xs := regexp.MustCompile(`-X main\.(\w+)=`).FindAllStringSubmatch(build, -1)
	require.NotEmpty(t, xs, "the build sets the version with -ldflags -X")
	for _, x := range xs {
		require.True(t, vars[x[1]], "-X main.%s: cmd/sessionmon has no string variable %s", x[1], x[1])
	}
	require.True(t, strings.Contains(build, "main.version="), "the version is set at build time")

	require.Len(t, users, 1)
	uid, _, _ := strings.Cut(users[0], ":")
	require.NotContains(t, []string{"root", "0", ""}, uid, "the image runs as a non-root user")
	require.Len(t, healthchecks, 1)
	require.Contains(t, healthchecks[0], `CMD ["/usr/local/bin/sessionmon", "health"]`)
	// The healthcheck probes SESSIONMON_METRICS_ADDR; both addresses listen
	// beyond the container's loopback, where published ports arrive.
	require.Equal(t, "0.0.0.0:9477", env["SESSIONMON_METRICS_ADDR"])
	require.Equal(t, "0.0.0.0:8080", env["SESSIONMON_DASHBOARD_ADDR"])
	require.NotContains(t, env, "SESSIONMON_HTTP_ADDR", "deprecated: metrics-addr")
	// The health subcommand must exist.
	_, err := os.Stat(filepath.Join(repoRoot(t), "cmd", "sessionmon", "health.go"))
	require.NoError(t, err)
}

func argValues(ins []dockerInstruction) []string {
	var out []string
	for _, in := range ins {
		if in.cmd == "ARG" {
			out = append(out, in.args)
		}
	}
	return out
}

// mainStringVars returns the package-level string variables of
// cmd/sessionmon (the ones -ldflags -X can set).
func mainStringVars(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "cmd", "sessionmon")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						out[name.Name] = true
					} else if vs.Type == nil && i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							out[name.Name] = true
						}
					}
				}
			}
		}
	}
	return out
}

// natsOptions reads one of deploy/nats's files as nats-server does, next
// to an auth.conf that `sessionmon creds init` wrote into dir, as the
// compose files mount it.
func natsOptions(t *testing.T, dir, file string) *server.Options {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "nats", file))
	require.NoError(t, err)
	conf := filepath.Join(dir, file)
	require.NoError(t, os.WriteFile(conf, b, 0o600))
	opts, err := server.ProcessConfigFile(conf)
	require.NoError(t, err, "deploy/nats/%s", file)
	return opts
}

// loadWith builds a Config the way every subcommand does, with no flags.
func loadWith(l *config.Loader) (*config.Config, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.Register(fs)
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}
	return l.Load(fs)
}

// TestNATSConfig runs nats-server with deploy/nats/nats.conf and the
// auth.conf of `sessionmon creds init`, and checks what its users may do:
// sessionmon manages streams, apps only publish events and receive their
// own acknowledgements.
func TestNATSConfig(t *testing.T) {
	// Not parallel: cluster.conf reads the server name from the environment.
	t.Setenv("NATS_SERVER_NAME", "nats-2")
	dir := filepath.Join(t.TempDir(), "nats")
	_, err := natsauth.Init(dir)
	require.NoError(t, err)

	cl := natsOptions(t, dir, "cluster.conf")
	require.Equal(t, "nats-2", cl.ServerName)
	require.Equal(t, "sessionmon", cl.Cluster.Name)
	require.Equal(t, 6222, cl.Cluster.Port)
	require.Len(t, cl.Routes, 3)
	require.True(t, cl.JetStream)
	compose := loadProject(t, "docker-compose.yml", "deploy/docker-compose.cluster.yml")
	for _, r := range cl.Routes {
		_, err := compose.GetService(r.Hostname())
		require.NoError(t, err, "route %s names no compose service", r)
	}
	require.Len(t, cl.TrustedOperators, 1, "the cluster trusts sessionmon's operator")
	require.Empty(t, cl.Users, "no password users")

	opts := natsOptions(t, dir, "nats.conf")
	require.True(t, opts.JetStream)
	require.Equal(t, "/data", opts.StoreDir)
	require.Equal(t, 4222, opts.Port)
	require.Equal(t, 8222, opts.HTTPPort, "the compose healthcheck asks :8222/healthz")
	require.Len(t, opts.TrustedOperators, 1)
	require.Empty(t, opts.Users)
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(s.Shutdown)
	require.True(t, s.ReadyForConnections(10*time.Second))

	_, err = nats.Connect(s.ClientURL())
	require.ErrorIs(t, err, nats.ErrAuthorization, "no anonymous access")

	smConn, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.ServiceUser)))
	require.NoError(t, err)
	t.Cleanup(smConn.Close)
	js, err := jetstream.New(smConn)
	require.NoError(t, err)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SESSIONMON_EVENTS", Subjects: []string{"sessionmon.events.>"}})
	require.NoError(t, err, "sessionmon manages streams")

	perms := make(chan error, 8)
	appConn, err := nats.Connect(s.ClientURL(), nats.UserCredentials(natsauth.CredsFile(dir, natsauth.AppUser)),
		nats.CustomInboxPrefix(natsauth.AppInboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perms <- err }))
	require.NoError(t, err)
	t.Cleanup(appConn.Close)
	appJS, err := jetstream.New(appConn)
	require.NoError(t, err)
	_, err = appJS.Publish(ctx, "sessionmon.events.shop.subj", []byte(`{}`))
	require.NoError(t, err, "apps publish events and get the acknowledgement")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)

	// Apps can't read events, alerts or other clients' replies, forge
	// alerts or control requests, nor use the JetStream API.
	_, err = appConn.SubscribeSync("sessionmon.alerts.>")
	require.NoError(t, err)
	_, err = appConn.SubscribeSync("_INBOX.>")
	require.NoError(t, err)
	require.NoError(t, appConn.Publish("sessionmon.alerts.high.x", []byte("forged")))
	require.NoError(t, appConn.Publish("sessionmon.control.forget", []byte("forged")))
	require.NoError(t, appConn.Flush())
	apiCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = appJS.Stream(apiCtx, "SESSIONMON_EVENTS")
	require.Error(t, err, "the JetStream API is sessionmon's")
	var violations []string
	deadline := time.After(5 * time.Second)
	for len(violations) < 5 {
		select {
		case err := <-perms:
			require.True(t, errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation"), "%v", err)
			violations = append(violations, err.Error())
		case <-deadline:
			require.Failf(t, "permissions", "the server did not refuse the app's subscribe and publish: %v", violations)
		}
	}
	joined := strings.Join(violations, "\n")
	for _, want := range []string{"sessionmon.alerts.>", "_INBOX.>", "sessionmon.alerts.high.x", "sessionmon.control.forget", "$JS.API.STREAM.INFO"} {
		require.Contains(t, joined, want)
	}
}

// TestSystemdUnit checks the unit's command, secrets and hardening.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", "sessionmon.service"))
	require.NoError(t, err)
	keys := map[string][]string{}
	section := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q", line)
		keys[section+"."+k] = append(keys[section+"."+k], v)
	}
	require.Equal(t, []string{"/usr/local/bin/sessionmon serve"}, keys["Service.ExecStart"])
	for _, k := range []string{"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "RestrictAddressFamilies",
		"RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute", "SystemCallFilter", "CapabilityBoundingSet",
		"DynamicUser", "StateDirectory", "UMask"} {
		require.NotEmpty(t, keys["Service."+k], "hardening option %s", k)
	}
	require.Equal(t, []string{"strict"}, keys["Service.ProtectSystem"])
	require.Equal(t, []string{""}, keys["Service.CapabilityBoundingSet"], "no capabilities")
	require.Equal(t, []string{"SIGTERM"}, keys["Service.KillSignal"])

	env := map[string]string{}
	for _, e := range keys["Service.Environment"] {
		k, v, ok := strings.Cut(e, "=")
		require.True(t, ok)
		env[k] = v
	}
	checkSessionmonEnv(t, "sessionmon.service", env)
	creds := map[string]bool{}
	for _, c := range keys["Service.LoadCredential"] {
		name, _, _ := strings.Cut(c, ":")
		creds[name] = true
	}
	for k, v := range env {
		if strings.HasSuffix(k, "_FILE") {
			name, ok := strings.CutPrefix(v, "%d/")
			require.True(t, ok, "%s: secrets come from the unit's credentials directory (%%d)", k)
			require.True(t, creds[name], "%s: no LoadCredential=%s", k, name)
		}
	}
	require.NotEmpty(t, creds)
}

// TestExampleEnvAndConfig checks the example files an operator copies.
func TestExampleEnvAndConfig(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "sessionmon.env.example"))
	require.NoError(t, err)
	env := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q", line)
		env[k] = v
	}
	checkSessionmonEnv(t, "sessionmon.env.example", env)
	env[config.ConfigEnv] = filepath.Join(root, "deploy", "sessionmon.example.yaml")
	// As the systemd unit adds them:
	for _, s := range []string{"SESSIONMON_NATS_CREDS", "SESSIONMON_CLICKHOUSE_PASSWORD_FILE"} {
		f := filepath.Join(t.TempDir(), "secret")
		require.NoError(t, os.WriteFile(f, []byte("s3cret"), 0o600))
		env[s] = f
	}
	l := &config.Loader{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	cfg, err := loadWith(l)
	require.NoError(t, err)
	require.Equal(t, 3, cfg.Stream.Replicas)
	require.True(t, strings.HasPrefix(cfg.NATS.URL, "tls://"), "the production example uses TLS to NATS")
	require.NotEmpty(t, cfg.NATS.CAFile)
	require.NotEmpty(t, cfg.NATS.CredsFile, "sessionmon authenticates with its credentials file")
	require.Empty(t, cfg.NATS.User)
	require.NotEmpty(t, cfg.ClickHouseTLSCA)
	require.Contains(t, cfg.ClickHouseURL(), "secure=true")
	require.Equal(t, 2*time.Second, cfg.Ingest.BatchAge, "from the example YAML")
	require.Empty(t, cfg.HTTPAddr, "not the deprecated http-addr")
	require.Equal(t, "127.0.0.1:9477", cfg.MetricsAddr, "/metrics and the probes stay on loopback")
	require.Equal(t, "127.0.0.1:8080", cfg.Dashboard.Addr)
	require.Empty(t, cfg.Warnings, "the example writes no deprecated key")

	// The keys shown commented out are options too.
	b, err = os.ReadFile(env[config.ConfigEnv])
	require.NoError(t, err)
	commented := regexp.MustCompile(`(?m)^# ([a-z]+_[a-z_]+): `)
	for _, m := range commented.FindAllStringSubmatch(string(b), -1) {
		_, ok := config.Lookup(strings.ReplaceAll(m[1], "_", "-"))
		require.True(t, ok, "commented-out key %s is no option", m[1])
	}
}
