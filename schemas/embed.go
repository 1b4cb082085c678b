package schemas

import _ "embed"

// EventSchemaV1 is the JSON Schema (2020-12) of schema v1 events,
// event.v1.schema.json.
//
//go:embed event.v1.schema.json
var EventSchemaV1 []byte
