package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
)

func configCommand() *command {
	return &command{
		name:  "config",
		short: "check a config file",
		usage: "sessionmon config check [--config FILE]",
		summary: `check: read the config file (--config, or SESSIONMON_CONFIG) and the
SESSIONMON_* environment as every command would, and check every option and
every section (detect, notify, retention, dashboard), as serve and the other
commands would at start. Every problem is printed, one a line, with its line
in the file and its key path, and so is every deprecated key (a warning: its
value applies); the exit status is 2 when there is any problem, 0 (and
"config OK: FILE") otherwise.`,
		words:       true,
		loadsConfig: true,
		run:         runConfig,
	}
}

// configProblems ends config check with exit status 2 once the problems are
// printed.
type configProblems struct{ n int }

func (e *configProblems) Error() string { return fmt.Sprintf("%d problems in the configuration", e.n) }

func runConfig(_ context.Context, e *env) error {
	if err := wantWord(e.args, "check"); err != nil {
		return err
	}
	file := e.cfg.ConfigFile
	if file == "" {
		return usagef("no config file: give --config FILE or set %s", config.ConfigEnv)
	}
	problems, warnings := checkConfig(file, nil)
	for _, line := range byLine(problems, warnings) {
		fmt.Fprintln(e.stdout, line)
	}
	if len(problems) > 0 {
		return &configProblems{n: len(problems)}
	}
	fmt.Fprintf(e.stdout, "config OK: %s\n", file)
	return nil
}

// checkConfig reads file and the environment (getenv; nil: the process's)
// with every option, and decodes every section; it returns every problem,
// in the order of the file's lines, and the file's deprecated keys.
func checkConfig(file string, getenv func(string) (string, bool)) ([]error, []config.Warning) {
	l := &config.Loader{Getenv: getenv}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	l.Register(fs)
	if err := fs.Parse([]string{"--config", file}); err != nil {
		return []error{err}, nil
	}
	cfg, err := l.Check(fs)
	problems := cfg.InFile(err)
	_, err = parseDetect(cfg)
	problems = append(problems, config.Problems(err)...)
	_, err = parseNotify(cfg)
	problems = append(problems, config.Problems(err)...)
	_, err = parseRetention(cfg)
	problems = append(problems, config.Problems(err)...)
	_, err = parseDashboard(cfg)
	problems = append(problems, config.Problems(err)...)
	slices.SortStableFunc(problems, func(a, b error) int { return lineOf(a) - lineOf(b) })
	return problems, cfg.Warnings
}

// byLine returns the problems and warnings as text, in the order of their
// lines in the file (a problem before a warning of the same line).
func byLine(problems []error, warnings []config.Warning) []string {
	type entry struct {
		line int
		text string
	}
	var all []entry
	for _, p := range problems {
		all = append(all, entry{lineOf(p), p.Error()})
	}
	for _, w := range warnings {
		all = append(all, entry{w.Line, w.String()})
	}
	slices.SortStableFunc(all, func(a, b entry) int { return a.line - b.line })
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = e.text
	}
	return out
}

// lineOf is the line of a problem in the file; 0 (first) when it has none.
func lineOf(err error) int {
	var fe *config.FieldError
	if errors.As(err, &fe) {
		return fe.Line
	}
	return 0
}

// parseDetect decodes the detect: section of the config file.
func parseDetect(cfg *config.Config) (detect.Config, error) {
	return config.ParseSection(cfg, config.DetectSection, detect.ParseConfigNode)
}

// parseNotify decodes the notify: section of the config file, with the
// names in webhooks[].detectors checked against the detectors there are.
func parseNotify(cfg *config.Config) (notify.Config, error) {
	return config.ParseSection(cfg, config.NotifySection, func(n *yaml.Node) (notify.Config, error) {
		return notify.ParseConfigNodeWith(n, detect.DetectorNames())
	})
}

// parseRetention decodes the retention: section of the config file.
func parseRetention(cfg *config.Config) (retention.Config, error) {
	return config.ParseSection(cfg, config.RetentionSection, retention.ParseConfigNode)
}

// parseDashboard decodes the dashboard: section of the config file (its
// keys that are not options).
func parseDashboard(cfg *config.Config) (dashboard.Config, error) {
	return config.ParseSection(cfg, config.DashboardSection, dashboard.ParseConfigNode)
}
