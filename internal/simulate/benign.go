package simulate

import (
	"math"
	"time"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/schemas"
)

// app is one simulated application and the session policy it enforces.
type app struct {
	name string
	// idle, absolute and reauth are the policy the app declares on
	// session.started and enforces.
	idle, absolute, reauth time.Duration
	// access is the lifetime of its access tokens.
	access time.Duration
	// refresh: the app keeps long sessions alive with rotating refresh
	// tokens (a chat app), instead of short web sessions.
	refresh bool
	// sensitive is the action that needs a recent authentication ("":
	// none).
	sensitive string
	mfa       bool
}

// The three apps.
var (
	appShop = &app{name: "shop", idle: 30 * time.Minute, absolute: 12 * time.Hour, reauth: 15 * time.Minute,
		access: time.Hour, sensitive: "change_address"}
	appBank = &app{name: "bank", idle: 10 * time.Minute, absolute: time.Hour, reauth: 5 * time.Minute,
		access: 15 * time.Minute, sensitive: "transfer", mfa: true}
	appChat = &app{name: "chat", idle: 24 * time.Hour, absolute: 30 * 24 * time.Hour, reauth: 15 * time.Minute,
		access: 30 * time.Minute, refresh: true}
	apps = []*app{appShop, appBank, appChat}
)

// Refresh tokens live 14 days.
const refreshLifetime = 14 * 24 * time.Hour

// kind is a user's way of connecting.
type kind int

// Populations of the user base.
const (
	// kindHome: a laptop and a phone, both on home broadband.
	kindHome kind = iota
	// kindDual: a laptop on home broadband and a phone on mobile data,
	// used in parallel.
	kindDual
	// kindMobile: a phone on mobile data only.
	kindMobile
	// kindOffice: works behind the office NAT on weekdays.
	kindOffice
	// kindVPN: switches the corporate VPN on and off.
	kindVPN
	// kindTraveller: takes one flight during the simulation.
	kindTraveller
)

// device is a browser or app install.
type device struct {
	id     string
	ua     string
	mobile bool
}

// User agents of people and of attack tools.
var (
	laptopUAs = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	}
	phoneUAs = []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	}
	toolUAs = []string{
		"python-requests/2.32.3", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"curl/8.5.0", "Go-http-client/1.1",
	}
)

// user is one account holder (the same person in every app).
type user struct {
	idx     int
	subject string
	kind    kind
	country int
	home    city
	homeNet *network
	laptop  *device
	phone   *device
	apps    []*app
	// vpnSwitch are the times the VPN is switched, on first; before the
	// first and after an even number of switches it is off.
	vpnSwitch []time.Time
	// A traveller's flight: gone between departs and arrives, then in
	// dest on a hotel network.
	departs, arrives time.Time
	dest             city
	hotel            *network
	// chat holds the live chat session of each device.
	chat map[*device]*session
}

// session is a benign session, kept for the attacks to steal from.
type session struct {
	// u is the owner (nil for an attacker's session), subject the account.
	u       *user
	subject string
	app     *app
	dev     *device
	id      string
	origin  *network
	start   time.Time
	// times of the session's activity events, in order.
	activity []time.Time
	// last is the newest activity; ended is the session's end (zero:
	// still live at the end of the simulation), logout whether the user
	// ended it.
	last, ended time.Time
	logout      bool
	lastAuth    time.Time
	access      *tokenRec
	accesses    []tokenRec
	refresh     *tokenRec
	// rotated are the refresh tokens already rotated, in order.
	rotated []tokenRec
	family  string
	// started is the session.started event.
	started *schemas.Event
	// attacked: an attack already uses the session.
	attacked bool
}

// tokenRec is a token the app issued.
type tokenRec struct {
	id              string
	issued, expires time.Time
	rotatedAt       time.Time
	child           string
}

