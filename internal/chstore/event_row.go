package chstore

import (
	"math"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Tri-state values of the Int8 columns auth_mfa, cookie_secure and
// cookie_http_only.
const (
	TriUnknown int8 = -1
	TriFalse   int8 = 0
	TriTrue    int8 = 1
)

// Values of EventRow.GeoSource (schemas.GeoSource).
const (
	GeoSourceNone  = string(schemas.GeoSourceNone)
	GeoSourceApp   = string(schemas.GeoSourceApp)   // the app sent the location
	GeoSourceGeoIP = string(schemas.GeoSourceGeoIP) // sessionmon looked the network up
)

// EventRow is one row of the events table. Times are UTC; *MS fields are Unix
// milliseconds with 0 meaning unknown. The raw user agent is never part of a
// row: the ingest pipeline parses it into the UA* fields.
type EventRow struct {
	ID              string
	Type            string
	Time            time.Time // whole seconds (DateTime); TimeMS keeps the milliseconds
	TimeMS          int64
	App             string
	Subject         string
	Session         string
	PreviousSession string
	Reason          string

	ClientDevice     string
	ClientIPPrefix   string
	ClientIPHash     string
	ClientASN        uint32
	ClientCountry    string
	ClientCity       string
	HasGeo           bool
	ClientLat        float64
	ClientLon        float64
	ClientAccuracyKM float32
	GeoSource        string // GeoSourceNone, GeoSourceApp or GeoSourceGeoIP
	ClientASOrg      string
	ClientAnonymity  []string // schemas.Anonymity.Names
	UABrowser        string
	UAOS             string
	UADevice         string

	TokenID          string
	TokenKind        string
	TokenFamily      string
	TokenParent      string
	TokenIssuedAtMS  int64
	TokenExpiresAtMS int64
	TokenKID         string
	TokenAlg         string
	TokenClaims      []string

	AuthMethod       string
	AuthMFA          int8 // TriUnknown, TriFalse or TriTrue
	AuthLastAuthAtMS int64

	CookieName     string
	CookieSecure   int8 // TriUnknown, TriFalse or TriTrue
	CookieHTTPOnly int8 // TriUnknown, TriFalse or TriTrue
	CookieSameSite string

	PolicyIdleTimeoutS     uint32
	PolicyAbsoluteTimeoutS uint32
	PolicyReauthWindowS    uint32

	ActionName      string
	ActionSensitive bool
	KeyKID          string

	AttrsKeys   []string // sorted
	AttrsValues []string // AttrsValues[i] belongs to AttrsKeys[i]

	IngestedAt time.Time // whole seconds (DateTime)
}

// NewEventRow maps a validated schema event to a row. It copies everything
// the event holds except the raw user agent, enrichment included (the ingest
// pipeline runs geo.Resolver.Enrich first and fills UA* from the user
// agent). A located client sets HasGeo, and GeoSourceApp when it was not
// enriched. Attrs are stored sorted by key so that equal events give equal
// rows.
func NewEventRow(e *schemas.Event, ingestedAt time.Time) EventRow {
	r := EventRow{
		ID:              e.ID,
		Type:            string(e.Type),
		Time:            dateTime(e.Time.Time),
		TimeMS:          e.Time.UnixMilli(),
		App:             e.App,
		Subject:         e.Subject,
		Session:         e.Session,
		PreviousSession: e.PreviousSession,
		Reason:          e.Reason,
		AuthMFA:         TriUnknown,
		CookieSecure:    TriUnknown,
		CookieHTTPOnly:  TriUnknown,
		IngestedAt:      dateTime(ingestedAt),
	}
	if c := e.Client; c != nil {
		r.ClientDevice = c.Device
		r.ClientIPPrefix = c.IPPrefix
		r.ClientIPHash = c.IPHash
		r.ClientASN = c.ASN
		r.ClientCountry = c.Country
		r.ClientCity = c.City
		r.ClientAccuracyKM = float32(c.AccuracyKM)
		r.GeoSource = string(c.GeoSource)
		r.ClientASOrg = c.ASOrg
		r.ClientAnonymity = c.Anonymity.Names()
		if c.HasGeo() {
			r.HasGeo = true
			r.ClientLat = *c.Lat
			r.ClientLon = *c.Lon
			if r.GeoSource == GeoSourceNone {
				r.GeoSource = GeoSourceApp
			}
		}
	}
	if t := e.Token; t != nil {
		r.TokenID = t.ID
		r.TokenKind = t.Kind
		r.TokenFamily = t.Family
		r.TokenParent = t.Parent
		r.TokenIssuedAtMS = unixMilli(t.IssuedAt)
		r.TokenExpiresAtMS = unixMilli(t.ExpiresAt)
		r.TokenKID = t.KID
		r.TokenAlg = t.Alg
		r.TokenClaims = slices.Clone(t.Claims)
	}
	if a := e.Auth; a != nil {
		r.AuthMethod = a.Method
		r.AuthMFA = tri(a.MFA)
		r.AuthLastAuthAtMS = unixMilli(a.LastAuthAt)
	}
	if c := e.Cookie; c != nil {
		r.CookieName = c.Name
		r.CookieSecure = tri(c.Secure)
		r.CookieHTTPOnly = tri(c.HTTPOnly)
		r.CookieSameSite = c.SameSite
	}
	if p := e.Policy; p != nil {
		r.PolicyIdleTimeoutS = seconds(p.IdleTimeoutS)
		r.PolicyAbsoluteTimeoutS = seconds(p.AbsoluteTimeoutS)
		r.PolicyReauthWindowS = seconds(p.ReauthWindowS)
	}
	if a := e.Action; a != nil {
		r.ActionName = a.Name
		r.ActionSensitive = a.Sensitive
	}
	if k := e.Key; k != nil {
		r.KeyKID = k.KID
	}
	if len(e.Attrs) > 0 {
		r.AttrsKeys = make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			r.AttrsKeys = append(r.AttrsKeys, k)
		}
		slices.Sort(r.AttrsKeys)
		r.AttrsValues = make([]string, len(r.AttrsKeys))
		for i, k := range r.AttrsKeys {
			r.AttrsValues[i] = e.Attrs[k]
		}
	}
	return r
}

