// Command sessionmon is the session activity monitor: one binary whose
// subcommands run the pipeline (serve), publish events (publish, demo) and
// report the build (version). Run `sessionmon help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/internal/natsauth"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what a subcommand runs with: its config, logger and output.
type env struct {
	cfg    *config.Config
	logger *slog.Logger
	stdout io.Writer
	stderr io.Writer
	args   []string
}

// command is one subcommand.
type command struct {
	name string
	// short is the one-line description in the command list.
	short   string
	usage   string
	summary string
	// options are the flags it takes; every option is also read from the
	// environment and the config file.
	options []string
	run     func(ctx context.Context, e *env) error
}

// sharedOptions are flags every long-running subcommand takes.
var sharedOptions = []string{"data-dir", "log-format", "log-level"}

// clickhouseOptions are the flags of subcommands that talk to ClickHouse.
var clickhouseOptions = []string{"clickhouse-dsn", "clickhouse-cluster", "clickhouse-tls-ca"}

// serviceCommands run sessionmon's workers: with the embedded server they
// connect as its service user, the other commands as its admin.
var serviceCommands = map[string]bool{"serve": true, "ingest": true, "detect": true, "notify": true, "dashboard": true, "retention": true}

// natsOptions are the flags of subcommands that talk to NATS.
// With the embedded server (no nats-url), data-dir locates the credentials
// files serve wrote.
var natsOptions = []string{"data-dir", "nats-url", "nats-creds", "nats-user", "nats-tls-ca", "nats-tls-cert", "nats-tls-key"}

func commands() []*command {
	return []*command{serveCommand(), ingestCommand(), intakeCommand(), migrateCommand(), detectCommand(), dashboardCommand(), userCommand(), notifyCommand(), retentionCommand(), eraseCommand(), holdCommand(), exportCommand(), publishCommand(), demoCommand(), simulateCommand(), dlqCommand(), benchCommand(), healthCommand(), credsCommand(), versionCommand()}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			printHelp(stdout)
			return exitOK
		}
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "sessionmon: unknown command %q\n\n", args[0])
		printHelp(stderr)
		return exitUsage
	}

	fs := flag.NewFlagSet("sessionmon "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	loader := &config.Loader{Names: cmd.options}
	loader.Register(fs)
	fs.Usage = func() {
		var secrets []string
		for _, name := range cmd.options {
			if o, _ := config.Lookup(name); o.Secret {
				secrets = append(secrets, name)
			}
		}
		config.Usage(fs.Output(), fs, cmd.usage, cmd.summary, secrets)
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
	}
	// Positional words (dlq list, bench ingest) may come before or after
	// the flags.
	var positional []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	cfg, err := loader.Load(fs)
	if err != nil {
		fmt.Fprintf(stderr, "sessionmon %s: configuration:\n%v\n", cmd.name, indent(err))
		return exitUsage
	}
	if cfg.NATS.Embedded() {
		// The commands that talk to the embedded server of serve find its
		// credentials in the same data-dir.
		user := natsauth.AdminUser
		if serviceCommands[cmd.name] {
			user = natsauth.ServiceUser
		}
		cfg.NATS.DefaultCredsFile = natsauth.CredsFile(natsauth.Dir(cfg.DataDir), user)
	}
	logger, _ := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	err = cmd.run(ctx, &env{cfg: cfg, logger: logger, stdout: stdout, stderr: stderr, args: positional})
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("command failed", slog.String("command", cmd.name), slog.Any("error", err))
		return exitError
	}
	return exitOK
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "sessionmon: a self-hosted, event-sourced session activity monitor.\n\nUsage: sessionmon COMMAND [options]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'sessionmon COMMAND --help' for a command's options. Every option is also\nread from SESSIONMON_* environment variables and a YAML file (--config).\n")
}

func indent(err error) string {
	var out []byte
	line := []byte("  - ")
	out = append(out, line...)
	for _, b := range []byte(err.Error()) {
		out = append(out, b)
		if b == '\n' {
			out = append(out, line...)
		}
	}
	return string(out)
}

// join concatenates option lists, each name once.
func join(lists ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lists {
		for _, name := range l {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}