// population makes the user base.
func (s *sim) population() {
	n := s.cfg.Users
	for i := range n {
		u := &user{idx: i, subject: s.pseudonym(), chat: map[*device]*session{}}
		r := s.rnd.IntN(100)
		for ci, c := range countries {
			if r < c.share {
				u.country = ci
				break
			}
			r -= c.share
		}
		cities := countries[u.country].cities
		ci := s.rnd.IntN(len(cities))
		u.home = cities[ci]
		nets := s.world.broadband[u.country][ci]
		u.homeNet = nets[s.rnd.IntN(len(nets))]
		switch k := s.rnd.IntN(100); {
		case i < 25:
			// The office: 25 employees in Hamburg.
			u.kind, u.country = kindOffice, 0
			u.home = citiesDE[1]
			u.homeNet = s.world.broadband[0][1][s.rnd.IntN(len(s.world.broadband[0][1]))]
		case k < 10:
			u.kind = kindVPN
		case k < 35:
			u.kind = kindMobile
		case k < 65:
			u.kind = kindDual
		case k < 67:
			u.kind = kindTraveller
		default:
			u.kind = kindHome
		}
		if u.kind != kindMobile {
			u.laptop = &device{id: s.pseudonym(), ua: laptopUAs[s.rnd.IntN(len(laptopUAs))]}
		}
		if u.kind != kindOffice || s.chance(0.8) {
			u.phone = &device{id: s.pseudonym(), ua: phoneUAs[s.rnd.IntN(len(phoneUAs))], mobile: true}
		}
		for _, a := range apps {
			if s.chance(0.6) {
				u.apps = append(u.apps, a)
			}
		}
		if len(u.apps) == 0 {
			u.apps = []*app{apps[s.rnd.IntN(len(apps))]}
		}
		if u.kind == kindVPN {
			s.planVPN(u)
		}
		if u.kind == kindTraveller {
			s.planFlight(u)
		}
		s.users = append(s.users, u)
	}
}

// planVPN switches the VPN on and off through the days: on for 20 minutes
// to 4 hours, off for as long.
func (s *sim) planVPN(u *user) {
	t := s.cfg.Start.Add(s.between(6*time.Hour, 10*time.Hour))
	for t.Before(s.end) {
		u.vpnSwitch = append(u.vpnSwitch, t)
		t = t.Add(s.between(20*time.Minute, 4*time.Hour))
	}
}

// planFlight books a flight to another country: at most 800 km/h in the
// air, plus three hours to and from the airports.
func (s *sim) planFlight(u *user) {
	var options []city
	for ci, c := range countries {
		if ci != u.country {
			options = append(options, c.cities[:3]...)
		}
	}
	u.dest = options[s.rnd.IntN(len(options))]
	hotels := s.world.hotels[u.dest.name]
	u.hotel = hotels[s.rnd.IntN(len(hotels))]
	day := s.rnd.IntN(s.cfg.Days)
	local := s.between(6*time.Hour, 15*time.Hour)
	u.departs = s.cfg.Start.Add(time.Duration(day)*24*time.Hour + local - time.Duration(u.home.utc)*time.Hour)
	km := geo.DistanceKM(u.home.lat, u.home.lon, u.dest.lat, u.dest.lon)
	u.arrives = u.departs.Add(time.Duration(km/800*float64(time.Hour)) + 3*time.Hour)
}

// away reports whether u is in the air (or at an airport) at t.
func (u *user) away(t time.Time) bool {
	return u.kind == kindTraveller && !t.Before(u.departs) && t.Before(u.arrives)
}

// netAt is the network u's device d connects from at t.
func (s *sim) netAt(u *user, d *device, t time.Time) *network {
	if u.kind == kindTraveller && !t.Before(u.arrives) {
		return u.hotel
	}
	local := t.Add(time.Duration(u.home.utc) * time.Hour)
	switch {
	case d.mobile && (u.kind == kindMobile || u.kind == kindDual || u.kind == kindVPN ||
		(u.kind == kindOffice && workHours(local))):
		return s.gateway(u, t)
	case u.kind == kindOffice && workHours(local):
		return s.world.office
	case u.kind == kindVPN && !d.mobile && vpnOn(u.vpnSwitch, t):
		return s.world.vpn[mix(uint64(u.idx), uint64(t.Unix()/(8*3600)))%uint64(len(s.world.vpn))]
	}
	return u.homeNet
}

func workHours(local time.Time) bool {
	wd := local.Weekday()
	return wd != time.Saturday && wd != time.Sunday && local.Hour() >= 9 && local.Hour() < 17
}

func vpnOn(switches []time.Time, t time.Time) bool {
	n := 0
	for _, sw := range switches {
		if sw.After(t) {
			break
		}
		n++
	}
	return n%2 == 1
}

// gateway is the carrier gateway u's phone is attached to at t: it moves
// between the carrier's gateways every 20 minutes or so, most often to the
// one nearest home.
func (s *sim) gateway(u *user, t time.Time) *network {
	gws := s.world.carrier[u.country]
	h := mix(uint64(u.idx), uint64(t.Unix()/(20*60)))
	if h%10 < 5 {
		return gws[mix(uint64(u.idx), 1)%uint64(len(gws))]
	}
	return gws[(h/10)%uint64(len(gws))]
}

