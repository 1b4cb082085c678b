package main

import (
	"encoding/json"
	"io"
)

// formatJSON reports whether a list or report command prints JSON (-o json)
// rather than a table.
func formatJSON(e *env) bool { return e.cfg.Format == "json" }

// printJSON writes v as one JSON document: keys in snake_case, times in
// RFC 3339, an empty list as [].
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
