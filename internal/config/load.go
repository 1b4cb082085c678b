package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DetectSection is the config file's key whose content configures the
// detectors (package detect decodes it).
const DetectSection = "detect"

// NotifySection is the config file's key whose content configures the
// webhooks (package notify decodes it).
const NotifySection = "notify"

// RetentionSection is the config file's key whose content configures
// retention policies and jobs (package retention decodes it).
const RetentionSection = "retention"

// DashboardSection is the config file's key whose content configures the
// dashboard (package dashboard decodes it). Its keys addr,
// insecure_dev_cookies, pseudonym_key, record_key and admin_password are the
// deprecated keys of options (dashboard-addr, ...) and are read as such.
const DashboardSection = "dashboard"

// ConfigEnv names the variable that points at the YAML config file.
const ConfigEnv = "SESSIONMON_CONFIG"

// Loader reads a Config for one subcommand.
type Loader struct {
	// Names are the options the subcommand takes: its flags, and the only
	// options it reads from the environment and the YAML file. The variables
	// and keys of the other options are ignored, so one file and one
	// environment serve every subcommand; a key no option has is still an
	// error. Nil means every option, with no flags (a whole-file check).
	Names []string
	// Getenv reads the environment; nil means os.LookupEnv.
	Getenv func(string) (string, bool)

	configFile string
	flags      map[string]*flagValue
}

// flagValue keeps a flag's text until Load parses it in precedence order.
type flagValue struct {
	text   string
	isBool bool
}

func (v *flagValue) String() string     { return v.text }
func (v *flagValue) Set(s string) error { v.text = s; return nil }
func (v *flagValue) IsBoolFlag() bool   { return v.isBool }

// Register adds the subcommand's flags, and --config, to fs.
func (l *Loader) Register(fs *flag.FlagSet) {
	def := Default()
	l.flags = make(map[string]*flagValue, len(l.Names))
	fs.StringVar(&l.configFile, "config", "", "YAML config file (env "+ConfigEnv+")")
	for _, name := range l.Names {
		o, ok := Lookup(name)
		if !ok {
			panic("config: unknown option " + name)
		}
		if o.Secret {
			continue
		}
		v := &flagValue{text: o.get(&def), isBool: o.Bool}
		l.flags[name] = v
		usage := o.Usage + " (env " + EnvName(name) + ")"
		if o.FlagOnly {
			usage = o.Usage + " (flag only)"
		}
		fs.Var(v, name, usage)
		if o.Short != "" {
			fs.Var(v, o.Short, "short for --"+name)
		}
	}
}

// reads reports whether the subcommand reads option o from the environment
// and the config file.
func (l *Loader) reads(o Option) bool {
	if o.FlagOnly {
		return false
	}
	if l.Names == nil {
		return true
	}
	for _, name := range l.Names {
		if name == o.Name {
			return true
		}
	}
	return false
}

// Load builds the Config after fs.Parse: defaults, then the YAML file, then
// the environment, then the flags given on the command line. It returns
// every problem found, validation included.
func (l *Loader) Load(fs *flag.FlagSet) (*Config, error) {
	cfg, err := l.Check(fs)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// Check is Load that also returns the Config when there are problems, with
// every value that could be read, for `sessionmon config check` to check
// the sections too.
func (l *Loader) Check(fs *flag.FlagSet) (*Config, error) {
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	cfg := Default()
	file := l.configFile
	if file == "" {
		file, _ = getenv(ConfigEnv)
	}
	var errs []error
	if file != "" {
		cfg.ConfigFile = file
		warnings, err := applyFile(&cfg, file, l.reads)
		cfg.Warnings = warnings
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, o := range Options {
		if !l.reads(o) {
			continue
		}
		env := EnvName(o.Name)
		v, ok := getenv(env)
		if o.Secret {
			if path, okFile := getenv(env + "_FILE"); okFile {
				b, err := os.ReadFile(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: read secret file: %w", env, err))
					continue
				}
				v, ok = strings.TrimRight(string(b), "\r\n"), true
			}
		}
		if !ok {
			continue
		}
		if err := o.set(&cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
	}
	fs.Visit(func(f *flag.Flag) {
		name := f.Name
		if o, ok := lookupShort(name); ok {
			name = o.Name
		}
		p, ok := l.flags[name]
		if !ok {
			return
		}
		o, _ := Lookup(name)
		if err := o.set(&cfg, p.text); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, err))
		}
	})
	if len(errs) > 0 {
		return &cfg, errors.Join(errs...)
	}
	return &cfg, cfg.Validate()
}

// File returns the config file given with --config or SESSIONMON_CONFIG,
// after fs.Parse; "" when none.
func (l *Loader) File() string {
	if l.configFile != "" {
		return l.configFile
	}
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	f, _ := getenv(ConfigEnv)
	return f
}