// mix is splitmix64 over two values: a choice that depends only on its
// inputs, not on the order of generation.
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 + b + 0x632be59bd9b4e5f9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// live generates u's days.
func (s *sim) live(u *user) {
	for day := range s.cfg.Days {
		midnight := s.cfg.Start.Add(time.Duration(day)*24*time.Hour - time.Duration(u.home.utc)*time.Hour)
		for _, a := range u.apps {
			if a.refresh {
				s.chatDay(u, a, midnight)
				continue
			}
			p := 0.55
			if a == appBank {
				p = 0.35
			}
			for range 2 {
				if !s.chance(p) {
					continue
				}
				d := u.laptop
				if d == nil || (u.phone != nil && s.chance(0.3)) {
					d = u.phone
				}
				if d == nil {
					continue
				}
				start := midnight.Add(s.between(7*time.Hour, 23*time.Hour))
				if u.kind == kindTraveller && start.Before(u.arrives) && start.Add(2*time.Hour).After(u.departs) {
					// Flying: log in after landing instead.
					start = u.arrives.Add(s.between(30*time.Minute, 3*time.Hour))
				}
				s.webSession(u, a, d, start)
			}
		}
	}
}

// typoRate is how often a login starts with a mistyped password.
func typoRate(u *user) float64 {
	if u.kind == kindOffice {
		return 0.15
	}
	return 0.05
}

// login signs u in to a on d at t (after mistyped passwords, sometimes)
// and starts a session; it returns the session and the time after.
func (s *sim) login(u *user, a *app, d *device, t time.Time, typos float64) (*session, time.Time) {
	if s.chance(typos) {
		n := 1 + s.rnd.IntN(2)
		for range n {
			s.emit(&schemas.Event{Type: schemas.LoginFailed, App: a.name, Subject: u.subject, Reason: "bad_password",
				Client: s.client(d, s.netAt(u, d, t))}, t)
			t = t.Add(s.between(8*time.Second, 4*time.Minute))
		}
	}
	return s.signIn(u.subject, a, d, s.netAt(u, d, t), t, u)
}

// signIn is a successful login from n and the session it starts.
func (s *sim) signIn(subject string, a *app, d *device, n *network, t time.Time, u *user) (*session, time.Time) {
	sess := &session{u: u, subject: subject, app: a, dev: d, id: s.pseudonym(), origin: n, start: t, lastAuth: t, last: t}
	method := "password"
	if d.mobile && s.chance(0.3) {
		method = "passkey"
	}
	s.emit(&schemas.Event{Type: schemas.LoginSucceeded, App: a.name, Subject: subject, Session: sess.id,
		Client: s.client(d, n), Auth: &schemas.Auth{Method: method, MFA: boolPtr(a.mfa), LastAuthAt: timePtr(t)}}, t)
	t = t.Add(s.between(100*time.Millisecond, 400*time.Millisecond))
	st := &schemas.Event{Type: schemas.SessionStarted, App: a.name, Subject: subject, Session: sess.id,
		PreviousSession: s.pseudonym(), Client: s.client(d, n), Auth: &schemas.Auth{Method: method, LastAuthAt: timePtr(sess.lastAuth)},
		Policy: &schemas.Policy{IdleTimeoutS: int64(a.idle / time.Second), AbsoluteTimeoutS: int64(a.absolute / time.Second),
			ReauthWindowS: int64(a.reauth / time.Second)}}
	if !d.mobile {
		st.Cookie = &schemas.Cookie{Name: "__Host-" + a.name, Secure: boolPtr(true), HTTPOnly: boolPtr(true), SameSite: schemas.SameSiteLax}
	}
	sess.started = s.emit(st, t)
	t = t.Add(s.between(50*time.Millisecond, 300*time.Millisecond))
	s.issueAccess(sess, n, t)
	if a.refresh {
		sess.family = s.pseudonym()
		rt := tokenRec{id: s.pseudonym(), issued: t, expires: t.Add(refreshLifetime)}
		sess.refresh = &rt
		s.emit(&schemas.Event{Type: schemas.TokenIssued, App: a.name, Subject: subject, Session: sess.id, Client: s.client(d, n),
			Token: &schemas.Token{ID: rt.id, Kind: schemas.TokenRefresh, Family: sess.family, IssuedAt: timePtr(t), ExpiresAt: timePtr(rt.expires)}}, t)
	}
	if s.cur == nil {
		s.sessions = append(s.sessions, sess)
	}
	return sess, t.Add(s.between(2*time.Second, 30*time.Second))
}

