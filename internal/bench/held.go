package bench

import (
	"net/netip"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/sdk"
)

// heldEvents holds generated events for the benchmark with few pointers:
// every string in one text, the parts of an event by value, pseudonyms
// once each. Held as a million sdk.Events, the benchmark's own workload
// would be millions of objects that the garbage collector of the measured
// process marks in every cycle, a cost no application pays. event rebuilds
// one into a reused sdk.Event, which the SDK copies when it publishes.
type heldEvents struct {
	text       string
	pseudonyms []sdk.Pseudonym // index 0 is the zero pseudonym
	events     []heldEvent
	clients    []heldClient
	tokens     []heldToken
	claims     []span
	attrs      []span // key, value, key, value...
	auths      []heldAuth
	cookies    []heldCookie
	policies   []sdk.Policy
	actions    []heldAction
	kids       []span // of key.retired events
}

// span is a string of heldEvents.text.
type span struct{ start, end uint32 }

// part is an index+1 into one of heldEvents's slices; 0 is none.
type part uint32

type heldEvent struct {
	id, typ, reason                             span
	time                                        int64 // Unix nanoseconds; heldZero for the zero time
	subject, session, previous                  uint32
	client, token, auth, cookie, policy, action part
	key                                         part
	attrsStart, attrsEnd                        uint32
	attrs                                       bool // a map, even if empty
}

type heldClient struct {
	device, ipHash           uint32
	prefix                   heldPrefix
	asn                      uint32
	country, city, userAgent span
	lat, lon                 float64
	hasLat, hasLon           bool
	accuracyKM               float64
}

type heldPrefix struct {
	addr  [16]byte
	bits  int16
	is4   bool
	valid bool
}

type heldToken struct {
	id, family, parent     uint32
	kind, kid, alg         span
	issuedAt, expiresAt    int64
	claimsStart, claimsEnd uint32
	claims                 bool // a slice, even if empty
}

type heldAuth struct {
	method     span
	mfa        tri
	lastAuthAt int64
}

type heldCookie struct {
	name, sameSite   span
	secure, httpOnly tri
}

type heldAction struct {
	name      span
	sensitive bool
}

// tri is a *bool: unset, false or true.
type tri uint8

// heldZero stands for the zero time.Time.
const heldZero = int64(-1 << 63)

// holder builds a heldEvents.
type holder struct {
	h          *heldEvents
	text       strings.Builder
	pseudonyms map[sdk.Pseudonym]uint32
}

// holdEvents holds events; they are not used afterwards.
func holdEvents(events []sdk.Event) *heldEvents {
	b := holder{h: &heldEvents{pseudonyms: []sdk.Pseudonym{{}}}, pseudonyms: map[sdk.Pseudonym]uint32{{}: 0}}
	b.h.events = make([]heldEvent, len(events))
	for i := range events {
		b.h.events[i] = b.event(&events[i])
	}
	b.h.text = b.text.String()
	return b.h
}

func (b *holder) str(s string) span {
	start := uint32(b.text.Len())
	b.text.WriteString(s)
	return span{start, uint32(b.text.Len())}
}

func (b *holder) pseudonym(p sdk.Pseudonym) uint32 {
	i, ok := b.pseudonyms[p]
	if !ok {
		i = uint32(len(b.h.pseudonyms))
		b.h.pseudonyms = append(b.h.pseudonyms, p)
		b.pseudonyms[p] = i
	}
	return i
}

func heldTime(t time.Time) int64 {
	if t.IsZero() {
		return heldZero
	}
	return t.UnixNano()
}

func triOf(p *bool) tri {
	switch {
	case p == nil:
		return 0
	case !*p:
		return 1
	default:
		return 2
	}
}

// add appends v to *s and returns its part.
func add[T any](s *[]T, v T) part {
	*s = append(*s, v)
	return part(len(*s))
}

func (b *holder) event(e *sdk.Event) heldEvent {
	h := heldEvent{
		id: b.str(e.ID), typ: b.str(string(e.Type)), reason: b.str(e.Reason), time: heldTime(e.Time),
		subject: b.pseudonym(e.Subject), session: b.pseudonym(e.Session), previous: b.pseudonym(e.PreviousSession),
	}
	if c := e.Client; c != nil {
		hc := heldClient{
			device: b.pseudonym(c.Device), ipHash: b.pseudonym(c.IPHash), asn: c.ASN,
			country: b.str(c.Country), city: b.str(c.City), userAgent: b.str(c.UserAgent), accuracyKM: c.AccuracyKM,
			prefix: heldPrefix{addr: c.IPPrefix.Addr().As16(), bits: int16(c.IPPrefix.Bits()), is4: c.IPPrefix.Addr().Is4(), valid: c.IPPrefix.IsValid()},
		}
		if c.Lat != nil {
			hc.lat, hc.hasLat = *c.Lat, true
		}
		if c.Lon != nil {
			hc.lon, hc.hasLon = *c.Lon, true
		}
		h.client = add(&b.h.clients, hc)
	}
	if t := e.Token; t != nil {
		ht := heldToken{
			id: b.pseudonym(t.ID), family: b.pseudonym(t.Family), parent: b.pseudonym(t.Parent),
			kind: b.str(t.Kind), kid: b.str(t.KID), alg: b.str(t.Alg),
			issuedAt: heldTime(t.IssuedAt), expiresAt: heldTime(t.ExpiresAt),
			claimsStart: uint32(len(b.h.claims)), claims: t.Claims != nil,
		}
		for _, c := range t.Claims {
			b.h.claims = append(b.h.claims, b.str(c))
		}
		ht.claimsEnd = uint32(len(b.h.claims))
		h.token = add(&b.h.tokens, ht)
	}
	if a := e.Auth; a != nil {
		h.auth = add(&b.h.auths, heldAuth{method: b.str(a.Method), mfa: triOf(a.MFA), lastAuthAt: heldTime(a.LastAuthAt)})
	}
	if c := e.Cookie; c != nil {
		h.cookie = add(&b.h.cookies, heldCookie{name: b.str(c.Name), sameSite: b.str(c.SameSite), secure: triOf(c.Secure), httpOnly: triOf(c.HTTPOnly)})
	}
	if p := e.Policy; p != nil {
		h.policy = add(&b.h.policies, *p)
	}
	if a := e.Action; a != nil {
		h.action = add(&b.h.actions, heldAction{name: b.str(a.Name), sensitive: a.Sensitive})
	}
	if k := e.Key; k != nil {
		h.key = add(&b.h.kids, b.str(k.KID))
	}
	h.attrsStart, h.attrs = uint32(len(b.h.attrs)), e.Attrs != nil
	for k, v := range e.Attrs {
		b.h.attrs = append(b.h.attrs, b.str(k), b.str(v))
	}
	h.attrsEnd = uint32(len(b.h.attrs))
	return h
}