// applyFile reads a YAML config file strictly: a key that is not an option
// is an error, so a typo can't silently leave a default in place. Only the
// options reads accepts are set; the keys of the others are skipped. An
// option set by its deprecated key (LegacyYAML) is set, with a warning;
// set by both keys, it is an error. The sections with a structure of their
// own (detect, notify, retention, the non-option keys of dashboard) are
// kept as nodes, with their lines in the file, for their packages to
// decode (see ParseSection).
func applyFile(cfg *Config, path string, reads func(Option) bool) ([]Warning, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		if m := yamlSyntaxLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &FieldError{File: path, Line: line, Msg: m[2], Err: err}
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{File: path, Line: root.Line, Msg: "must be a mapping of settings"}
	}
	cfg.sections = map[string]*yaml.Node{}
	cfg.root = root
	opts := &yaml.Node{Kind: yaml.MappingNode, Line: root.Line}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case DetectSection, NotifySection, RetentionSection:
			cfg.sections[k.Value] = v
			continue
		case DashboardSection:
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return nil, &FieldError{File: path, Line: v.Line, Path: DashboardSection, Msg: "must be a mapping"}
			}
			// The dashboard: section mixes options (flags can override
			// them) with structure of its own (users).
			own := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
			optKeys := &yaml.Node{Kind: yaml.MappingNode, Line: v.Line}
			for j := 0; j+1 < len(v.Content); j += 2 {
				dst := own
				if isDashboardOptionKey(v.Content[j].Value) {
					dst = optKeys
				}
				dst.Content = append(dst.Content, v.Content[j], v.Content[j+1])
			}
			if len(own.Content) > 0 {
				cfg.sections[DashboardSection] = own
			}
			opts.Content = append(opts.Content, k, optKeys)
			continue
		}
		opts.Content = append(opts.Content, k, v)
	}
	// The sections are also kept as YAML text, for callers that decode
	// text.
	for name, dst := range map[string]*[]byte{DetectSection: &cfg.DetectYAML, NotifySection: &cfg.NotifyYAML, RetentionSection: &cfg.RetentionYAML, DashboardSection: &cfg.DashboardYAML} {
		if n, ok := cfg.sections[name]; ok && !isNull(n) {
			out, err := yaml.Marshal(n)
			if err != nil {
				return nil, fmt.Errorf("config file %s: %s: %w", path, name, err)
			}
			*dst = out
		}
	}
	flat := map[string]flatValue{}
	flatten("", opts, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	// set holds, by option name, the keys that set it: its key, its
	// deprecated key, or both.
	type setting struct {
		key    string
		legacy bool
	}
	set := map[string][]setting{}
	for _, k := range keys {
		o, legacy, ok := optionByKey(k)
		switch {
		case !ok:
			errs = append(errs, &FieldError{File: path, Line: flat[k].line, Path: k, Msg: "unknown key" + suggest(k)})
		case o.FlagOnly:
			errs = append(errs, &FieldError{File: path, Line: flat[k].line, Path: k, Msg: "--" + o.Name + " is a command-line flag only"})
		default:
			set[o.Name] = append(set[o.Name], setting{k, legacy})
		}
	}
	var warnings []Warning
	// Options order: http-addr is set before metrics-addr.
	for _, o := range Options {
		s := set[o.Name]
		switch {
		case len(s) == 0:
			continue
		case len(s) > 1:
			cur, old := s[0], s[1]
			if cur.legacy {
				cur, old = old, cur
			}
			errs = append(errs, &FieldError{File: path, Line: flat[cur.key].line, Path: cur.key,
				Msg: fmt.Sprintf("set twice: here and on line %d by its deprecated key %s; remove %s", flat[old.key].line, old.key, old.key)})
			continue
		case s[0].legacy:
			warnings = append(warnings, Warning{File: path, Line: flat[s[0].key].line, Key: s[0].key, Use: o.YAML()})
		}
		if !reads(o) {
			continue
		}
		if err := o.set(cfg, flat[s[0].key].text); err != nil {
			errs = append(errs, &FieldError{File: path, Line: flat[s[0].key].line, Path: s[0].key, Msg: err.Error()})
		}
	}
	return warnings, errors.Join(errs...)
}

// yamlSyntaxLine splits a YAML syntax error into its line and message.
var yamlSyntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// flatValue is an option's value in the file and its line.
type flatValue struct {
	text string
	line int
}

// flatten maps the key paths (nats.tls.ca_file) of the option keys under
// n to their values; a list is joined with commas.
func flatten(prefix string, n *yaml.Node, out map[string]flatValue) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if prefix == "" && isNull(v) {
				continue
			}
			flatten(join(prefix, k.Value), v, out)
		}
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, e := range n.Content {
			parts[i] = e.Value
		}
		out[prefix] = flatValue{strings.Join(parts, ","), n.Line}
	default:
		if isNull(n) {
			out[prefix] = flatValue{"", n.Line}
			return
		}
		out[prefix] = flatValue{n.Value, n.Line}
	}
}

// Usage writes the help of a subcommand: its summary, then every flag with
// its environment variable and default.
func Usage(w io.Writer, fs *flag.FlagSet, usage, summary string, secrets []string) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nOptions (flag > environment > config file > default):\n", usage, summary)
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := lookupShort(f.Name); ok {
			return
		}
		fmt.Fprintf(w, "  ")
		if o, ok := Lookup(f.Name); ok && o.Short != "" && fs.Lookup(o.Short) != nil {
			fmt.Fprintf(w, "-%s, ", o.Short)
		}
		fmt.Fprintf(w, "--%s", f.Name)
		if f.DefValue != "" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "\n      %s\n", f.Usage)
	})
	if len(secrets) > 0 {
		fmt.Fprintf(w, "\nSecrets (environment or config file only, never flags; NAME_FILE reads a file):\n")
		for _, name := range secrets {
			o, _ := Lookup(name)
			fmt.Fprintf(w, "  %s / %s_FILE\n      %s\n", EnvName(name), EnvName(name), o.Usage)
		}
	}
}
