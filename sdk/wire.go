package sdk

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// wireEvent is an event as schema v1 writes it in JSON. Its field names are
// those of event.v1.schema.json; sessionmon's tests check that every name
// the SDK can write is one the schema knows and that every event the SDK
// writes passes sessionmon's strict decoder.
type wireEvent struct {
	ID              string            `json:"id"`
	SchemaVersion   int               `json:"schema_version"`
	Type            Type              `json:"type"`
	Time            wireTime          `json:"time"`
	App             string            `json:"app"`
	Subject         string            `json:"subject"`
	Session         string            `json:"session,omitempty"`
	PreviousSession string            `json:"previous_session,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	Client          *wireClient       `json:"client,omitempty"`
	Token           *wireToken        `json:"token,omitempty"`
	Auth            *wireAuth         `json:"auth,omitempty"`
	Cookie          *wireCookie       `json:"cookie,omitempty"`
	Policy          *wirePolicy       `json:"policy,omitempty"`
	Action          *wireAction       `json:"action,omitempty"`
	Key             *wireKey          `json:"key,omitempty"`
	Attrs           map[string]string `json:"attrs,omitempty"`
}

type wireClient struct {
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
}

type wireToken struct {
	ID        string    `json:"id,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	Family    string    `json:"family,omitempty"`
	Parent    string    `json:"parent,omitempty"`
	IssuedAt  *wireTime `json:"issued_at,omitempty"`
	ExpiresAt *wireTime `json:"expires_at,omitempty"`
	KID       string    `json:"kid,omitempty"`
	Alg       string    `json:"alg,omitempty"`
	Claims    []string  `json:"claims,omitempty"`
}

type wireAuth struct {
	Method     string    `json:"method,omitempty"`
	MFA        *bool     `json:"mfa,omitempty"`
	LastAuthAt *wireTime `json:"last_auth_at,omitempty"`
}

type wireCookie struct {
	Name     string `json:"name,omitempty"`
	Secure   *bool  `json:"secure,omitempty"`
	HTTPOnly *bool  `json:"http_only,omitempty"`
	SameSite string `json:"same_site,omitempty"`
}

type wirePolicy struct {
	IdleTimeoutS     int64 `json:"idle_timeout_s,omitempty"`
	AbsoluteTimeoutS int64 `json:"absolute_timeout_s,omitempty"`
	ReauthWindowS    int64 `json:"reauth_window_s,omitempty"`
}

