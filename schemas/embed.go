package schemas

import _ "embed"

// EventSchemaV1 is the JSON Schema (2020-12) of schema v1 events,
// event.v1.schema.json.
//
//go:embed event.v1.schema.json
var EventSchemaV1 []byte

// AlertSchemaV1 is the JSON Schema (2020-12) of the messages of the alerts
// stream, alerts and status changes, alert.v1.schema.json. An alert is
// also the body of a webhook in the json format.
//
//go:embed alert.v1.schema.json
var AlertSchemaV1 []byte
