package sdk

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"net/netip"
	"time"
)

// Widest address prefixes an event may carry: an IPv4 /24 and an IPv6 /48.
// The SDK cuts longer prefixes to these before sending.
const (
	MaxIPv4PrefixBits = 24
	MaxIPv6PrefixBits = 48
)

// Event is what an app fills in to report a session event. Fields that
// identify a person, a session, a device or a token are Pseudonyms, so only
// a Pseudonymizer's output can be sent. Publishing does not modify an Event.
//
// Publish checks the rules of schema v1 that the typed fields can break
// (for example Session is required on session.* events and Token on
// token.* events) before anything is sent; sessionmon checks them again.
type Event struct {
	// ID identifies the event; the stream drops a repeated ID within its
	// duplicate window. Empty: a new ID (NewEventID) is made when the event
	// is converted. Set it yourself to correlate OnError reports or to make
	// your own retries idempotent.
	ID string
	// Type is the kind of event, such as LoginSucceeded.
	Type Type
	// Time is when it happened. Zero: the time of conversion.
	Time time.Time
	// Subject is the pseudonymous principal (required).
	Subject Pseudonym
	// Session is the pseudonymous session (required on session.* events).
	Session Pseudonym
	// PreviousSession is the session a session.started replaces, such as
	// the pre-login session rotated at login.
	PreviousSession Pseudonym
	// Reason is a short machine-readable reason, such as "bad_password"
	// on login.failed or "logout" on session.ended. Never put user input here.
	Reason string
	// Client describes where the event came from; see RequestInspector.
	Client *ClientInfo
	// Token describes the token of token.* events.
	Token *Token
	// Auth describes how the subject authenticated.
	Auth *Auth
	// Cookie describes the session cookie the app set.
	Cookie *Cookie
	// Policy declares the app's session policy, usually on session.started.
	Policy *Policy
	// Action names what the subject did, on action.performed.
	Action *Action
	// Key names a retired signing key, on key.retired.
	Key *Key
	// Attrs holds up to MaxAttrs extra low-cardinality labels, such as
	// "plan": "pro" (keys of A-Z a-z 0-9 _ . -, values of at most
	// MaxAttrValueBytes bytes). Never put identifiers or personal data here.
	Attrs map[string]string
}

// ClientInfo describes the client of an event, minimized: a network prefix
// and a keyed hash of the address, never the address; a pseudonymous
// device. RequestInspector.ClientInfo fills it from an *http.Request.
type ClientInfo struct {
	// Device is the pseudonymous device, from Pseudonymizer.Device.
	Device Pseudonym
	// IPPrefix is the client's network. The SDK cuts it to at most /24
	// (IPv4) or /48 (IPv6) and zeroes the host bits before sending.
	IPPrefix netip.Prefix
	// IPHash is the keyed hash of the full address, from Pseudonymizer.IPHash.
	IPHash Pseudonym
	// ASN, Country (ISO 3166 alpha-2), City and Lat/Lon with AccuracyKM
	// describe where the network is, when the app knows it.
	ASN        uint32
	Country    string
	City       string
	Lat, Lon   *float64
	AccuracyKM float64
	// UserAgent is the User-Agent header (at most 512 characters). The end
	// user controls it, so sessionmon clears one that looks like personal
	// data (an e-mail address, say) when it admits the event, and keeps
	// the rest of the event.
	UserAgent string
}

// Token describes a token by its fingerprint, never its value.
type Token struct {
	// ID, Family and Parent are fingerprints from Pseudonymizer.TokenID: of
	// this token, of the first token of its refresh family, and of the token
	// it was refreshed from.
	ID, Family, Parent Pseudonym
	// Kind is TokenAccess, TokenRefresh, TokenID, TokenAPIKey or empty.
	Kind string
	// IssuedAt and ExpiresAt are the token's iat and exp (zero: absent).
	IssuedAt, ExpiresAt time.Time
	// KID and Alg name the signing key and algorithm (at most 128 and 32
	// characters). Whoever presents a token controls its header, so
	// sessionmon clears a key id that looks like personal data when it
	// admits the event, as it does a User-Agent.
	KID, Alg string
	// Claims lists the NAMES of the token's claims (at most 64 names of
	// A-Z a-z 0-9 _ : . / -), never their values.
	Claims []string
}

// networkPrefix cuts p to the widest prefix an event may carry and zeroes
// its host bits. It reports false for the zero or an invalid Prefix.
func networkPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	addr, bits := p.Addr(), p.Bits()
	if addr.Is4In6() && bits >= 96 {
		// An IPv4-mapped prefix within ::ffff:0:0/96 is an IPv4 network.
		addr = addr.Unmap()
		bits -= 96
	}
	limit := MaxIPv6PrefixBits
	if addr.Is4() {
		limit = MaxIPv4PrefixBits
	}
	out, err := addr.WithZone("").Prefix(min(bits, limit))
	if err != nil {
		return netip.Prefix{}, false
	}
	return out, true
}

// addrPrefix is the network an address is reported as.
func addrPrefix(addr netip.Addr) netip.Prefix {
	p, _ := networkPrefix(netip.PrefixFrom(addr, addr.BitLen()))
	return p
}

// eventIDEncoding is Crockford's base32 alphabet, in ASCII order, so IDs
// sort by creation time.
var eventIDEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// NewEventID returns a new unique event ID: 26 characters of Crockford
// base32 encoding 48 bits of Unix milliseconds and 80 random bits, so IDs
// sort roughly by creation time.
func NewEventID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	// crypto/rand.Read never returns an error (it crashes the program
	// instead), so there is nothing to handle.
	_, _ = rand.Read(b[6:])
	return eventIDEncoding.EncodeToString(b[:])
}
