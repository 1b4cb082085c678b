package pii

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sessionmon/sessionmon/schemas"
)

// RedactJSON returns data, one JSON value that need not be a valid schema
// v1 event, re-encoded with every string and number that looks like
// personal data replaced by "[redacted:<kind>]", and the findings. It reads
// the JSON tokens as they are, so every string is scanned whatever its
// field: known fields, fields schema v1 does not have, and every copy of a
// duplicated key. Each string is scanned by the rules of Check:
// client.ip_prefix by the rule of schemas.Validate, client.user_agent as a
// User-Agent, and a value whose key names an address or a phone number
// ("client_ip", "phone") as such. A flagged object key is replaced by its
// placeholder ("[redacted:email]", numbered from the second on in one
// object), and so is its whole value. Keys keep their order, duplicates
// included, and numbers their digits. When data is not one JSON value it
// returns an error, and the caller must keep no body at all.
func RedactJSON(data []byte) ([]byte, []Finding, error) {
	r := redactJSON(data)
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.trailing {
		return nil, nil, errors.New("redact event json: trailing data after the first value")
	}
	return r.body, r.findings, nil
}

// MaxRawBytes is the largest message RedactRaw keeps any of: four times
// the largest event schema v1 allows.
const MaxRawBytes = 4 * schemas.MaxEventBytes

// RedactRaw returns the dead-letter body for data, an event ingest
// refused, and whether it differs from data. data comes back unchanged
// only when it is valid UTF-8, one JSON value read without loss (no
// duplicate keys, no trailing data) in which nothing was flagged, or text
// that is not JSON in which nothing was flagged. Otherwise JSON comes back
// as RedactJSON writes it (trailing data dropped), and text that is not
// JSON as "[redacted:<kind>]", or nothing at all when it is not valid
// UTF-8 (a decoder would have changed it). A message larger than
// MaxRawBytes is kept not at all.
func RedactRaw(data []byte) ([]byte, bool) {
	if len(data) > MaxRawBytes {
		return nil, true
	}
	r := redactJSON(data)
	if r.err == nil {
		if len(r.findings) == 0 && !r.lossy() {
			return data, false
		}
		return r.body, true
	}
	if !utf8.Valid(data) {
		return nil, true
	}
	// Text that is not JSON is scanned as it is and with JSON's
	// punctuation turned into spaces, so that a value glued to a quote or
	// a colon ("phone":0301234567) is not taken for part of a word.
	set := scanPII(string(data)) | scanPII(strings.Map(func(r rune) rune {
		if strings.ContainsRune(`"{}[],:=`, r) {
			return ' '
		}
		return r
	}, string(data)))
	for _, f := range r.findings {
		set |= kindSet(f.Kind)
	}
	if set != 0 {
		return []byte(redactedPlaceholder(set)), true
	}
	return data, false
}

// kindSet returns the piiSet of k.
func kindSet(k Kind) piiSet {
	for i, kk := range piiKinds {
		if kk == k {
			return 1 << i
		}
	}
	return 0
}

// redaction is what redactJSON found.
type redaction struct {
	body     []byte // the first value, redacted (when err is nil)
	findings []Finding
	// duplicate keys, invalid UTF-8 and trailing data: a decoder would
	// not have read all of data.
	duplicates, invalidUTF8, trailing bool
	err                               error // data is not JSON
}

func (r *redaction) lossy() bool { return r.duplicates || r.invalidUTF8 || r.trailing }

// frame is an open object or array.
type frame struct {
	object bool
	n      int    // members or elements written
	key    string // the current member's key, as written (objects)
	// wantValue: a key was read and its value comes next.
	wantValue bool
	// skip: the current member's key was flagged, and its value is
	// replaced by the key's placeholder.
	skip   bool
	keys   map[string]bool
	placed map[string]int // placeholders used for keys, by base
}

