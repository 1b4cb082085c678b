package pii

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// FuzzRedactRaw feeds arbitrary messages to the dead-letter redaction: it
// keeps the bytes only when they are clean and read without loss, and what
// it returns is stable (redacting it again changes nothing).
func FuzzRedactRaw(f *testing.F) {
	for _, s := range []string{
		`{"subject":"alice@example.com","extra":1}`, `{"a":"x","a":"bob@example.com"}`, `{"id":"203.0.113.7"} trailing`,
		"{\"a\":\"x\xffy\"}", `{"client":{"user_agent":"Chrome/120.0.0.0"}}`, `{"phone":5551234567}`, `[1,"ip-10-1-2-3"]`,
		`not json at all`, `{"attrs":{"bob@example.com":{"x":[1,2]}}}`, "", `"bob＠example.com"`, `{"a":{"b":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, redacted := RedactRaw(data)
		if !redacted {
			require.Equal(t, data, body)
			require.True(t, utf8.Valid(data))
			r := redactJSON(data)
			if r.err == nil {
				require.Empty(t, r.findings)
				require.False(t, r.lossy())
			} else {
				require.Zero(t, scanPII(string(data)))
			}
		}
		again, _ := RedactRaw(body)
		require.True(t, bytes.Equal(body, again), "redacting %q again gave %q", body, again)

		// Whatever the gate admits, the dead-letter scan finds nothing
		// more to hide than Check did.
		subject := schemas.EventSubject("shop", "k1")
		if e, err := Admit(subject, data, time.Now()); err == nil {
			require.Empty(t, Check(e))
		}
	})
}
