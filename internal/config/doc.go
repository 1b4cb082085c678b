package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Markers around the generated table of options in docs/configuration.md.
const (
	DocBegin = "<!-- options:begin -->"
	DocEnd   = "<!-- options:end -->"
)

// OptionsMarkdown returns the table of every option: flag, environment
// variable, YAML key, default and description (with the deprecated key, if
// any), in the order of Options.
func OptionsMarkdown() string {
	def := Default()
	var b strings.Builder
	b.WriteString("<!-- Generated from internal/config/options.go by `go run ./internal/config/gendoc`; do not edit. -->\n\n")
	b.WriteString("| flag | environment variable | YAML key | default | description |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, o := range Options {
		flag := "`--" + o.Name + "`"
		if o.Short != "" {
			flag = "`-" + o.Short + "`, " + flag
		}
		env, key := "`"+EnvName(o.Name)+"`", "`"+o.YAML()+"`"
		usage := o.Usage
		switch {
		case o.Secret:
			flag = "none (secret)"
			env += " or `" + EnvName(o.Name) + "_FILE`"
		case o.FlagOnly:
			env, key = "none (flag only)", "none (flag only)"
		}
		if o.LegacyYAML != "" && !o.FlagOnly {
			usage += " (deprecated key: `" + o.LegacyYAML + "`)"
		}
		v := o.get(&def)
		if v == "" {
			v = "none"
		} else {
			v = "`" + v + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", flag, env, key, cell(v), cell(usage))
	}
	return b.String()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ").Replace(s)
}

// UpdateDoc returns doc with the text between DocBegin and DocEnd replaced
// by OptionsMarkdown.
func UpdateDoc(doc []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(DocBegin))
	j := bytes.Index(doc, []byte(DocEnd))
	if i < 0 || j < i {
		return nil, errors.New("no " + DocBegin + " ... " + DocEnd + " markers")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(DocBegin)])
	out.WriteString("\n")
	out.WriteString(OptionsMarkdown())
	out.Write(doc[j:])
	return out.Bytes(), nil
}