// redactJSON scans the tokens of data's first JSON value, writing the
// redacted value, and what follows it.
func redactJSON(data []byte) redaction {
	var r redaction
	r.invalidUTF8 = !utf8.Valid(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var (
		buf       bytes.Buffer
		stack     []*frame
		skipDepth int // >0: inside a flagged key's object or array value
		done      bool
	)
	// endValue closes a value in its frame; a value at the top level
	// ends the scan.
	endValue := func() {
		if len(stack) == 0 {
			done = true
			return
		}
		f := stack[len(stack)-1]
		f.n++
		f.wantValue, f.skip = false, false
	}
	for !done {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			r.err = fmt.Errorf("redact event json: %w", err)
			return r
		}
		if skipDepth > 0 {
			if d, ok := tok.(json.Delim); ok {
				if d == '{' || d == '[' {
					skipDepth++
				} else {
					skipDepth--
				}
			}
			if skipDepth == 0 {
				endValue()
			}
			continue
		}
		var f *frame
		if len(stack) > 0 {
			f = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			buf.WriteByte(byte(d))
			stack = stack[:len(stack)-1]
			endValue()
			continue
		}
		if f != nil && f.object && !f.wantValue {
			// A key: the decoder gives only strings here.
			k, _ := tok.(string)
			if f.n > 0 {
				buf.WriteByte(',')
			}
			if f.keys[k] {
				r.duplicates = true
			}
			f.keys[k] = true
			name := k
			if set := scanPII(k); set != 0 {
				base := redactedPlaceholder(set)
				f.placed[base]++
				if n := f.placed[base]; n > 1 {
					name = base[:len(base)-1] + ":" + strconv.Itoa(n) + "]"
				} else {
					name = base
				}
				f.key = name
				r.find(stack, set)
				f.skip = true
			}
			f.key = name
			writeJSONString(&buf, name)
			buf.WriteByte(':')
			f.wantValue = true
			continue
		}
		// A value, and the key that names it (an array's elements take
		// the key of the array).
		var key string
		if f != nil {
			key = f.key
			if !f.object && f.n > 0 {
				buf.WriteByte(',')
			}
		}
		if f != nil && f.skip {
			writeJSONString(&buf, f.key)
			if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
				skipDepth = 1
				continue
			}
			endValue()
			continue
		}
		switch v := tok.(type) {
		case json.Delim: // '{' or '['
			buf.WriteByte(byte(v))
			nf := &frame{object: v == '{', key: key}
			if nf.object {
				nf.key = ""
				nf.keys = make(map[string]bool)
				nf.placed = make(map[string]int)
			}
			stack = append(stack, nf)
			continue
		case string:
			if set := scanJSONValue(stack, key, v); set != 0 {
				r.find(stack, set)
				v = redactedPlaceholder(set)
			}
			writeJSONString(&buf, v)
		case json.Number:
			if set := scanJSONValue(stack, key, v.String()); set != 0 {
				r.find(stack, set)
				writeJSONString(&buf, redactedPlaceholder(set))
			} else {
				buf.WriteString(v.String())
			}
		case bool:
			buf.WriteString(strconv.FormatBool(v))
		case nil:
			buf.WriteString("null")
		}
		endValue()
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		r.trailing = true
		r.findings = appendPIISet(r.findings, "(trailing data)", scanPII(string(rest)))
	}
	r.body = buf.Bytes()
	return r
}

// Bounds on what a hostile message (deeply nested, full of flagged
// strings) makes the redaction do: paths are built only for findings, at
// most maxRedactFindings of them are recorded, and a path is cut after
// maxRedactPath bytes.
const (
	maxRedactFindings = 64
	maxRedactPath     = 256
)

// find records a finding at the current position of stack.
func (r *redaction) find(stack []*frame, set piiSet) {
	if len(r.findings) >= maxRedactFindings {
		return
	}
	r.findings = appendPIISet(r.findings, pathOf(stack), set)
}

// pathOf returns the JSON path of the current member or element of the
// innermost frame, "(event)" at the top level.
func pathOf(stack []*frame) string {
	if len(stack) == 0 {
		return "(event)"
	}
	var b strings.Builder
	for _, f := range stack {
		if b.Len() > maxRedactPath {
			b.WriteString("...")
			break
		}
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteString("[" + strconv.Itoa(f.n) + "]")
		}
	}
	return b.String()
}