// issueAccess issues a new access token in sess.
func (s *sim) issueAccess(sess *session, n *network, t time.Time) {
	tok := tokenRec{id: s.pseudonym(), issued: t, expires: t.Add(sess.app.access)}
	sess.access = &tok
	sess.accesses = append(sess.accesses, tok)
	s.emit(&schemas.Event{Type: schemas.TokenIssued, App: sess.app.name, Subject: s.subjectOf(sess), Session: sess.id, Client: s.client(sess.dev, n),
		Token: &schemas.Token{ID: tok.id, Kind: schemas.TokenAccess, IssuedAt: timePtr(t), ExpiresAt: timePtr(tok.expires),
			KID: "sim-2026-11", Alg: "ES256", Claims: []string{"sub", "sid", "exp", "iat", "scope"}}}, t)
}

func (s *sim) subjectOf(sess *session) string { return sess.subject }

// act is one request of the session's owner at t: a page view, an API
// call with the access token, or an action.
func (s *sim) act(sess *session, t time.Time) {
	a, d := sess.app, sess.dev
	n := s.sessNet(sess, t)
	if !t.Before(sess.access.expires.Add(-time.Minute)) {
		if a.refresh {
			s.rotate(sess, n, t)
		} else {
			s.issueAccess(sess, n, t)
		}
		t = t.Add(s.between(200*time.Millisecond, 2*time.Second))
	}
	switch r := s.rnd.IntN(10); {
	case r < 4:
		s.emit(&schemas.Event{Type: schemas.SessionActivity, App: a.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n)}, t)
	case r < 9 || a.sensitive == "":
		s.emit(&schemas.Event{Type: schemas.TokenUsed, App: a.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n),
			Token: &schemas.Token{ID: sess.access.id, Kind: schemas.TokenAccess, ExpiresAt: timePtr(sess.access.expires)}}, t)
	default:
		if t.Sub(sess.lastAuth) > a.reauth-30*time.Second {
			s.emit(&schemas.Event{Type: schemas.ReauthSucceeded, App: a.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n),
				Auth: &schemas.Auth{Method: "password", MFA: boolPtr(a.mfa), LastAuthAt: timePtr(t)}}, t)
			sess.lastAuth = t
			t = t.Add(s.between(5*time.Second, 40*time.Second))
		}
		s.emit(&schemas.Event{Type: schemas.ActionPerformed, App: a.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n),
			Action: &schemas.Action{Name: a.sensitive, Sensitive: true}, Auth: &schemas.Auth{LastAuthAt: timePtr(sess.lastAuth)}}, t)
	}
	sess.activity = append(sess.activity, t)
	sess.last = t
}

// sessNet is the network sess's device uses at t: its owner's, or an
// attacker's one network.
func (s *sim) sessNet(sess *session, t time.Time) *network {
	if sess.u == nil {
		return sess.origin
	}
	return s.netAt(sess.u, sess.dev, t)
}

// rotate refreshes sess's tokens: the client presents its refresh token
// and gets a new one and a new access token. Now and then the answer is
// lost to a network error and the client retries with the same refresh
// token 5 to 15 seconds later.
func (s *sim) rotate(sess *session, n *network, t time.Time) {
	old := *sess.refresh
	present := func(at time.Time) tokenRec {
		rt := tokenRec{id: s.pseudonym(), issued: at, expires: at.Add(refreshLifetime)}
		s.emit(&schemas.Event{Type: schemas.TokenRefreshed, App: sess.app.name, Subject: sess.subject, Session: sess.id,
			Client: s.client(sess.dev, s.sessNet(sess, at)),
			Token: &schemas.Token{ID: rt.id, Kind: schemas.TokenRefresh, Family: sess.family, Parent: old.id,
				IssuedAt: timePtr(at), ExpiresAt: timePtr(rt.expires)}}, at)
		return rt
	}
	rt := present(t)
	if s.chance(0.04) {
		t = t.Add(s.between(5*time.Second, 15*time.Second))
		rt = present(t)
	}
	old.rotatedAt, old.child = t, rt.id
	sess.rotated = append(sess.rotated, old)
	sess.refresh = &rt
	s.issueAccess(sess, n, t.Add(s.between(50*time.Millisecond, 300*time.Millisecond)))
}

