package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem with a setting of the config file: where it is
// (file, line, key path such as notify.webhooks[0].url) and what is wrong.
type FieldError struct {
	// File is the config file, if known.
	File string
	// Line is the line in File (or in the YAML text decoded), 0 if unknown.
	Line int
	// Path is the key path, e.g. webhooks[0].detectors[1].
	Path string
	// Msg says what is wrong.
	Msg string
	// Err, if set, is what errors.Is and errors.As match (a package's
	// ErrInvalidConfig).
	Err error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Problem returns a FieldError at path that wraps sentinel (may be nil).
func Problem(sentinel error, path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// ParseNode parses YAML text into a node, for the packages whose
// ParseConfig takes text; empty text is a nil node.
func ParseNode(b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

// DecodeNode decodes node into out strictly: a key that names no field is
// an error, and so is a value of the wrong type; every problem is reported,
// as a *FieldError with the node's line and its key path under path.
// Durations (time.Duration fields) are read by ParseDuration, so 90s, 15m,
// 12h, 30d and 2w are accepted everywhere. A nil or null node leaves out as
// it is. Fields decoded from the node replace those of out; maps gain the
// entries given.
func DecodeNode(node *yaml.Node, out any, path string) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("config: DecodeNode needs a non-nil pointer")
	}
	var errs []error
	decodeValue(node, v.Elem(), path, &errs)
	return errors.Join(errs...)
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func decodeValue(n *yaml.Node, v reflect.Value, path string, errs *[]error) {
	if n != nil && n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	bad := func(format string, args ...any) {
		*errs = append(*errs, &FieldError{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	t := v.Type()
	switch {
	case t == nodeType:
		if n != nil {
			v.Set(reflect.ValueOf(*n))
		}
		return
	case isNull(n):
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			if n != nil {
				v.Set(reflect.Zero(t))
			}
		}
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			bad("%s", trimLine(err))
		}
		return
	case t == durationType:
		var s string
		if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
			bad("must be a duration like 90s, 15m, 12h, 30d or 2w")
			return
		}
		d, err := ParseDuration(s)
		if err != nil {
			bad("%v", err)
			return
		}
		v.SetInt(int64(d))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		decodeValue(n, v.Elem(), path, errs)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("must be a mapping of settings")
			return
		}
		fields := map[string][]int{}
		structFields(t, nil, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				decodeValue(val, v, path, errs)
				continue
			}
			idx, ok := fields[k.Value]
			if !ok {
				known := make([]string, 0, len(fields))
				for f := range fields {
					known = append(known, f)
				}
				slices.Sort(known)
				*errs = append(*errs, &FieldError{Line: k.Line, Path: join(path, k.Value), Msg: "unknown key (known: " + strings.Join(known, ", ") + ")"})
				continue
			}
			decodeValue(val, fieldByIndex(v, idx), join(path, k.Value), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("must be a mapping")
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				decodeValue(val, v, path, errs)
				continue
			}
			key := reflect.New(t.Key()).Elem()
			decodeValue(k, key, join(path, k.Value), errs)
			e := reflect.New(t.Elem()).Elem()
			decodeValue(val, e, join(path, k.Value), errs)
			v.SetMapIndex(key, e)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("must be a list")
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			decodeValue(e, s.Index(i), path+"["+strconv.Itoa(i)+"]", errs)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode && t.Kind() != reflect.Interface {
			bad("must be a single value, not a %s", kindName(n.Kind))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				bad("must be %s (got %q)", typeName(t), n.Value)
			} else {
				bad("%s", trimLine(err))
			}
		}
	}
}

// structFields maps a struct's YAML keys to field indexes, following
// inline fields; an outer field hides an inline one of the same key.
func structFields(t reflect.Type, prefix []int, out map[string][]int) {
	var inline [][]int
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		idx := append(slices.Clone(prefix), i)
		if slices.Contains(strings.Split(opts, ","), "inline") {
			inline = append(inline, idx)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, ok := out[name]; !ok {
			out[name] = idx
		}
	}
	for _, idx := range inline {
		ft := t.FieldByIndex(idx[len(prefix):])
		if ft.Type.Kind() == reflect.Struct {
			structFields(ft.Type, idx, out)
		}
	}
}

