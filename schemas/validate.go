package schemas

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Patterns shared with event.v1.schema.json. Each is a class of ASCII bytes
// repeated min to max times, checked by a byte loop rather than a regexp
// (Validate is on the ingest hot path); patterns_test.go proves each one
// matches exactly what the schema's pattern matches.
var (
	idPattern        = bytePattern{set: alnumAnd("_:.~-"), min: 1, max: 64}  // ^[A-Za-z0-9_:.~-]{1,64}$
	appPattern       = bytePattern{set: alnumAnd("_-"), min: 1, max: 64}     // ^[A-Za-z0-9_-]{1,64}$
	pseudonymPattern = bytePattern{set: alnumAnd("_:~-"), min: 8, max: 128}  // ^[A-Za-z0-9_:~-]{8,128}$
	countryPattern   = bytePattern{set: byteRange('A', 'Z'), min: 2, max: 2} // ^[A-Z]{2}$
	claimPattern     = bytePattern{set: alnumAnd("_:./-"), min: 1, max: 64}  // ^[A-Za-z0-9_:./-]{1,64}$
	attrKeyPattern   = bytePattern{set: alnumAnd("_.-"), min: 1, max: 64}    // ^[A-Za-z0-9_.-]{1,64}$
)

// byteSet is a set of ASCII bytes.
type byteSet [256]bool

func byteRange(lo, hi byte) *byteSet {
	var s byteSet
	for c := lo; c <= hi; c++ {
		s[c] = true
	}
	return &s
}

// alnumAnd returns the set A-Z a-z 0-9 plus the bytes of extra.
func alnumAnd(extra string) *byteSet {
	s := byteRange('A', 'Z')
	for c := byte('a'); c <= 'z'; c++ {
		s[c] = true
	}
	for c := byte('0'); c <= '9'; c++ {
		s[c] = true
	}
	for i := 0; i < len(extra); i++ {
		s[extra[i]] = true
	}
	return s
}

// bytePattern is the pattern ^[set]{min,max}$ over ASCII bytes.
type bytePattern struct {
	set      *byteSet
	min, max int
}

// MatchString reports whether s matches the pattern.
func (p bytePattern) MatchString(s string) bool {
	if len(s) < p.min || len(s) > p.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !p.set[s[i]] {
			return false
		}
	}
	return true
}

const (
	pseudonymRule = "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -"
	// Longest declared policy duration: ten years, in seconds.
	maxPolicySeconds = 10 * 365 * 24 * 3600
	// Half the earth's circumference, the largest meaningful radius.
	maxAccuracyKM = 20038
)

// Types that need a session, a token or another block.
var (
	sessionTypes = []Type{SessionStarted, SessionActivity, SessionEnded}
	tokenTypes   = []Type{TokenIssued, TokenRefreshed, TokenUsed, TokenRevoked}
)

// validator collects field errors.
type validator struct {
	errs []*FieldError
}

func (v *validator) add(field, rule string, args ...any) {
	if len(args) > 0 {
		rule = fmt.Sprintf(rule, args...)
	}
	v.errs = append(v.errs, &FieldError{Field: field, Rule: rule})
}

// maxLen counts characters, as JSON Schema's maxLength does.
func (v *validator) maxLen(field, s string, n int) {
	// A string has at most as many characters as bytes.
	if len(s) <= n {
		return
	}
	if c := utf8.RuneCountInString(s); c > n {
		v.add(field, "must be at most %d characters (got %d)", n, c)
	}
}

func (v *validator) pseudonym(field, s string, required bool) {
	if s == "" {
		if required {
			v.add(field, "is required")
		}
		return
	}
	if !pseudonymPattern.MatchString(s) {
		v.add(field, pseudonymRule)
	}
}

