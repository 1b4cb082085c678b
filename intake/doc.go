// Package intake is sessionmon's HTTP intake: POST /v1/events takes
// schema-v1 events from apps that do not speak NATS (the JavaScript and
// Python SDKs, or any HTTP client), checks them as ingest does, and
// publishes them to JetStream, answering only once JetStream has stored
// them.
//
// Each request carries a per-app intake token (Authorization: Bearer
// smi_...). Tokens are made by `sessionmon creds app NAME --http`, kept
// in a JetStream key-value bucket as a SHA-256 hash with a MAC (never the
// token), bound to one app, and expire.
//
// A request holds up to MaxBodyBytes of JSON (one event or an array) or
// NDJSON (one event a line), at most MaxEvents events. The answer lists a
// result per event: accepted (stored now), duplicate (an event with this
// id was stored before; the event id is the JetStream message id, so a
// client may resend a batch safely) or rejected (with the error naming the
// field; never stored, never worth resending). Good events of a batch are
// kept when others are rejected.
package intake
