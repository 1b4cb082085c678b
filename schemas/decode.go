package schemas

import (
	"bytes"
	"errors"
	stdjson "encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Decode reads one schema v1 event from data strictly: at most MaxEventBytes,
// one JSON object, no unknown fields, every rule of Validate (with now as the
// receiver's clock). Errors are *ValidationError naming the field and the rule.
//
// Decode is safe for concurrent use. The fast path decodes with goccy/go-json;
// only a rejected event pays for a second, slower pass that names the field.
func Decode(data []byte, now time.Time) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, invalid("(event)", fmt.Sprintf("must be at most %d bytes (got %d)", MaxEventBytes, len(data)))
	}
	var e Event
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, describeDecodeError(data)
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return nil, invalid("(event)", "must be exactly one JSON object (found trailing data)")
	}
	if err := e.Validate(now); err != nil {
		return nil, err
	}
	return &e, nil
}

// Encode writes e as compact JSON. It does not validate.
func Encode(e *Event) ([]byte, error) {
	return json.Marshal(e)
}

// describeDecodeError explains why data does not decode into an Event: it
// walks a generic decoding of data along the Event type and returns the first
// field whose JSON kind or name does not fit.
func describeDecodeError(data []byte) error {
	var v any
	d := stdjson.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return invalid("(event)", "must be a JSON object: "+syntaxReason(err))
	}
	if _, ok := v.(map[string]any); !ok {
		return invalid("(event)", "must be a JSON object")
	}
	if fe := walk("", v, reflect.TypeFor[Event]()); fe != nil {
		return &ValidationError{Errors: []*FieldError{fe}}
	}
	// The generic pass found nothing the typed pass rejected: report the
	// decoder's position without echoing the input.
	return invalid("(event)", "does not decode as schema v1")
}

func syntaxReason(err error) string {
	if se, ok := errors.AsType[*stdjson.SyntaxError](err); ok {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed JSON"
}

var timeType = reflect.TypeFor[Time]()

// walk checks the generic value v against the Go type t and returns the
// first mismatch, with path as the field's JSON path.
func walk(path string, v any, t reflect.Type) *FieldError {
	if t.Kind() == reflect.Pointer {
		if v == nil {
			return nil
		}
		t = t.Elem()
	}
	name := path
	if name == "" {
		name = "(event)"
	}
	if t == timeType {
		s, ok := v.(string)
		if !ok {
			return &FieldError{Field: name, Rule: "must be a string: " + errTimePrecision.Error()}
		}
		if _, err := ParseTime(s); err != nil {
			return &FieldError{Field: name, Rule: err.Error()}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return &FieldError{Field: name, Rule: "must be an object"}
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields[k]
			if !ok {
				return &FieldError{Field: join(path, k), Rule: "is not a field of schema v1 (unknown fields are rejected)"}
			}
			if fe := walk(join(path, k), m[k], f); fe != nil {
				return fe
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return &FieldError{Field: name, Rule: "must be an object of strings"}
		}
		for _, k := range sortedKeys(m) {
			if fe := walk(join(path, k), m[k], t.Elem()); fe != nil {
				return fe
			}
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return &FieldError{Field: name, Rule: "must be an array"}
		}
		for i, x := range a {
			if fe := walk(fmt.Sprintf("%s[%d]", name, i), x, t.Elem()); fe != nil {
				return fe
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return &FieldError{Field: name, Rule: "must be a string"}
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return &FieldError{Field: name, Rule: "must be true or false"}
		}
	case reflect.Int, reflect.Int64, reflect.Uint32:
		n, ok := v.(stdjson.Number)
		if !ok {
			return &FieldError{Field: name, Rule: "must be an integer"}
		}
		if strings.ContainsAny(n.String(), ".eE") {
			return &FieldError{Field: name, Rule: "must be an integer"}
		}
		if t.Kind() == reflect.Uint32 {
			if i, err := n.Int64(); err != nil || i < 0 || i > 1<<32-1 {
				return &FieldError{Field: name, Rule: "must be an integer between 0 and 4294967295"}
			}
		} else if _, err := n.Int64(); err != nil {
			return &FieldError{Field: name, Rule: "must be a 64-bit integer"}
		}
	case reflect.Float64:
		n, ok := v.(stdjson.Number)
		if !ok {
			return &FieldError{Field: name, Rule: "must be a number"}
		}
		if _, err := n.Float64(); err != nil {
			return &FieldError{Field: name, Rule: "must be a finite number"}
		}
	}
	return nil
}

func join(path, k string) string {
	k = truncate(k)
	if path == "" {
		return k
	}
	return path + "." + k
}

// jsonFields maps a struct's JSON names to field types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
