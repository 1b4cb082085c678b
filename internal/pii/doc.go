// Package pii keeps raw personal data and secrets out of what sessionmon
// stores and shows. Admit is the one gate every event passes before ingest
// stores it and before the detectors judge it (live, on replay and
// offline): it decodes and validates the event, binds its app to the NATS
// subject it arrived on, runs Check over every string of it, and coarsens
// an app-supplied location to city precision. RedactRaw turns a refused
// message into a dead-letter body that keeps no flagged value, and
// RedactText, RedactFieldPath and RedactSchemaError clean text derived from
// an event (error messages, field paths, alert texts).
//
// The scanner uses byte-class tables and no regular expressions, and does
// not allocate for a clean ASCII event; every function is safe for
// concurrent use.
package pii