// at reports whether the current position of stack is the member path of
// nested objects from the top ("client", "ip_prefix").
func at(stack []*frame, path ...string) bool {
	if len(stack) != len(path) {
		return false
	}
	for i, f := range stack {
		if !f.object || f.key != path[i] {
			return false
		}
	}
	return true
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's newline
}

// scanJSONValue applies the rule of the field at the current position of
// stack, named key, to s.
func scanJSONValue(stack []*frame, key, s string) piiSet {
	switch {
	case at(stack, "client", "ip_prefix"):
		return scanIPPrefix(s)
	case at(stack, "client", "user_agent"):
		return scanKeyed(key, s, modeUserAgent)
	}
	return scanKeyed(key, s, modeText)
}

// RedactText returns s, or "[redacted:<kind>]" when s looks like it
// carries personal data. Use it on text derived from an event before
// logging or keeping it, such as a schema error, whose field paths may
// quote an attrs key or an unknown field name.
func RedactText(s string) string {
	if set := scanPII(s); set != 0 {
		return redactedPlaceholder(set)
	}
	return s
}

// RedactFieldPath returns path, the JSON path of a field as a schema error
// or a Finding names it, with the part that came from the event (an attrs
// key or a field name schema v1 does not have) replaced by its placeholder
// when it looks like personal data: "attrs.bob@example.com" becomes
// "attrs.[redacted:email]". A name with an @ counts as an e-mail address
// even when schemas has shortened it ("attrs.bob.smith@examp...").
func RedactFieldPath(path string) string {
	known := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '.' && path[i] != '[' {
			continue
		}
		if _, ok := eventSchemaPaths[path[:i]]; !ok {
			break
		}
		known = i
		if i < len(path) && path[i] == '[' {
			return path // an array index follows a known field
		}
	}
	prefix, name := "", path
	if known > 0 {
		if known == len(path) {
			return path
		}
		prefix, name = path[:known+1], path[known+1:]
	}
	set := scanPII(name)
	if set == 0 && strings.IndexByte(name, '@') >= 0 {
		set = piiEmail
	}
	if set == 0 {
		return path
	}
	return prefix + redactedPlaceholder(set)
}

// RedactSchemaError returns the field paths and the message of err, an
// error of schemas.Decode or Validate, with RedactFieldPath applied to every
// path, so that a dead letter can keep them (the rules quote no values).
// An error of another type is returned through RedactText.
func RedactSchemaError(err error) (fields []string, message string) {
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		return nil, RedactText(err.Error())
	}
	red := &schemas.ValidationError{Errors: make([]*schemas.FieldError, len(ve.Errors))}
	for i, fe := range ve.Errors {
		red.Errors[i] = &schemas.FieldError{Field: RedactFieldPath(fe.Field), Rule: fe.Rule}
	}
	return red.Fields(), red.Error()
}

func jsonPathJoin(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// eventSchemaPaths are the JSON paths of every field of schema v1 that
// holds a value (true) or an object of fields (false), array indexes left
// out.
var eventSchemaPaths = func() map[string]bool {
	out := make(map[string]bool)
	var add func(prefix string, t reflect.Type)
	add = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[schemas.Time]() {
			out[prefix] = true
			return
		}
		if prefix != "" {
			out[prefix] = false
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			add(jsonPathJoin(prefix, name), f.Type)
		}
	}
	add("", reflect.TypeFor[schemas.Event]())
	return out
}()

// scanIPPrefix applies the ip_prefix rule of schemas.Validate: anything
// that parses as an address or a network but is not a host-free network of
// the allowed width is an ip_address.
func scanIPPrefix(s string) piiSet {
	if s == "" {
		return 0
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if allowedNetwork(p) {
			return 0
		}
		return piiIP
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return piiIP
	}
	return scanPII(s)
}

// allowedNetwork reports whether p is a network schemas.Validate accepts as
// client.ip_prefix: /24 or wider for IPv4, /48 or wider for IPv6, host bits
// zero. TestIPPrefixAgreesWithValidate keeps the two in step.
func allowedNetwork(p netip.Prefix) bool {
	if p.Addr().Is4() && p.Bits() > maxIPv4PrefixBits {
		return false
	}
	if p.Addr().Is6() && p.Bits() > maxIPv6PrefixBits {
		return false
	}
	return p.Masked() == p
}
