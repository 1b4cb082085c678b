package schemas

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/goccy/go-json/jsontext"
	jsonv2 "github.com/goccy/go-json/v2"
)

// decodeOptions make the fast path as strict as the JSON Schema: member
// names match fields exactly (not case-insensitively, as encoding/json v1
// semantics would), unknown members are errors, and so are duplicate names,
// invalid UTF-8 and trailing data.
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// Decode reads one schema v1 event from data strictly: at most MaxEventBytes,
// one JSON object, no unknown fields, every rule of Validate (with now as the
// receiver's clock). Errors are *ValidationError naming the field and the rule.
//
// Decode is safe for concurrent use. The fast path (decode_fast.go) reads the
// usual shape of an event by hand; what it does not take is decoded with
// goccy/go-json, and only a rejected event pays for a third, slower pass that
// names the field.
func Decode(data []byte, now time.Time) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, invalid("(event)", fmt.Sprintf("must be at most %d bytes (got %d)", MaxEventBytes, len(data)))
	}
	e, ok := decodeFast(data)
	if !ok {
		e = new(Event)
		if err := jsonv2.Unmarshal(data, e, decodeOptions); err != nil {
			return nil, describeDecodeError(data, err)
		}
		// A JSON null decodes as an absent field without an error; the
		// schema rejects it, so Decode does too. The fast path gives up
		// on any null.
		if bytes.Contains(data, nullLiteral) && hasNull(data) {
			return nil, describeDecodeError(data, nil)
		}
	}
	if err := e.Validate(now); err != nil {
		return nil, err
	}
	return e, nil
}

// Encode writes e as compact JSON. It does not validate.
func Encode(e *Event) ([]byte, error) {
	// HTML escaping would write '<', '>' and '&' as six bytes each, so a
	// valid event could grow past MaxEventBytes; events are not HTML.
	return json.MarshalWithOption(e, json.DisableHTMLEscape())
}

var nullLiteral = []byte("null")

// hasNull reports whether the well-formed JSON text data holds a null
// literal: outside strings, only null starts with 'n'.
func hasNull(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case 'n':
			return true
		}
	}
	return false
}

// describeDecodeError explains why data does not decode into an Event: it
// walks a generic decoding of data along the Event type and returns the first
// field whose JSON kind or name does not fit. decodeErr, the fast path's
// error (nil when it only found a null), names what the generic pass cannot
// see, such as a duplicate name or invalid UTF-8.
func describeDecodeError(data []byte, decodeErr error) error {
	var v any
	d := stdjson.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return invalid("(event)", "must be a JSON object: "+syntaxReason(err))
	}
	if _, ok := v.(map[string]any); !ok {
		return invalid("(event)", "must be a JSON object")
	}
	if len(trimJSONSpace(data[d.InputOffset():])) > 0 {
		return invalid("(event)", "must be exactly one JSON object (found trailing data)")
	}
	if fe := walk("", v, reflect.TypeFor[Event]()); fe != nil {
		return &ValidationError{Errors: []*FieldError{fe}}
	}
	return describeJSONError(data, decodeErr)
}

// describeJSONError names the field of an error the generic pass does not
// see, without echoing the input.
func describeJSONError(data []byte, err error) error {
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		field := pointerField(se.JSONPointer)
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			return invalid(field, "must not appear twice in one object (duplicate member name)")
		case !utf8.Valid(data):
			return invalid(field, "must be valid UTF-8")
		default:
			// encoding/json accepts what is left, such as an escaped lone
			// UTF-16 surrogate (\ud800), by replacing it.
			return invalid(field, fmt.Sprintf("must be well-formed JSON in UTF-8 (error at byte %d)", se.ByteOffset))
		}
	}
	if se, ok := errors.AsType[*jsonv2.SemanticError](err); ok {
		return invalid(pointerField(se.JSONPointer), "does not decode as schema v1")
	}
	if err == nil {
		return invalid("(event)", "must not hold null (leave the field out instead)")
	}
	return invalid("(event)", "does not decode as schema v1")
}

// pointerField turns a JSON pointer ("/token/claims/3") into a field path
// ("token.claims[3]").
func pointerField(p jsontext.Pointer) string {
	path := ""
	for tok := range p.Tokens() {
		if path == "token.claims" && tok != "" && strings.Trim(tok, "0123456789") == "" {
			path += "[" + truncate(tok) + "]"
			continue
		}
		path = join(path, tok)
	}
	if path == "" {
		return "(event)"
	}
	return path
}

// trimJSONSpace drops leading JSON whitespace, which is narrower than
// bytes.TrimSpace (no U+00A0, U+0085, \v or \f).
func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
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
	name := path
	if name == "" {
		name = "(event)"
	}
	if v == nil {
		return &FieldError{Field: name, Rule: "must not be null (leave the field out instead)"}
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
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
			return &FieldError{Field: name, Rule: "must be an integer written without a fraction or exponent"}
		}
		if t.Kind() == reflect.Uint32 {
			if i, err := n.Int64(); err != nil || i < 0 || i > 1<<32-1 {
				return &FieldError{Field: name, Rule: "must be an integer between 0 and 4294967295"}
			}
			if strings.HasPrefix(n.String(), "-") {
				// The fast path reads no unsigned integer from -0.
				return &FieldError{Field: name, Rule: "must be an integer written without a minus sign"}
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
