package natsconn

import (
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
)

// inboxPrefix returns the reply subject prefix a credentials file allows,
// for credentials that may subscribe to one inbox prefix only (sessionmon's
// app.creds, `sessionmon creds app NAME`): without it the JetStream
// acknowledgements could not reach the client. It returns "" for every
// other file, or one it cannot read (the connection reports that).
func inboxPrefix(credsFile string) string {
	b, err := os.ReadFile(credsFile)
	if err != nil {
		return ""
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return ""
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return ""
	}
	allow := uc.Permissions.Sub.Allow
	if len(allow) != 1 {
		return ""
	}
	prefix, ok := strings.CutSuffix(allow[0], ".>")
	if !ok || prefix == "_INBOX" || prefix == "" || strings.ContainsAny(prefix, "*>") {
		return ""
	}
	return prefix
}