func fieldByIndex(v reflect.Value, idx []int) reflect.Value {
	return v.FieldByIndex(idx)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// trimLine drops yaml's "line N: " prefix (the FieldError has the line)
// and the "yaml: unmarshal errors:" header.
func trimLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, err := strconv.Atoi(rest[:i]); err == nil {
				s = rest[i+2:]
			}
		}
	}
	return s
}

// LineOf returns the line of the deepest node of path (webhooks[0].url)
// under node: the key's line when it is there, else its nearest parent's.
func LineOf(node *yaml.Node, path string) int {
	if node == nil {
		return 0
	}
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	line := node.Line
	for _, part := range splitPath(path) {
		if node.Kind == yaml.AliasNode {
			node = node.Alias
		}
		var next *yaml.Node
		switch {
		case strings.HasPrefix(part, "["):
			i, err := strconv.Atoi(strings.Trim(part, "[]"))
			if node.Kind == yaml.SequenceNode && err == nil && i >= 0 && i < len(node.Content) {
				next = node.Content[i]
				line = next.Line
			}
		case node.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(node.Content); j += 2 {
				if node.Content[j].Value == part {
					line, next = node.Content[j].Line, node.Content[j+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		node = next
	}
	return line
}

// splitPath splits "webhooks[0].detectors[1]" into webhooks, [0],
// detectors, [1].
func splitPath(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, ".") {
		for seg != "" {
			i := strings.Index(seg, "[")
			switch {
			case i < 0:
				out, seg = append(out, seg), ""
			case i > 0:
				out, seg = append(out, seg[:i]), seg[i:]
			default:
				j := strings.Index(seg, "]")
				if j < 0 {
					out, seg = append(out, seg), ""
					continue
				}
				out, seg = append(out, seg[:j+1]), seg[j+1:]
			}
		}
	}
	return out
}

// Problems flattens err into its problems: the errors joined with
// errors.Join, recursively.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && isJoin(err) {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// isJoin tells errors.Join's errors from fmt.Errorf's with several %w.
func isJoin(err error) bool {
	return reflect.TypeOf(err).String() == "*errors.joinError"
}

// locate places the problems of section name (decoded from node) in file:
// each *FieldError gets the file, its line (found by its path when it has
// none) and its path under the section; other errors are placed at the
// section.
func locate(file, name string, node *yaml.Node, err error) error {
	var out []error
	for _, e := range Problems(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			// A message that starts with a key path of the section
			// ("lateness: must be ...") is placed at that key.
			rel, msg := "", e.Error()
			if p, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(p, " \t\"'") && hasKey(node, splitPath(p)) {
				rel, msg = p, rest
			}
			out = append(out, &FieldError{File: file, Line: LineOf(node, rel), Path: join(name, rel), Msg: msg, Err: e})
			continue
		}
		c := *fe
		c.File = file
		rel := c.Path
		if r, ok := strings.CutPrefix(rel, name+"."); ok {
			rel = r
		} else if rel == name {
			rel = ""
		}
		if c.Line == 0 {
			c.Line = LineOf(node, rel)
		}
		c.Path = join(name, rel)
		out = append(out, &c)
	}
	return errors.Join(out...)
}

// Section returns the config file's section name (DetectSection, ...) as
// read, with the file's lines; without a file, the section's YAML text
// field (DetectYAML, ...) parsed; nil when there is none.
func (c *Config) Section(name string) *yaml.Node {
	if n, ok := c.sections[name]; ok {
		return n
	}
	var b []byte
	switch name {
	case DetectSection:
		b = c.DetectYAML
	case NotifySection:
		b = c.NotifyYAML
	case RetentionSection:
		b = c.RetentionYAML
	case DashboardSection:
		b = c.DashboardYAML
	}
	n, err := ParseNode(b)
	if err != nil {
		// The text fields are set by programs, from YAML that parsed.
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(b)}
	}
	return n
}

// ParseSection decodes section name of c with parse (a package's
// ParseConfigNode) and places every problem it reports in the config
// file: "sessionmon.yaml:7: notify.webhooks[0].url: ...".
func ParseSection[T any](c *Config, name string, parse func(*yaml.Node) (T, error)) (T, error) {
	n := c.Section(name)
	v, err := parse(n)
	if err != nil {
		return v, locate(c.ConfigFile, name, n, err)
	}
	return v, nil
}

// SectionError places err, a problem of section name, in the config file
// like ParseSection does (for checks made after decoding).
func (c *Config) SectionError(name string, err error) error {
	if err == nil {
		return nil
	}
	return locate(c.ConfigFile, name, c.Section(name), err)
}

// Mark makes every problem of err match sentinel with errors.Is (a
// package's ErrInvalidConfig) and returns them joined. A problem that is no
// *FieldError becomes one, its path taken from a message that starts with
// one ("users[0].name: ...").
func Mark(err, sentinel error) error {
	var out []error
	for _, e := range Problems(err) {
		var c FieldError
		if fe, ok := e.(*FieldError); ok {
			if fe.Err != nil {
				out = append(out, e)
				continue
			}
			c = *fe
		} else {
			c.Msg = e.Error()
			if p, rest, ok := strings.Cut(c.Msg, ": "); ok && !strings.ContainsAny(p, " \t\"'") {
				c.Path, c.Msg = p, rest
			}
		}
		c.Err = sentinel
		out = append(out, &c)
	}
	return errors.Join(out...)
}

// OptionError is a problem with an option's value, found by Validate.
type OptionError struct {
	// Name is the option's flag name.
	Name string
	Msg  string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s (%s): %s", e.Name, EnvName(e.Name), e.Msg)
}

// InFile places the problems of Load and Validate in the config file c
// was read from: an option set there gets its key path and line.
func (c *Config) InFile(err error) []error {
	var out []error
	for _, e := range Problems(err) {
		var oe *OptionError
		if errors.As(e, &oe) && c.root != nil {
			if o, ok := Lookup(oe.Name); ok {
				for _, key := range []string{o.YAML(), o.LegacyYAML} {
					if line := lineOfKey(c.root, key); key != "" && line > 0 {
						e = &FieldError{File: c.ConfigFile, Line: line, Path: key, Msg: e.Error(), Err: e}
						break
					}
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// lineOfKey returns the line of the key path (nats.tls.ca_file) in the
// mapping root, 0 when it is not there.
func lineOfKey(root *yaml.Node, path string) int {
	n := root
	line := 0
	for _, k := range strings.Split(path, ".") {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				line, next = n.Content[j].Line, n.Content[j+1]
				break
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}

// hasKey reports whether the first part of a key path is a key of node.
func hasKey(node *yaml.Node, parts []string) bool {
	if node == nil || node.Kind != yaml.MappingNode || len(parts) == 0 {
		return false
	}
	for j := 0; j+1 < len(node.Content); j += 2 {
		if node.Content[j].Value == parts[0] {
			return true
		}
	}
	return false
}

// Lines gives each *FieldError among err's problems that has no line the
// line of its path in node (the section the paths are relative to, after
// prefix, e.g. "retention"), and returns the problems joined.
func Lines(err error, node *yaml.Node, prefix string) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range Problems(err) {
		if fe, ok := e.(*FieldError); ok && fe.Line == 0 {
			c := *fe
			rel := c.Path
			if prefix != "" {
				if r, ok := strings.CutPrefix(rel, prefix+"."); ok {
					rel = r
				} else if rel == prefix {
					rel = ""
				}
			}
			c.Line = LineOf(node, rel)
			e = &c
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
