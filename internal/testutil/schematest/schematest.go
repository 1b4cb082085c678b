// Package schematest validates JSON against sessionmon's JSON Schemas
// (schemas/*.schema.json) the way a non-Go consumer would: parse the JSON
// text, then validate the value (draft 2020-12, formats as annotations).
package schematest

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sessionmon/sessionmon/schemas"
)

// alertSchemaURL names the embedded alert schema inside the compiler;
// nothing is fetched from it.
const alertSchemaURL = "https://sessionmon.dev/schemas/alert.v1.schema.json"

// alertSchema compiles the embedded alert.v1.schema.json once.
var alertSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.AlertSchemaV1))
	if err != nil {
		return nil, fmt.Errorf("parse alert.v1.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(alertSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("add alert.v1.schema.json: %w", err)
	}
	return c.Compile(alertSchemaURL)
})

// ValidateAlert validates one message of the alerts stream (an alert, as
// also posted to webhooks, or a status change) against
// alert.v1.schema.json.
func ValidateAlert(data []byte) error {
	sch, err := alertSchema()
	if err != nil {
		return fmt.Errorf("compile alert.v1.schema.json: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("parse message: %w", err)
	}
	return sch.Validate(v)
}
