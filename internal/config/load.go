package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
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
// insecure_dev_cookies, pseudonym_key, record_key and admin_password are options
// (dashboard-addr, ...) and are read as such.
const DashboardSection = "dashboard"

// dashboardOptionKeys are the keys of the dashboard: section that are
// options rather than part of DashboardYAML.
var dashboardOptionKeys = []string{"addr", "insecure_dev_cookies", "pseudonym_key", "record_key", "admin_password"}

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
		if err := applyFile(&cfg, file, l.reads); err != nil {
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
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// applyFile reads a YAML config file strictly: a key that is not an option
// is an error, so a typo can't silently leave a default in place. Only the
// options reads accepts are set; the keys of the others are skipped.
func applyFile(cfg *Config, path string, reads func(Option) bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	// The dashboard: section mixes options (flags can override them) with
	// structure of its own (users): the options stay in doc.
	if d, ok := doc[DashboardSection].(map[string]any); ok {
		opts := map[string]any{}
		for _, k := range dashboardOptionKeys {
			if v, ok := d[k]; ok {
				opts[k] = v
				delete(d, k)
			}
		}
		if len(d) > 0 {
			out, err := yaml.Marshal(d)
			if err != nil {
				return fmt.Errorf("config file %s: %s: %w", path, DashboardSection, err)
			}
			cfg.DashboardYAML = out
		}
		doc[DashboardSection] = opts
	} else if v, ok := doc[DashboardSection]; ok && v != nil {
		return fmt.Errorf("config file %s: %s: must be a mapping", path, DashboardSection)
	}
	// Sections with a structure of their own are kept as YAML for their
	// packages to decode strictly.
	for name, dst := range map[string]*[]byte{DetectSection: &cfg.DetectYAML, NotifySection: &cfg.NotifyYAML, RetentionSection: &cfg.RetentionYAML} {
		section, ok := doc[name]
		if !ok {
			continue
		}
		delete(doc, name)
		out, err := yaml.Marshal(section)
		if err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, name, err)
		}
		*dst = out
	}
	flat := map[string]string{}
	if err := flatten("", doc, flat); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	byYAML := make(map[string]Option, len(Options))
	for _, o := range Options {
		byYAML[o.YAML] = o
	}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		o, ok := byYAML[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q", path, k))
			continue
		case o.FlagOnly:
			errs = append(errs, fmt.Errorf("config file %s: %s: --%s is a command-line flag only", path, k, o.Name))
			continue
		case !reads(o):
			continue
		}
		if err := o.set(cfg, flat[k]); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %s: %w", path, k, err))
		}
	}
	return errors.Join(errs...)
}

func flatten(prefix string, v any, out map[string]string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if err := flatten(key, sub, out); err != nil {
				return err
			}
		}
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
		if prefix != "" {
			out[prefix] = ""
		}
	default:
		out[prefix] = fmt.Sprint(x)
	}
	return nil
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
