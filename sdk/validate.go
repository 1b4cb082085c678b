package sdk

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidationError lists every rule of schema v1 an event breaks, found
// before it was sent. sessionmon checks events again when it receives
// them; these checks cover what an app can get wrong through Event.
type ValidationError struct {
	Errors []*FieldError
}

// FieldError is one broken rule: the JSON path of the field ("token.id",
// "attrs.plan") and the rule, in words.
type FieldError struct {
	Field string
	Rule  string
}

// Error returns "field: rule".
func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

// Error returns "invalid event: field: rule; field: rule".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid event: ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidEvent) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidEvent }

// Fields returns the paths of the broken fields.
func (e *ValidationError) Fields() []string {
	out := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe.Field
	}
	return out
}

// Longest declared policy duration: ten years, in seconds; and half the
// earth's circumference, the largest meaningful location radius.
const (
	maxPolicySeconds = 10 * 365 * 24 * 3600
	maxAccuracyKM    = 20038
)

// checker collects field errors.
type checker struct{ errs []*FieldError }

func (c *checker) add(field, rule string, args ...any) {
	if len(args) > 0 {
		rule = fmt.Sprintf(rule, args...)
	}
	c.errs = append(c.errs, &FieldError{Field: field, Rule: rule})
}

// maxLen counts characters, as the schema does.
func (c *checker) maxLen(field, s string, n int) {
	if len(s) > n && utf8.RuneCountInString(s) > n {
		c.add(field, "must be at most %d characters (got %d)", n, utf8.RuneCountInString(s))
	}
}

