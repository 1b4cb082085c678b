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
	"slices"
	"strings"
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
	// options are the flags it takes, and the only options it reads from
	// the environment and the config file.
	options []string
	// words: it takes positional words (dlq list); the others refuse any.
	words bool
	// loadsConfig: it reads the configuration itself (config check) and
	// gets the defaults with the config file's name only.
	loadsConfig bool
	run         func(ctx context.Context, e *env) error
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
// nats-listen and its TLS files locate the embedded server (tls:// when it
// has a certificate), or configure it in the commands that start it.
var natsOptions = []string{"data-dir", "nats-url", "nats-creds", "nats-user", "nats-tls-ca", "nats-tls-cert", "nats-tls-key",
	"nats-listen", "nats-listen-tls-cert", "nats-listen-tls-key"}

// streamOptions are the limits of the events stream, which the commands
// that start workers create when it is missing (serve updates it too).
var streamOptions = []string{"stream-max-age", "stream-duplicates", "stream-max-bytes", "stream-replicas", "event-partitions"}

func commands() []*command {
	return []*command{serveCommand(), ingestCommand(), intakeCommand(), migrateCommand(), detectCommand(), dashboardCommand(), userCommand(), notifyCommand(), retentionCommand(), eraseCommand(), holdCommand(), exportCommand(), publishCommand(), demoCommand(), simulateCommand(), dlqCommand(), benchCommand(), healthCommand(), credsCommand(), configCommand(), versionCommand()}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a command line a command can't run: an unknown, missing or
// extra argument. run prints it with the command's usage and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// wantWord checks that args is one of words, the subcommand of a command
// such as dlq list.
func wantWord(args []string, words ...string) error {
	want := strings.Join(words, " or ")
	switch {
	case len(args) == 0:
		return usagef("missing subcommand: want %s", want)
	case !slices.Contains(words, args[0]):
		return usagef("unknown subcommand %q: want %s", args[0], want)
	case len(args) > 1:
		return usagef("%s: too many arguments", args[0])
	}
	return nil
}

// run dispatches args to a subcommand and returns the exit code: 0 on
// success, 2 for a command line or configuration that can't run (the
// command's usage goes to stderr) and 1 when the command fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			printHelp(stdout)
			return exitOK
		}
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "sessionmon: unknown command %q\nUsage: sessionmon COMMAND [options]\nRun 'sessionmon help' for the list of commands.\n", args[0])
		return exitUsage
	}

	fs := flag.NewFlagSet("sessionmon "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// Nil options would mean every option: a command without any reads none.
	loader := &config.Loader{Names: append([]string{}, cmd.options...)}
	loader.Register(fs)
	help := func(w io.Writer) {
		var secrets []string
		for _, name := range cmd.options {
			if o, _ := config.Lookup(name); o.Secret {
				secrets = append(secrets, name)
			}
		}
		config.Usage(w, fs, cmd.usage, cmd.summary, secrets)
	}
	for _, a := range args[1:] {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			help(stdout)
			return exitOK
		}
	}
	// Positional words (dlq list, bench ingest) may come before or after
	// the flags.
	var positional []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			printUsageError(stderr, cmd, err.Error())
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) > 0 && !cmd.words {
		printUsageError(stderr, cmd, fmt.Sprintf("unexpected argument %q", positional[0]))
		return exitUsage
	}
	var cfg *config.Config
	var err error
	if cmd.loadsConfig {
		d := config.Default()
		d.ConfigFile = loader.File()
		cfg = &d
	} else {
		cfg, err = loader.Load(fs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sessionmon %s: configuration:\n%v\nRun 'sessionmon %s --help' for its options.\n", cmd.name, indent(err), cmd.name)
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
	for _, w := range cfg.Warnings {
		logger.Warn("deprecated config file key", slog.String("file", w.File), slog.Int("line", w.Line), slog.String("key", w.Key), slog.String("use", w.Use))
	}
	err = cmd.run(ctx, &env{cfg: cfg, logger: logger, stdout: stdout, stderr: stderr, args: positional})
	var ue *usageError
	var cp *configProblems
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return exitOK
	case errors.As(err, &cp):
		// config check printed the problems.
		return exitUsage
	case errors.As(err, &ue):
		printUsageError(stderr, cmd, ue.msg)
		return exitUsage
	default:
		// One line: joined errors are separated by "; ".
		msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), cmd.name+": ")
		fmt.Fprintf(stderr, "sessionmon %s: %s\n", cmd.name, msg)
		return exitError
	}
}

// printUsageError writes what is wrong with a command line, the command's
// usage and where to find its options.
func printUsageError(w io.Writer, cmd *command, msg string) {
	fmt.Fprintf(w, "sessionmon %s: %s\nUsage: %s\nRun 'sessionmon %s --help' for its options.\n", cmd.name, msg, cmd.usage, cmd.name)
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "sessionmon: a self-hosted, event-sourced session activity monitor.\n\nUsage: sessionmon COMMAND [options]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'sessionmon COMMAND --help' for a command's options. A command also reads\nits options, and only those, from SESSIONMON_* environment variables and a YAML\nfile (--config). 'sessionmon --version' prints the version.\n")
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
