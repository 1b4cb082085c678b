package demo

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// attacksPerKind is how many instances of each attack the timeline holds.
const attacksPerKind = 2

// attacks adds, for every detector, a few users who trigger it.
func (g *gen) attacks(users int) {
	kinds := []func(sdk.Pseudonym, time.Time){
		g.impossibleTravel, g.refreshReuse, g.concurrentUse, g.afterLogout,
		g.bruteForce, g.credentialStuffing, g.sessionHijack, g.idleTimeout,
		g.absoluteTimeout, g.missingReauth, g.sessionFixation, g.insecureCookie,
		g.longLivedToken, g.piiClaims, g.retiredKey,
	}
	n := users
	for i, attack := range kinds {
		for k := range attacksPerKind {
			n++
			subject := g.p.Subject(fmt.Sprintf("demo-victim-%d@example.com", n))
			// Attacks are spread over the timeline's second sixth to
			// its half, so that they have history before them and
			// their last event (idle timeout: two hours on) is not
			// later than the timeline's end.
			slot := time.Duration(i*attacksPerKind + k)
			at := g.start.Add(g.span/6 + slot*g.span/time.Duration(3*len(kinds)*attacksPerKind))
			attack(subject, at)
		}
	}
}

// impossibleTravel: a login from home, then one from the other side of the
// world 20 minutes later.
func (g *gen) impossibleTravel(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[0], g.raw("device"), at)
	g.work(s, at, 5*time.Minute)
	g.login(subject, cities[6], g.raw("device"), at.Add(20*time.Minute))
}

// refreshReuse: a stolen refresh token is presented again, from another
// device, after the legitimate client already rotated it.
func (g *gen) refreshReuse(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[1], g.raw("device"), at)
	stolen := s.refresh
	g.rotate(s, at.Add(10*time.Minute))
	thief := g.client(cities[8], g.p.Device(g.raw("device")), userAgents[4])
	g.add(sdk.Event{Type: schemas.TokenRefreshed, Time: at.Add(25 * time.Minute), Subject: subject, Session: s.id, Client: thief,
		Token: &sdk.Token{ID: g.p.TokenID(g.raw("refresh")), Kind: schemas.TokenRefresh, Family: s.family, Parent: stolen,
			IssuedAt: at.Add(25 * time.Minute), ExpiresAt: at.Add(14 * 24 * time.Hour), KID: "key-2026-11", Alg: "ES256"}})
}

// concurrentUse: one access token used from two devices at once.
func (g *gen) concurrentUse(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[2], g.raw("device"), at)
	g.work(s, at, 10*time.Minute)
	other := g.client(cities[2], g.p.Device(g.raw("device")), userAgents[3])
	g.add(sdk.Event{Type: schemas.TokenUsed, Time: at.Add(12 * time.Minute), Subject: subject, Session: s.id, Client: other,
		Token: &sdk.Token{ID: s.access, Kind: schemas.TokenAccess, KID: "key-2026-11"}})
}

// afterLogout: the access token is still used after the user logged out.
func (g *gen) afterLogout(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[3], g.raw("device"), at)
	t := g.work(s, at, 5*time.Minute)
	g.logout(s, t.Add(time.Minute))
	g.add(sdk.Event{Type: schemas.TokenUsed, Time: t.Add(9 * time.Minute), Subject: subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: s.access, Kind: schemas.TokenAccess, KID: "key-2026-11"}})
}

// bruteForce: 40 failed logins for one account in four minutes.
func (g *gen) bruteForce(subject sdk.Pseudonym, at time.Time) {
	c := g.client(cities[9], g.p.Device(g.raw("device")), userAgents[4])
	for i := range 40 {
		g.add(sdk.Event{Type: schemas.LoginFailed, Time: at.Add(time.Duration(i) * 6 * time.Second), Subject: subject, Client: c, Reason: "bad_password"})
	}
}

// credentialStuffing: 60 different accounts fail from one network.
func (g *gen) credentialStuffing(_ sdk.Pseudonym, at time.Time) {
	c := g.client(cities[7], g.p.Device(g.raw("device")), userAgents[0])
	for i := range 60 {
		victim := g.p.Subject(g.raw("stuffed") + "@example.net")
		g.add(sdk.Event{Type: schemas.LoginFailed, Time: at.Add(time.Duration(i) * 2 * time.Second), Subject: victim, Client: c, Reason: "unknown_user"})
	}
}