// pseudonym checks the form of a pseudonym, which a Pseudonymizer always
// meets; PublishJSON's input may not.
func (c *checker) pseudonym(field, s string, required bool) {
	switch {
	case s == "":
		if required {
			c.add(field, "is required")
		}
	case !matches(s, 8, 128, pseudonymBytes):
		c.add(field, "must be a pseudonym from a Pseudonymizer: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
}

// The writable range of times: years 0000 to 9999 in UTC.
var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	endTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func (c *checker) timeRange(field string, t *wireTime) {
	if t != nil && (t.Before(minTime) || !t.Before(endTime)) {
		c.add(field, "must be between 0000-01-01 and 9999-12-31 in UTC")
	}
}

func (c *checker) seconds(field string, n int64) {
	if n < 0 || n > maxPolicySeconds {
		c.add(field, "must be between 0 and %d", maxPolicySeconds)
	}
}

// validate checks w against the rules of schema v1 an app can break, with
// now as the clock for the future-time rule.
func (w *wireEvent) validate(now time.Time) error {
	var c checker
	if !matches(w.ID, 1, 64, idBytes) {
		c.add("id", "must be 1-64 characters of A-Z a-z 0-9 _ : . ~ -")
	}
	if w.SchemaVersion != SchemaVersion {
		c.add("schema_version", "must be %d (got %d)", SchemaVersion, w.SchemaVersion)
	}
	if !w.Type.Valid() {
		c.add("type", "must be one of the schema v1 types (got %q)", truncateID(string(w.Type)))
	}
	switch {
	case w.Time.IsZero():
		c.add("time", "is required")
	case w.Time.Sub(now) > MaxFutureSkew:
		c.add("time", "must not be more than %s in the future", MaxFutureSkew)
	default:
		c.timeRange("time", &w.Time)
	}
	if !validApp(w.App) {
		c.add("app", "must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
	c.pseudonym("subject", w.Subject, true)
	c.pseudonym("session", w.Session, w.Type.needsSession())
	c.pseudonym("previous_session", w.PreviousSession, false)
	if w.PreviousSession != "" && w.Type != SessionStarted {
		c.add("previous_session", "is allowed only on session.started")
	}
	c.maxLen("reason", w.Reason, 256)
	c.client(w.Client)
	c.token(w.Token, w.Type.needsToken())
	if a := w.Auth; a != nil {
		c.maxLen("auth.method", a.Method, 64)
		c.timeRange("auth.last_auth_at", a.LastAuthAt)
	}
	if k := w.Cookie; k != nil {
		c.maxLen("cookie.name", k.Name, 128)
		switch k.SameSite {
		case "", SameSiteStrict, SameSiteLax, SameSiteNone:
		default:
			c.add("cookie.same_site", "must be one of strict, lax, none")
		}
	}
	if p := w.Policy; p != nil {
		c.seconds("policy.idle_timeout_s", p.IdleTimeoutS)
		c.seconds("policy.absolute_timeout_s", p.AbsoluteTimeoutS)
		c.seconds("policy.reauth_window_s", p.ReauthWindowS)
	}
	if w.Type == ActionPerformed && (w.Action == nil || w.Action.Name == "") {
		c.add("action.name", "is required on action.performed")
	}
	if a := w.Action; a != nil {
		c.maxLen("action.name", a.Name, 128)
	}
	if w.Type == KeyRetired && (w.Key == nil || w.Key.KID == "") {
		c.add("key.kid", "is required on key.retired")
	}
	if k := w.Key; k != nil {
		c.maxLen("key.kid", k.KID, 128)
	}
	c.attrs(w.Attrs)
	if len(c.errs) > 0 {
		return &ValidationError{Errors: c.errs}
	}
	return nil
}

func (c *checker) client(cl *wireClient) {
	if cl == nil {
		return
	}
	c.pseudonym("client.device", cl.Device, false)
	if cl.IPPrefix != "" {
		// Event's prefixes are cut before this; PublishJSON's may not be.
		p, err := netip.ParsePrefix(cl.IPPrefix)
		if n, ok := networkPrefix(p); err != nil || !ok || n != p || (p.Addr().Is6() && strings.Contains(cl.IPPrefix, ".")) {
			c.add("client.ip_prefix", "must be a network of /24 (IPv4) or /48 (IPv6) or wider with its host bits zero")
		}
	}
	c.pseudonym("client.ip_hash", cl.IPHash, false)
	if cl.Country != "" && (len(cl.Country) != 2 || cl.Country[0] < 'A' || cl.Country[0] > 'Z' || cl.Country[1] < 'A' || cl.Country[1] > 'Z') {
		c.add("client.country", "must be an ISO 3166 alpha-2 code in upper case")
	}
	c.maxLen("client.city", cl.City, 128)
	switch {
	case cl.Lat != nil && cl.Lon == nil:
		c.add("client.lon", "is required when lat is given")
	case cl.Lat == nil && cl.Lon != nil:
		c.add("client.lat", "is required when lon is given")
	}
	if cl.Lat != nil && (math.IsNaN(*cl.Lat) || *cl.Lat < -90 || *cl.Lat > 90) {
		c.add("client.lat", "must be between -90 and 90")
	}
	if cl.Lon != nil && (math.IsNaN(*cl.Lon) || *cl.Lon < -180 || *cl.Lon > 180) {
		c.add("client.lon", "must be between -180 and 180")
	}
	if math.IsNaN(cl.AccuracyKM) || cl.AccuracyKM < 0 || cl.AccuracyKM > maxAccuracyKM {
		c.add("client.accuracy_km", "must be between 0 and %d", maxAccuracyKM)
	}
	c.maxLen("client.user_agent", cl.UserAgent, maxUserAgentChars)
}

func (c *checker) token(t *wireToken, required bool) {
	if t == nil {
		if required {
			c.add("token", "is required on token events")
		}
		return
	}
	c.pseudonym("token.id", t.ID, required)
	switch t.Kind {
	case "", TokenAccess, TokenRefresh, TokenID, TokenAPIKey:
	default:
		c.add("token.kind", "must be one of access, refresh, id, api_key")
	}
	c.pseudonym("token.family", t.Family, false)
	c.pseudonym("token.parent", t.Parent, false)
	c.timeRange("token.issued_at", t.IssuedAt)
	c.timeRange("token.expires_at", t.ExpiresAt)
	c.maxLen("token.kid", t.KID, 128)
	c.maxLen("token.alg", t.Alg, 32)
	if len(t.Claims) > 64 {
		c.add("token.claims", "must have at most 64 claim names")
	}
	for i, name := range t.Claims {
		if !matches(name, 1, 64, claimBytes) {
			c.add(fmt.Sprintf("token.claims[%d]", i), "must be a claim name (1-64 characters of A-Z a-z 0-9 _ : . / -), never a claim value")
		}
	}
}

func (c *checker) attrs(m map[string]string) {
	if len(m) > MaxAttrs {
		c.add("attrs", "must have at most %d keys (got %d)", MaxAttrs, len(m))
	}
	// On the stack unless there are too many keys, which is an error.
	var buf [MaxAttrs]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !matches(k, 1, 64, attrKeyBytes) {
			c.add("attrs."+truncateID(k), "key must be 1-64 characters of A-Z a-z 0-9 _ . -")
			continue
		}
		if n := len(m[k]); n > MaxAttrValueBytes {
			c.add("attrs."+k, "value must be at most %d bytes (got %d)", MaxAttrValueBytes, n)
		}
	}
}

// byteSet marks the bytes a field may hold.
type byteSet [256]bool

// newByteSet returns the set of ASCII letters, digits and the bytes of
// extra.
func newByteSet(extra string) *byteSet {
	var set byteSet
	for c := range set {
		set[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	for i := range len(extra) {
		set[extra[i]] = true
	}
	return &set
}

// The bytes of event IDs, pseudonyms, claim names and attrs keys.
var (
	idBytes        = newByteSet("_:.~-")
	pseudonymBytes = newByteSet("_:~-")
	claimBytes     = newByteSet("_:./-")
	attrKeyBytes   = newByteSet("_.-")
)

// matches reports whether s is min to max bytes, all of set.
func matches(s string, min, max int, set *byteSet) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}
