// Package schemas holds sessionmon's data contracts: the session event
// (schema v1) as Go types with a strict decoder and validator, the same
// contract as a JSON Schema (event.v1.schema.json); the alert and the
// change of its status (alert.go, alert.v1.schema.json); the NATS names of
// every stream, subject, bucket and consumer (nats.go); and the ClickHouse
// migrations.
//
// The Go validator and the JSON Schema describe the same rules; a test
// validates every fixture under testdata/ against both so they cannot drift.
// A few rules need more than a static schema and are enforced by the Go side
// only (the schema's description lists them): among them an event time more
// than MaxFutureSkew ahead of now, an ip_prefix whose host bits are not zero,
// the 16 KiB size limit and duplicate member names.
package schemas

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sessionmon/sessionmon/sdk"
)

// SchemaVersion is the only event schema version this release reads and
// writes.
const SchemaVersion = sdk.SchemaVersion

// Limits of schema v1, one definition with the SDK, which checks them
// before sending.
const (
	// MaxEventBytes is the largest encoded event accepted.
	MaxEventBytes = sdk.MaxEventBytes
	// MaxFutureSkew is how far ahead of the receiver's clock an event time may be.
	MaxFutureSkew = sdk.MaxFutureSkew
	// MaxAttrs is the largest number of keys in attrs.
	MaxAttrs = sdk.MaxAttrs
	// MaxAttrValueBytes is the longest attrs value.
	MaxAttrValueBytes = sdk.MaxAttrValueBytes
)

// Type is the kind of a session event. The SDK, which apps fill events
// with, holds the one list of types.
type Type = sdk.Type

// Event types of schema v1.
const (
	LoginSucceeded  = sdk.LoginSucceeded
	LoginFailed     = sdk.LoginFailed
	SessionStarted  = sdk.SessionStarted
	SessionActivity = sdk.SessionActivity
	SessionEnded    = sdk.SessionEnded
	TokenIssued     = sdk.TokenIssued
	TokenRefreshed  = sdk.TokenRefreshed
	TokenUsed       = sdk.TokenUsed
	TokenRevoked    = sdk.TokenRevoked
	ReauthSucceeded = sdk.ReauthSucceeded
	ActionPerformed = sdk.ActionPerformed
	KeyRetired      = sdk.KeyRetired
)

// Types lists every event type of schema v1, in a stable order.
var Types = sdk.Types

// Event is one session event, schema v1. Pseudonymous fields (Subject,
// Session, PreviousSession, Client.Device, Token.ID/Family/Parent) carry keyed
// pseudonyms or fingerprints, never raw identifiers or secrets.
type Event struct {
	ID              string            `json:"id"`
	SchemaVersion   int               `json:"schema_version"`
	Type            Type              `json:"type"`
	Time            Time              `json:"time"`
	App             string            `json:"app"`
	Subject         string            `json:"subject"`
	Session         string            `json:"session,omitempty"`
	PreviousSession string            `json:"previous_session,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	Client          *Client           `json:"client,omitempty"`
	Token           *Token            `json:"token,omitempty"`
	Auth            *Auth             `json:"auth,omitempty"`
	Cookie          *Cookie           `json:"cookie,omitempty"`
	Policy          *Policy           `json:"policy,omitempty"`
	Action          *Action           `json:"action,omitempty"`
	Key             *Key              `json:"key,omitempty"`
	Attrs           map[string]string `json:"attrs,omitempty"`
}

// Client describes where an event came from, minimized: a network prefix and
// a keyed hash instead of the address, a pseudonymous device id.
type Client struct {
	Device     string   `json:"device,omitempty"`
	IPPrefix   string   `json:"ip_prefix,omitempty"`
	IPHash     string   `json:"ip_hash,omitempty"`
	ASN        uint32   `json:"asn,omitempty"`
	Country    string   `json:"country,omitempty"`
	City       string   `json:"city,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
	AccuracyKM float64  `json:"accuracy_km,omitempty"`
	UserAgent  string   `json:"user_agent,omitempty"`

	// Enrichment: set by sessionmon from its GeoIP databases (see
	// internal/geo.Resolver.Enrich), never decoded from an event.
	ASOrg     string    `json:"-"`
	Anonymity Anonymity `json:"-"`
	GeoSource GeoSource `json:"-"`
}