// len returns the number of events held.
func (h *heldEvents) len() int { return len(h.events) }

// rebuilt is the reused event (and parts) heldEvents.event fills.
type rebuilt struct {
	e      sdk.Event
	client sdk.ClientInfo
	token  sdk.Token
	auth   sdk.Auth
	cookie sdk.Cookie
	policy sdk.Policy
	action sdk.Action
	key    sdk.Key
	lat    float64
	lon    float64
	bools  [3]bool // MFA, Secure, HTTPOnly
	claims []string
	attrs  map[string]string
}

func (h *heldEvents) str(s span) string { return h.text[s.start:s.end] }

func timeOf(ns int64) time.Time {
	if ns == heldZero {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// boolOf returns a *bool for t, pointing into dst.
func boolOf(t tri, dst *bool) *bool {
	if t == 0 {
		return nil
	}
	*dst = t == 2
	return dst
}

// event rebuilds event i into r and returns it; it is valid until the
// next call with r.
func (h *heldEvents) event(i int, r *rebuilt) *sdk.Event {
	he := &h.events[i]
	r.e = sdk.Event{
		ID: h.str(he.id), Type: sdk.Type(h.str(he.typ)), Time: timeOf(he.time), Reason: h.str(he.reason),
		Subject: h.pseudonyms[he.subject], Session: h.pseudonyms[he.session], PreviousSession: h.pseudonyms[he.previous],
	}
	if he.client != 0 {
		c := &h.clients[he.client-1]
		r.client = sdk.ClientInfo{
			Device: h.pseudonyms[c.device], IPHash: h.pseudonyms[c.ipHash], ASN: c.asn,
			Country: h.str(c.country), City: h.str(c.city), UserAgent: h.str(c.userAgent), AccuracyKM: c.accuracyKM,
		}
		if c.prefix.valid {
			addr := netip.AddrFrom16(c.prefix.addr)
			if c.prefix.is4 {
				addr = addr.Unmap()
			}
			r.client.IPPrefix = netip.PrefixFrom(addr, int(c.prefix.bits))
		}
		if c.hasLat {
			r.lat = c.lat
			r.client.Lat = &r.lat
		}
		if c.hasLon {
			r.lon = c.lon
			r.client.Lon = &r.lon
		}
		r.e.Client = &r.client
	}
	if he.token != 0 {
		t := &h.tokens[he.token-1]
		r.token = sdk.Token{
			ID: h.pseudonyms[t.id], Family: h.pseudonyms[t.family], Parent: h.pseudonyms[t.parent],
			Kind: h.str(t.kind), KID: h.str(t.kid), Alg: h.str(t.alg),
			IssuedAt: timeOf(t.issuedAt), ExpiresAt: timeOf(t.expiresAt),
		}
		if t.claims {
			r.claims = r.claims[:0]
			for _, c := range h.claims[t.claimsStart:t.claimsEnd] {
				r.claims = append(r.claims, h.str(c))
			}
			r.token.Claims = r.claims
		}
		r.e.Token = &r.token
	}
	if he.auth != 0 {
		a := &h.auths[he.auth-1]
		r.auth = sdk.Auth{Method: h.str(a.method), MFA: boolOf(a.mfa, &r.bools[0]), LastAuthAt: timeOf(a.lastAuthAt)}
		r.e.Auth = &r.auth
	}
	if he.cookie != 0 {
		c := &h.cookies[he.cookie-1]
		r.cookie = sdk.Cookie{Name: h.str(c.name), SameSite: h.str(c.sameSite), Secure: boolOf(c.secure, &r.bools[1]), HTTPOnly: boolOf(c.httpOnly, &r.bools[2])}
		r.e.Cookie = &r.cookie
	}
	if he.policy != 0 {
		r.policy = h.policies[he.policy-1]
		r.e.Policy = &r.policy
	}
	if he.action != 0 {
		a := &h.actions[he.action-1]
		r.action = sdk.Action{Name: h.str(a.name), Sensitive: a.sensitive}
		r.e.Action = &r.action
	}
	if he.key != 0 {
		r.key = sdk.Key{KID: h.str(h.kids[he.key-1])}
		r.e.Key = &r.key
	}
	if he.attrs {
		if r.attrs == nil {
			r.attrs = map[string]string{}
		}
		clear(r.attrs)
		for j := he.attrsStart; j < he.attrsEnd; j += 2 {
			r.attrs[h.str(h.attrs[j])] = h.str(h.attrs[j+1])
		}
		r.e.Attrs = r.attrs
	}
	return &r.e
}