// The writable range of times in Unix seconds: from 0000-01-01T00:00:00Z
// up to, not including, 10000-01-01T00:00:00Z. Comparing seconds is cheaper
// than computing the year, and the bounds are whole seconds.
var (
	minWritableUnix = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	endWritableUnix = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// timeRange keeps t writable: MarshalJSON writes UTC, and RFC 3339 has
// four-digit years only, so a time whose offset moves it out of years
// 0000-9999 in UTC could not be encoded and decoded again.
func (v *validator) timeRange(field string, t Time) {
	if s := t.Unix(); s < minWritableUnix || s >= endWritableUnix {
		v.add(field, "must be between 0000-01-01 and 9999-12-31 in UTC")
	}
}

func (v *validator) nonNegative(field string, n int64, max int64) {
	if n < 0 || n > max {
		v.add(field, "must be between 0 and %d", max)
	}
}

// Validate checks e against every rule of schema v1, with now as the
// receiver's clock for the future-time rule. It returns nil or a
// *ValidationError listing every broken rule.
func (e *Event) Validate(now time.Time) error {
	var v validator
	switch {
	case e.ID == "":
		v.add("id", "is required")
	case !idPattern.MatchString(e.ID):
		v.add("id", "must be 1-64 characters of A-Z a-z 0-9 _ : . ~ -")
	}
	if e.SchemaVersion != SchemaVersion {
		v.add("schema_version", "must be %d (got %d)", SchemaVersion, e.SchemaVersion)
	}
	switch {
	case e.Type == "":
		v.add("type", "is required")
	case !e.Type.Valid():
		v.add("type", "must be one of the schema v1 types (login.succeeded, login.failed, session.*, token.*, reauth.succeeded, action.performed, key.retired)")
	}
	switch {
	case e.Time.IsZero():
		v.add("time", "is required")
	case e.Time.Sub(now) > MaxFutureSkew:
		v.add("time", "must not be more than %s in the future", MaxFutureSkew)
	default:
		v.timeRange("time", e.Time)
	}
	switch {
	case e.App == "":
		v.add("app", "is required")
	case !appPattern.MatchString(e.App):
		v.add("app", "must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
	v.pseudonym("subject", e.Subject, true)
	v.pseudonym("session", e.Session, typeIn(e.Type, sessionTypes))
	v.pseudonym("previous_session", e.PreviousSession, false)
	if e.PreviousSession != "" && e.Type != SessionStarted {
		v.add("previous_session", "is allowed only on session.started")
	}
	v.maxLen("reason", e.Reason, 256)
	v.client(e.Client)
	v.token(e.Token, typeIn(e.Type, tokenTypes))
	if a := e.Auth; a != nil {
		v.maxLen("auth.method", a.Method, 64)
		if a.LastAuthAt != nil {
			v.timeRange("auth.last_auth_at", *a.LastAuthAt)
		}
	}
	if c := e.Cookie; c != nil {
		v.maxLen("cookie.name", c.Name, 128)
		switch c.SameSite {
		case "", SameSiteStrict, SameSiteLax, SameSiteNone:
		default:
			v.add("cookie.same_site", "must be one of strict, lax, none")
		}
	}
	if p := e.Policy; p != nil {
		v.nonNegative("policy.idle_timeout_s", p.IdleTimeoutS, maxPolicySeconds)
		v.nonNegative("policy.absolute_timeout_s", p.AbsoluteTimeoutS, maxPolicySeconds)
		v.nonNegative("policy.reauth_window_s", p.ReauthWindowS, maxPolicySeconds)
	}
	if e.Type == ActionPerformed && (e.Action == nil || e.Action.Name == "") {
		v.add("action.name", "is required on action.performed")
	}
	if a := e.Action; a != nil {
		v.maxLen("action.name", a.Name, 128)
	}
	if e.Type == KeyRetired && (e.Key == nil || e.Key.KID == "") {
		v.add("key.kid", "is required on key.retired")
	}
	if k := e.Key; k != nil {
		v.maxLen("key.kid", k.KID, 128)
	}
	v.attrs(e.Attrs)
	if len(v.errs) > 0 {
		return &ValidationError{Errors: v.errs}
	}
	return nil
}

func (v *validator) client(c *Client) {
	if c == nil {
		return
	}
	v.pseudonym("client.device", c.Device, false)
	if c.IPPrefix != "" {
		if rule := checkIPPrefix(c.IPPrefix); rule != "" {
			v.add("client.ip_prefix", rule)
		}
	}
	v.pseudonym("client.ip_hash", c.IPHash, false)
	if c.Country != "" && !countryPattern.MatchString(c.Country) {
		v.add("client.country", "must be an ISO 3166 alpha-2 code in upper case")
	}
	v.maxLen("client.city", c.City, 128)
	switch {
	case c.Lat != nil && c.Lon == nil:
		v.add("client.lon", "is required when lat is given")
	case c.Lat == nil && c.Lon != nil:
		v.add("client.lat", "is required when lon is given")
	}
	if c.Lat != nil && (math.IsNaN(*c.Lat) || *c.Lat < -90 || *c.Lat > 90) {
		v.add("client.lat", "must be between -90 and 90")
	}
	if c.Lon != nil && (math.IsNaN(*c.Lon) || *c.Lon < -180 || *c.Lon > 180) {
		v.add("client.lon", "must be between -180 and 180")
	}
	if c.AccuracyKM < 0 || c.AccuracyKM > maxAccuracyKM {
		v.add("client.accuracy_km", "must be between 0 and %d", maxAccuracyKM)
	}
	v.maxLen("client.user_agent", c.UserAgent, 512)
}

// checkIPPrefix returns the broken rule of an ip_prefix, or "".
func checkIPPrefix(s string) string {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "must be a network in CIDR notation (e.g. 203.0.113.0/24 or 2001:db8:1::/48)"
	}
	if p.Addr().Is6() && strings.IndexByte(s, '.') >= 0 {
		// The schema's pattern has no dotted form for IPv6.
		return "must write an IPv6 network in hex groups, without an embedded IPv4 address"
	}
	if p.Addr().Is4() && p.Bits() > 24 {
		return "must be an IPv4 network of /24 or wider, never a host address"
	}
	if p.Addr().Is6() && p.Bits() > 48 {
		return "must be an IPv6 network of /48 or wider, never a host address"
	}
	if p.Masked() != p {
		return "must have its host bits zero (a network, not an address)"
	}
	return ""
}

func (v *validator) token(t *Token, required bool) {
	if t == nil {
		if required {
			v.add("token", "is required on token events")
		}
		return
	}
	v.pseudonym("token.id", t.ID, required)
	switch t.Kind {
	case "", TokenAccess, TokenRefresh, TokenID, TokenAPIKey:
	default:
		v.add("token.kind", "must be one of access, refresh, id, api_key")
	}
	v.pseudonym("token.family", t.Family, false)
	v.pseudonym("token.parent", t.Parent, false)
	if t.IssuedAt != nil {
		v.timeRange("token.issued_at", *t.IssuedAt)
	}
	if t.ExpiresAt != nil {
		v.timeRange("token.expires_at", *t.ExpiresAt)
	}
	v.maxLen("token.kid", t.KID, 128)
	v.maxLen("token.alg", t.Alg, 32)
	if len(t.Claims) > 64 {
		v.add("token.claims", "must have at most 64 claim names")
	}
	for i, c := range t.Claims {
		if !claimPattern.MatchString(c) {
			v.add(fmt.Sprintf("token.claims[%d]", i), "must be a claim name (1-64 characters of A-Z a-z 0-9 _ : . / -), never a claim value")
		}
	}
}

func (v *validator) attrs(m map[string]string) {
	if len(m) > MaxAttrs {
		v.add("attrs", "must have at most %d keys (got %d)", MaxAttrs, len(m))
	}
	for _, k := range sortedKeys(m) {
		if !attrKeyPattern.MatchString(k) {
			v.add("attrs."+truncate(k), "key must be 1-64 characters of A-Z a-z 0-9 _ . -")
			continue
		}
		if n := len(m[k]); n > MaxAttrValueBytes {
			v.add("attrs."+k, "value must be at most %d bytes (got %d)", MaxAttrValueBytes, n)
		}
	}
}

func typeIn(t Type, set []Type) bool {
	for _, s := range set {
		if t == s {
			return true
		}
	}
	return false
}

// truncate shortens an untrusted name quoted in an error, at a character
// boundary. An empty name shows as "" so every error names a field.
func truncate(s string) string {
	if s == "" {
		return `""`
	}
	if len(s) <= 32 {
		return s
	}
	n := 32
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// ValidApp reports whether s is an app name as schema v1 allows it. Other
// packages check app names from outside (filters, config) with it.
func ValidApp(s string) bool { return appPattern.MatchString(s) }

// ValidPseudonym reports whether s has the form schema v1 requires of
// subject, session, device and token pseudonyms.
func ValidPseudonym(s string) bool { return pseudonymPattern.MatchString(s) }