// HasGeo reports whether the client block carries a location.
func (c *Client) HasGeo() bool { return c != nil && c.Lat != nil && c.Lon != nil }

// GeoSource says where a client's location came from.
type GeoSource string

// Geo sources.
const (
	// GeoSourceNone: no location.
	GeoSourceNone GeoSource = ""
	// GeoSourceApp: the app sent the coordinates (or, without
	// coordinates, the country).
	GeoSourceApp GeoSource = "app"
	// GeoSourceGeoIP: sessionmon looked the client's ip_prefix up in its
	// GeoIP databases.
	GeoSourceGeoIP GeoSource = "geoip"
)

// Anonymity is the set of anonymous-network classes a GeoIP anonymous-IP
// database gives a client's network. The zero value is a network not known
// to be anonymous.
type Anonymity uint8

// Anonymous-network classes.
const (
	// AnonymousVPN: a commercial VPN provider's exit.
	AnonymousVPN Anonymity = 1 << iota
	// AnonymousHosting: a hosting or cloud provider's network.
	AnonymousHosting
	// AnonymousTorExit: a Tor exit node.
	AnonymousTorExit
	// AnonymousPublicProxy: an open proxy.
	AnonymousPublicProxy
	// AnonymousResidentialProxy: a residential proxy network (hosts of
	// ordinary subscribers rented out as exits).
	AnonymousResidentialProxy
	// AnonymousOther: anonymous, without a class the database names.
	AnonymousOther
)

var anonymityNames = [...]string{"vpn", "hosting", "tor_exit", "public_proxy", "residential_proxy", "anonymous"}

// Names returns the classes set, in a fixed order: "vpn", "hosting",
// "tor_exit", "public_proxy", "residential_proxy", "anonymous". It is nil
// for zero.
func (a Anonymity) Names() []string {
	if a == 0 {
		return nil
	}
	var out []string
	for i, n := range anonymityNames {
		if a&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String joins Names with commas.
func (a Anonymity) String() string { return strings.Join(a.Names(), ",") }

// ParseAnonymity returns the set of the class names in names, or an error
// naming the first unknown one.
func ParseAnonymity(names []string) (Anonymity, error) {
	var a Anonymity
	for _, n := range names {
		i := slices.Index(anonymityNames[:], n)
		if i < 0 {
			return 0, fmt.Errorf("unknown anonymous-network class %q (want %s)", n, strings.Join(anonymityNames[:], ", "))
		}
		a |= 1 << i
	}
	return a, nil
}

// Token kinds.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
	TokenID      = "id"
	TokenAPIKey  = "api_key"
)

// Token describes a token by its id (jti or fingerprint), never its value.
// Claims lists claim names only, never values.
type Token struct {
	ID        string   `json:"id,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Family    string   `json:"family,omitempty"`
	Parent    string   `json:"parent,omitempty"`
	IssuedAt  *Time    `json:"issued_at,omitempty"`
	ExpiresAt *Time    `json:"expires_at,omitempty"`
	KID       string   `json:"kid,omitempty"`
	Alg       string   `json:"alg,omitempty"`
	Claims    []string `json:"claims,omitempty"`
}

// Auth describes how the subject authenticated.
type Auth struct {
	Method     string `json:"method,omitempty"`
	MFA        *bool  `json:"mfa,omitempty"`
	LastAuthAt *Time  `json:"last_auth_at,omitempty"`
}

// SameSite values of a cookie.
const (
	SameSiteStrict = "strict"
	SameSiteLax    = "lax"
	SameSiteNone   = "none"
)

// Cookie describes the attributes of the session cookie the app set.
type Cookie struct {
	Name     string `json:"name,omitempty"`
	Secure   *bool  `json:"secure,omitempty"`
	HTTPOnly *bool  `json:"http_only,omitempty"`
	SameSite string `json:"same_site,omitempty"`
}

// Policy is the session-management policy the app declares, usually on
// session.started. Zero means "not declared".
type Policy struct {
	IdleTimeoutS     int64 `json:"idle_timeout_s,omitempty"`
	AbsoluteTimeoutS int64 `json:"absolute_timeout_s,omitempty"`
	ReauthWindowS    int64 `json:"reauth_window_s,omitempty"`
}

// Action describes an action the subject performed.
type Action struct {
	Name      string `json:"name,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

// Key names a signing key, on key.retired.
type Key struct {
	KID string `json:"kid,omitempty"`
}