type wireAction struct {
	Name      string `json:"name,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

type wireKey struct {
	KID string `json:"kid,omitempty"`
}

// wireTime is an RFC 3339 time written in UTC with millisecond precision,
// or nanosecond precision when it has sub-millisecond digits.
type wireTime struct{ time.Time }

// MarshalJSON writes t as schema v1 wants it.
func (t wireTime) MarshalJSON() ([]byte, error) {
	u := t.UTC()
	layout := "2006-01-02T15:04:05.000Z07:00"
	if u.Nanosecond()%int(time.Millisecond) != 0 {
		layout = "2006-01-02T15:04:05.000000000Z07:00"
	}
	b := make([]byte, 0, len(layout)+2)
	b = append(b, '"')
	b = u.AppendFormat(b, layout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *wireTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

func wireTimeOf(t time.Time) *wireTime {
	if t.IsZero() {
		return nil
	}
	return &wireTime{t}
}

// MarshalJSONFor returns the schema v1 JSON of e as the Client of app
// would publish it, after the same checks: it fills a new ID when e.ID is
// empty and the current time when e.Time is zero, writes times in UTC, cuts
// IP prefixes to /24 (IPv4) or /48 (IPv6) with host bits zeroed, and fails
// with a *ValidationError naming every broken field. It does not modify e.
func (e *Event) MarshalJSONFor(app string) ([]byte, error) {
	if e == nil {
		return nil, ErrNilEvent
	}
	_, _, data, err := e.encodeWire(app, time.Now())
	return data, err
}

// wireParts holds a wireEvent and every part it may point to.
type wireParts struct {
	event  wireEvent
	client wireClient
	token  wireToken
	auth   wireAuth
	cookie wireCookie
	policy wirePolicy
	action wireAction
	key    wireKey
}

// wirePool recycles the parts of events the Client has encoded: an
// event's wire form lives only until its JSON is written.
var wirePool = sync.Pool{New: func() any { return new(wireParts) }}

// wire returns the wire form of e for app, copying what it reads.
func (e *Event) wire(app string) *wireEvent { return e.wireInto(new(wireParts), app) }

// encodeWire validates e and writes its wire form for app as JSON (see
// wireEvent.encode) with pooled parts, and returns its id and subject too.
func (e *Event) encodeWire(app string, now time.Time) (id, subject string, data []byte, err error) {
	parts := wirePool.Get().(*wireParts)
	w := e.wireInto(parts, app)
	id, subject = w.ID, w.Subject
	data, err = w.encode(now)
	*parts = wireParts{} // drop the references to e's strings and maps
	wirePool.Put(parts)
	return id, subject, data, err
}

// wireInto fills parts with the wire form of e for app and returns it.
func (e *Event) wireInto(parts *wireParts, app string) *wireEvent {
	id := e.ID
	if id == "" {
		id = NewEventID()
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	w := &parts.event
	*w = wireEvent{
		ID:              id,
		SchemaVersion:   SchemaVersion,
		Type:            e.Type,
		Time:            wireTime{at},
		App:             app,
		Subject:         e.Subject.String(),
		Session:         e.Session.String(),
		PreviousSession: e.PreviousSession.String(),
		Reason:          e.Reason,
		Attrs:           e.Attrs,
	}
	if c := e.Client; c != nil {
		w.Client = &parts.client
		*w.Client = wireClient{
			Device: c.Device.String(), IPHash: c.IPHash.String(),
			ASN: c.ASN, Country: c.Country, City: c.City,
			Lat: c.Lat, Lon: c.Lon, AccuracyKM: c.AccuracyKM,
			UserAgent: c.UserAgent,
		}
		if p, ok := networkPrefix(c.IPPrefix); ok {
			w.Client.IPPrefix = p.String()
		}
	}
	if t := e.Token; t != nil {
		w.Token = &parts.token
		*w.Token = wireToken{
			ID: t.ID.String(), Kind: t.Kind, Family: t.Family.String(), Parent: t.Parent.String(),
			IssuedAt: wireTimeOf(t.IssuedAt), ExpiresAt: wireTimeOf(t.ExpiresAt),
			KID: t.KID, Alg: t.Alg, Claims: slices.Clone(t.Claims),
		}
	}
	if a := e.Auth; a != nil {
		w.Auth = &parts.auth
		*w.Auth = wireAuth{Method: a.Method, MFA: a.MFA, LastAuthAt: wireTimeOf(a.LastAuthAt)}
	}
	if c := e.Cookie; c != nil {
		w.Cookie = &parts.cookie
		*w.Cookie = wireCookie{Name: c.Name, Secure: c.Secure, HTTPOnly: c.HTTPOnly, SameSite: c.SameSite}
	}
	if p := e.Policy; p != nil {
		w.Policy = &parts.policy
		*w.Policy = wirePolicy{IdleTimeoutS: p.IdleTimeoutS, AbsoluteTimeoutS: p.AbsoluteTimeoutS, ReauthWindowS: p.ReauthWindowS}
	}
	if a := e.Action; a != nil {
		w.Action = &parts.action
		*w.Action = wireAction{Name: a.Name, Sensitive: a.Sensitive}
	}
	if k := e.Key; k != nil {
		w.Key = &parts.key
		*w.Key = wireKey{KID: k.KID}
	}
	return w
}

// encode validates w and writes it as compact JSON, without HTML escaping
// (which would make '<', '>' and '&' six bytes each).
func (w *wireEvent) encode(now time.Time) ([]byte, error) {
	if err := w.validate(now); err != nil {
		return nil, err
	}
	data := w.appendJSON(make([]byte, 0, w.sizeHint()))
	if len(data) > MaxEventBytes {
		return nil, &ValidationError{Errors: []*FieldError{{
			Field: "(event)",
			Rule:  fmt.Sprintf("must be at most %d bytes encoded (got %d)", MaxEventBytes, len(data)),
		}}}
	}
	return data, nil
}
