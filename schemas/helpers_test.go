package schemas_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// testNow is the receiver's clock for every Decode in these tests; the
// fixtures' times are a few hours before it.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// schemaURL names the embedded schema inside the compiler; nothing is
// fetched from it.
const schemaURL = "https://sessionmon.dev/schemas/event.v1.schema.json"

// eventSchema compiles the embedded event.v1.schema.json once (draft
// 2020-12, formats as annotations, as any validator treats them by default).
var eventSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.EventSchemaV1))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
})

// schemaValidate validates data against the JSON Schema the way a non-Go
// consumer would: parse the JSON text, then validate the value.
func schemaValidate(t testing.TB, data []byte) error {
	t.Helper()
	sch, err := eventSchema()
	require.NoError(t, err, "compile event.v1.schema.json")
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// fixture is one file under testdata.
type fixture struct {
	name string
	data []byte
}

// readFixtures returns the *.json files of testdata/dir, sorted by name.
func readFixtures(t testing.TB, dir string) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "no fixtures in testdata/%s", dir)
	sort.Strings(paths)
	out := make([]fixture, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		out = append(out, fixture{name: filepath.Base(p), data: data})
	}
	return out
}

// readFixture returns testdata/dir/name.
func readFixture(t testing.TB, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", dir, name))
	require.NoError(t, err)
	return data
}

// requireRejects asserts err is a *schemas.ValidationError that names field
// and whose rule for it contains rule.
func requireRejects(t testing.TB, err error, field, rule string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, schemas.ErrInvalidEvent)
	var ve *schemas.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Fields(), field, "error: %v", err)
	for _, fe := range ve.Errors {
		if fe.Field == field {
			require.Contains(t, fe.Rule, rule, "error: %v", err)
			require.Contains(t, err.Error(), field+": "+fe.Rule)
			return
		}
	}
}

// canonical makes two decodings of one event comparable with require.Equal:
// times in UTC (Encode writes UTC; the input may carry an offset) and empty
// attrs or claims as nil (Encode omits them, so they decode as nil).
func canonical(e *schemas.Event) *schemas.Event {
	c := *e
	utc := func(t *schemas.Time) *schemas.Time {
		if t == nil {
			return nil
		}
		u := schemas.At(t.UTC())
		return &u
	}
	c.Time = *utc(&c.Time)
	if len(c.Attrs) == 0 {
		c.Attrs = nil
	}
	if e.Token != nil {
		tok := *e.Token
		tok.IssuedAt, tok.ExpiresAt = utc(tok.IssuedAt), utc(tok.ExpiresAt)
		if len(tok.Claims) == 0 {
			tok.Claims = nil
		}
		c.Token = &tok
	}
	if e.Auth != nil {
		a := *e.Auth
		a.LastAuthAt = utc(a.LastAuthAt)
		c.Auth = &a
	}
	return &c
}

// schemaErrorPaths lists the fields a JSON Schema validation error is
// about, as dotted paths ("client.ip_prefix", "token.claims.1"; "" for the
// event itself). A missing or unknown property counts as its own path.
func schemaErrorPaths(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var visit func(*jsonschema.ValidationError)
	visit = func(e *jsonschema.ValidationError) {
		for _, c := range e.Causes {
			visit(c)
		}
		if k, ok := e.ErrorKind.(*kind.PropertyNames); ok {
			// jsonschema v6.0.3 gives a propertyNames error a wrong
			// instance location, so only the name itself is known.
			out = append(out, "*."+dotted([]string{k.Property}))
			return
		}
		if len(e.Causes) > 0 {
			return
		}
		base := e.InstanceLocation
		var names []string
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			names = k.Missing
		case *kind.DependentRequired:
			names = k.Missing
		case *kind.AdditionalProperties:
			names = k.Properties
		}
		if len(names) == 0 {
			out = append(out, dotted(base))
		}
		for _, n := range names {
			out = append(out, dotted(append(append([]string(nil), base...), n)))
		}
	}
	visit(ve)
	return out
}

// dotted joins path tokens as the Go errors do, shortening long ones.
func dotted(tokens []string) string {
	for i, tok := range tokens {
		if len(tok) > 32 {
			tokens[i] = tok[:32] + "..."
		}
	}
	return strings.Join(tokens, ".")
}

// sameField reports whether a Go error's field and a schema error's path
// are about the same field: equal, or one inside the other ("action" is
// missing; Go names "action.name"). A schema path "*.name" is a property
// name anywhere.
func sameField(goField, schemaPath string) bool {
	g := strings.NewReplacer("[", ".", "]", "").Replace(goField)
	if g == "(event)" {
		g = ""
	}
	if name, ok := strings.CutPrefix(schemaPath, "*."); ok {
		return strings.HasSuffix(g, "."+name)
	}
	return g == schemaPath || strings.HasPrefix(g, schemaPath+".") || strings.HasPrefix(schemaPath, g+".")
}