// sessionHijack: the session id shows up on another device in another
// country.
func (g *gen) sessionHijack(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[4], g.raw("device"), at)
	t := g.work(s, at, 10*time.Minute)
	thief := g.client(cities[5], g.p.Device(g.raw("device")), userAgents[4])
	g.add(sdk.Event{Type: schemas.SessionActivity, Time: t.Add(2 * time.Minute), Subject: subject, Session: s.id, Client: thief})
}

// idleTimeout: activity after two idle hours on a 30-minute idle policy.
func (g *gen) idleTimeout(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[0], g.raw("device"), at)
	t := g.work(s, at, 5*time.Minute)
	g.add(sdk.Event{Type: schemas.SessionActivity, Time: t.Add(2 * time.Hour), Subject: subject, Session: s.id, Client: s.client})
}

// absoluteTimeout: a session still active eleven hours after it started on
// an eight-hour policy, never idle long enough to expire.
func (g *gen) absoluteTimeout(subject sdk.Pseudonym, at time.Time) {
	at = at.Add(-11 * time.Hour)
	s := g.login(subject, cities[1], g.raw("device"), at)
	for t := at.Add(20 * time.Minute); t.Before(at.Add(11 * time.Hour)); t = t.Add(20 * time.Minute) {
		g.add(sdk.Event{Type: schemas.SessionActivity, Time: t, Subject: subject, Session: s.id, Client: s.client})
	}
}

// missingReauth: a sensitive action two hours after the last
// authentication, on a five-minute re-authentication window.
func (g *gen) missingReauth(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[2], g.raw("device"), at)
	t := g.work(s, at, 90*time.Minute)
	g.add(sdk.Event{Type: schemas.ActionPerformed, Time: t.Add(time.Minute), Subject: subject, Session: s.id, Client: s.client,
		Auth: &sdk.Auth{LastAuthAt: at}, Action: &sdk.Action{Name: "export_data", Sensitive: true}})
}

// sessionFixation: the app kept the pre-login session id.
func (g *gen) sessionFixation(subject sdk.Pseudonym, at time.Time) {
	c := g.client(cities[3], g.p.Device(g.raw("device")), userAgents[1])
	sid := g.p.Session(g.raw("session"))
	g.add(sdk.Event{Type: schemas.LoginSucceeded, Time: at, Subject: subject, Client: c})
	g.add(sdk.Event{Type: schemas.SessionStarted, Time: at.Add(20 * time.Millisecond), Subject: subject, Session: sid,
		PreviousSession: sid, Client: c, Cookie: secure(), Policy: policy})
}

// insecureCookie: a session cookie without Secure and HttpOnly.
func (g *gen) insecureCookie(subject sdk.Pseudonym, at time.Time) {
	c := g.client(cities[4], g.p.Device(g.raw("device")), userAgents[2])
	f := false
	g.add(sdk.Event{Type: schemas.SessionStarted, Time: at, Subject: subject, Session: g.p.Session(g.raw("session")),
		PreviousSession: g.p.Session(g.raw("anon")), Client: c, Policy: policy,
		Cookie: &sdk.Cookie{Name: "sid", Secure: &f, HTTPOnly: &f, SameSite: sdk.SameSiteNone}})
}

// longLivedToken: an access token valid for thirty days.
func (g *gen) longLivedToken(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[5], g.raw("device"), at)
	g.issue(s, at.Add(time.Minute), g.p.TokenID(g.raw("access")), sdk.Pseudonym{}, 30*24*time.Hour, []string{"sub", "iat", "exp"})
}

// piiClaims: an access token that carries e-mail and name claims.
func (g *gen) piiClaims(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[6], g.raw("device"), at)
	g.issue(s, at.Add(time.Minute), g.p.TokenID(g.raw("access")), sdk.Pseudonym{}, time.Hour, []string{"sub", "email", "name", "phone_number"})
}

// retiredKey: a token signed with a key after that key was retired.
func (g *gen) retiredKey(subject sdk.Pseudonym, at time.Time) {
	s := g.login(subject, cities[7], g.raw("device"), at)
	g.add(sdk.Event{Type: schemas.KeyRetired, Time: at.Add(time.Minute), Subject: g.p.Subject("demo-key-admin"), Key: &sdk.Key{KID: "key-2026-10"}})
	g.add(sdk.Event{Type: schemas.TokenUsed, Time: at.Add(5 * time.Minute), Subject: subject, Session: s.id, Client: s.client,
		Token: &sdk.Token{ID: g.p.TokenID(g.raw("access")), Kind: schemas.TokenAccess, KID: "key-2026-10", Alg: "RS256"}})
}
