package schemas_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// FuzzDecode feeds arbitrary bytes to Decode. It must never panic; an
// accepted event must survive Encode and Decode unchanged; a rejected one
// must get a *ValidationError naming at least one field. Decode is also
// checked against the JSON Schema: whatever Go accepts, the schema accepts,
// and whatever Go alone rejects breaks a rule listed in goOnlyCases.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"valid", "invalid", "go-only"} {
		for _, fx := range readFixtures(f, dir) {
			f.Add(fx.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := schemas.Decode(data, testNow)
		if err != nil {
			var ve *schemas.ValidationError
			require.ErrorAs(t, err, &ve)
			require.ErrorIs(t, err, schemas.ErrInvalidEvent)
			require.NotEmpty(t, ve.Errors)
			for _, fe := range ve.Errors {
				require.NotEmpty(t, fe.Field, "error: %v", err)
				require.NotEmpty(t, fe.Rule, "error: %v", err)
			}
			if comparableWithSchema(data) && schemaValidate(t, data) == nil {
				for _, fe := range ve.Errors {
					require.True(t, goOnlyRule(fe), "the JSON Schema accepts what Go rejects: %v", err)
				}
			}
			return
		}
		require.NotNil(t, e)
		if comparableWithSchema(data) {
			serr := schemaValidate(t, data)
			require.True(t, serr == nil || onlyNumberBounds(serr), "Go accepts what the JSON Schema rejects: %v", serr)
		}

		b, err := schemas.Encode(e)
		require.NoError(t, err)
		back, err := schemas.Decode(b, testNow)
		require.NoError(t, err, "decode %s", b)
		require.Equal(t, canonical(e), canonical(back))
	})
}

// goOnlyRule reports whether fe is one of the rules the JSON Schema cannot
// state (see goOnlyCases for each one's reason).
func goOnlyRule(fe *schemas.FieldError) bool {
	if fe.Field == "time" && fe.Rule == "is required" {
		return true // the zero instant
	}
	for _, words := range []string{
		"in the future",
		"host bits",
		"bytes (got", // the size of the event or an attrs value
		"without a fraction or exponent",
		"without a minus sign",
		"calendar date",
		"between 0000-01-01 and 9999-12-31",
		"duplicate member name",
		"UTF-8",
	} {
		if strings.Contains(fe.Rule, words) {
			return true
		}
	}
	return false
}

// onlyNumberBounds reports whether every reason the JSON Schema gives is a
// minimum or maximum: it compares decimals exactly, Go compares the float64
// they round to, so 90.00000000000000001 is 90 to Go and too large to the
// schema.
func onlyNumberBounds(err error) bool {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	var leaves []*jsonschema.ValidationError
	var visit func(*jsonschema.ValidationError)
	visit = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			visit(c)
		}
	}
	visit(ve)
	for _, l := range leaves {
		switch l.ErrorKind.(type) {
		case *kind.Minimum, *kind.Maximum:
		default:
			return false
		}
	}
	return true
}

// hugeExponent matches numbers the schema validator would expand into huge
// exact rationals, which is slow, not wrong.
var hugeExponent = regexp.MustCompile(`[eE][+-]?0*[0-9]{4,}`)

func comparableWithSchema(data []byte) bool {
	return !hugeExponent.Match(data)
}
