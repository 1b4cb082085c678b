package sdk

import "time"

// SchemaVersion is the version of the event schema the SDK writes.
const SchemaVersion = 1

// Limits of schema v1 that the SDK checks before sending.
const (
	// MaxEventBytes is the largest encoded event sessionmon accepts.
	MaxEventBytes = 16 << 10
	// MaxFutureSkew is how far ahead of sessionmon's clock an event time may be.
	MaxFutureSkew = 24 * time.Hour
	// MaxAttrs is the largest number of keys in Event.Attrs.
	MaxAttrs = 16
	// MaxAttrValueBytes is the longest value in Event.Attrs.
	MaxAttrValueBytes = 256
)

// Type is the kind of a session event.
type Type string

// Event types of schema v1.
const (
	LoginSucceeded  Type = "login.succeeded"
	LoginFailed     Type = "login.failed"
	SessionStarted  Type = "session.started"
	SessionActivity Type = "session.activity"
	SessionEnded    Type = "session.ended"
	TokenIssued     Type = "token.issued"
	TokenRefreshed  Type = "token.refreshed"
	TokenUsed       Type = "token.used"
	TokenRevoked    Type = "token.revoked"
	ReauthSucceeded Type = "reauth.succeeded"
	ActionPerformed Type = "action.performed"
	KeyRetired      Type = "key.retired"
)

// Types lists every event type of schema v1, in a stable order.
var Types = []Type{
	LoginSucceeded, LoginFailed, SessionStarted, SessionActivity, SessionEnded,
	TokenIssued, TokenRefreshed, TokenUsed, TokenRevoked, ReauthSucceeded,
	ActionPerformed, KeyRetired,
}

// Valid reports whether t is a schema v1 event type.
func (t Type) Valid() bool {
	for _, k := range Types {
		if t == k {
			return true
		}
	}
	return false
}

// needsSession reports whether events of type t must carry a session.
func (t Type) needsSession() bool {
	return t == SessionStarted || t == SessionActivity || t == SessionEnded
}

// needsToken reports whether events of type t must carry a token.
func (t Type) needsToken() bool {
	return t == TokenIssued || t == TokenRefreshed || t == TokenUsed || t == TokenRevoked
}

// Token kinds, for Token.Kind.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
	TokenID      = "id"
	TokenAPIKey  = "api_key"
)

// SameSite values of a cookie, for Cookie.SameSite.
const (
	SameSiteStrict = "strict"
	SameSiteLax    = "lax"
	SameSiteNone   = "none"
)

// Auth describes how the subject authenticated.
type Auth struct {
	// Method names the method, such as "password", "passkey" or "sso"
	// (at most 64 characters).
	Method string
	// MFA tells whether a second factor was used (nil: not said).
	MFA *bool
	// LastAuthAt is when the subject last proved who they are, such as
	// the login a reauth.succeeded renews (zero: absent).
	LastAuthAt time.Time
}

// Cookie describes the attributes of the session cookie the app set.
type Cookie struct {
	// Name is the cookie's name (at most 128 characters), never its value.
	Name string
	// Secure and HTTPOnly are the cookie's flags (nil: not said).
	Secure, HTTPOnly *bool
	// SameSite is SameSiteStrict, SameSiteLax, SameSiteNone or empty.
	SameSite string
}

// Policy is the session-management policy the app declares, usually on
// session.started, in seconds. Zero means "not declared".
type Policy struct {
	IdleTimeoutS     int64
	AbsoluteTimeoutS int64
	ReauthWindowS    int64
}

// Action describes an action the subject performed, on action.performed.
type Action struct {
	// Name names the action, such as "change_email" (required, at most
	// 128 characters). Never put user input or personal data here.
	Name string
	// Sensitive marks actions that should need a recent authentication.
	Sensitive bool
}

// Key names a signing key, on key.retired.
type Key struct {
	// KID is the key id (required, at most 128 characters).
	KID string
}

// EventSubjectPrefix starts the NATS subject of every event.
const EventSubjectPrefix = "sessionmon.events."

// EventSubject returns the NATS subject an event of app about subject (a
// pseudonym) is published on: EventSubjectPrefix + "<app>.<subject>". Both
// must be valid tokens (no dots, spaces or wildcards), as a Pseudonym and
// an app name accepted by WithApp are.
func EventSubject(app, subject string) string {
	return EventSubjectPrefix + app + "." + subject
}