// closeSession ends sess at t: a logout (the user's, with the access token
// revoked) or the app expiring it after the idle timeout, without a
// request.
func (s *sim) closeSession(sess *session, t time.Time, logout bool) {
	a := sess.app
	if logout {
		n := s.sessNet(sess, t)
		s.emit(&schemas.Event{Type: schemas.SessionEnded, App: a.name, Subject: sess.subject, Session: sess.id, Reason: "logout",
			Client: s.client(sess.dev, n)}, t)
		s.emit(&schemas.Event{Type: schemas.TokenRevoked, App: a.name, Subject: sess.subject, Session: sess.id, Client: s.client(sess.dev, n),
			Token: &schemas.Token{ID: sess.access.id, Kind: schemas.TokenAccess}}, t.Add(s.between(20*time.Millisecond, 200*time.Millisecond)))
		if sess.refresh != nil {
			s.emit(&schemas.Event{Type: schemas.TokenRevoked, App: a.name, Subject: sess.subject, Session: sess.id, Client: s.client(sess.dev, n),
				Token: &schemas.Token{ID: sess.refresh.id, Kind: schemas.TokenRefresh, Family: sess.family}}, t.Add(s.between(20*time.Millisecond, 200*time.Millisecond)))
		}
	} else {
		t = sess.last.Add(a.idle)
		s.emit(&schemas.Event{Type: schemas.SessionEnded, App: a.name, Subject: sess.subject, Session: sess.id, Reason: "idle_timeout"}, t)
	}
	sess.ended, sess.logout = t, logout
}

// webSession is a visit to a web app: log in, a few minutes of requests,
// then a logout or the idle timeout.
func (s *sim) webSession(u *user, a *app, d *device, t time.Time) {
	if u.away(t) {
		return
	}
	sess, t := s.login(u, a, d, t, typoRate(u))
	length := s.between(2*time.Minute, 50*time.Minute)
	maxGap := 8 * time.Minute
	if a == appBank {
		length, maxGap = s.between(time.Minute, 25*time.Minute), 4*time.Minute
	}
	stop := t.Add(length)
	for t.Before(stop) && !u.away(t) {
		s.act(sess, t)
		t = sess.last.Add(s.between(10*time.Second, maxGap))
	}
	if s.chance(0.6) {
		s.closeSession(sess, sess.last.Add(s.between(5*time.Second, 2*time.Minute)), true)
	} else {
		s.closeSession(sess, sess.last, false)
	}
}

// chatDay is a day of a chat app: a few bursts of messages on each device
// the user has, in one long session kept alive with refresh tokens.
func (s *sim) chatDay(u *user, a *app, midnight time.Time) {
	for _, d := range []*device{u.phone, u.laptop} {
		if d == nil || (!d.mobile && s.chance(0.5)) {
			continue
		}
		bursts := 2 + s.rnd.IntN(6)
		var times []time.Duration
		for range bursts {
			times = append(times, s.between(7*time.Hour, 23*time.Hour))
		}
		sortDurations(times)
		for _, off := range times {
			t := midnight.Add(off)
			if u.away(t) {
				continue
			}
			sess := u.chat[d]
			if sess != nil && sess.ended.IsZero() && t.Sub(sess.last) >= a.idle {
				s.closeSession(sess, sess.last, false)
			}
			if sess == nil || !sess.ended.IsZero() {
				sess, t = s.login(u, a, d, t, typoRate(u))
				u.chat[d] = sess
			}
			if !t.After(sess.last) {
				t = sess.last.Add(time.Second)
			}
			stop := t.Add(s.between(30*time.Second, 15*time.Minute))
			for t.Before(stop) {
				s.act(sess, t)
				t = sess.last.Add(s.between(5*time.Second, 3*time.Minute))
			}
			if s.chance(0.02) {
				s.closeSession(sess, sess.last.Add(s.between(5*time.Second, time.Minute)), true)
			}
		}
	}
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

// speedKMH is the speed the detectors would measure between two networks
// seen dt apart: the distance less both accuracy radii (at least minAcc
// each), over dt (at least a second).
func speedKMH(a, b *network, dt time.Duration, minAcc float64) float64 {
	moved := geo.DistanceKM(*a.facts.Lat, *a.facts.Lon, *b.facts.Lat, *b.facts.Lon) -
		math.Max(a.facts.AccuracyKM, minAcc) - math.Max(b.facts.AccuracyKM, minAcc)
	if moved <= 0 {
		return 0
	}
	return moved / math.Max(dt.Hours(), 1.0/3600)
}