// Attrs returns the attributes as a map, or nil when there are none.
func (r *EventRow) Attrs() map[string]string {
	if len(r.AttrsKeys) == 0 {
		return nil
	}
	m := make(map[string]string, len(r.AttrsKeys))
	for i, k := range r.AttrsKeys {
		if i < len(r.AttrsValues) {
			m[k] = r.AttrsValues[i]
		}
	}
	return m
}

// dateTime truncates t to what a DateTime column holds: whole seconds in
// UTC, clamped to the column's range (1970 to 2106).
func dateTime(t time.Time) time.Time {
	sec := t.Unix()
	switch {
	case sec < 0:
		sec = 0
	case sec > math.MaxUint32:
		sec = math.MaxUint32
	}
	return time.Unix(sec, 0).UTC()
}

func unixMilli(t *schemas.Time) int64 {
	if t == nil || t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func tri(b *bool) int8 {
	switch {
	case b == nil:
		return TriUnknown
	case *b:
		return TriTrue
	}
	return TriFalse
}

// seconds clamps a declared policy duration into the UInt32 column; schema v1
// already bounds it to ten years.
func seconds(s int64) uint32 {
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// nilEmptyArrays makes the empty arrays of a scanned row nil: they scan as
// empty slices, and NewEventRow leaves them nil.
func (r *EventRow) nilEmptyArrays() {
	if len(r.TokenClaims) == 0 {
		r.TokenClaims = nil
	}
	if len(r.AttrsKeys) == 0 {
		r.AttrsKeys, r.AttrsValues = nil, nil
	}
	if len(r.ClientAnonymity) == 0 {
		r.ClientAnonymity = nil
	}
}
