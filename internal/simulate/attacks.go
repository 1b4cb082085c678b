package simulate

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Detector names the labels use.
const (
	detImpossibleTravel   = "impossible_travel"
	detSessionHijack      = "session_hijack"
	detTokenReuse         = "token_reuse"
	detBruteForce         = "brute_force"
	detCredentialStuffing = "credential_stuffing"
	detSessionFixation    = "session_fixation"
	detMissingReauth      = "missing_reauth"
)

// Kinds lists the attack kinds (Label.Kind, before any parenthesis) a
// simulation of at least two days holds.
var Kinds = []string{
	kindStolenPassword, kindHijackAbroad, kindHijackNearby, kindHijackCloud,
	kindRefreshReuse, kindAccessAfterLogout, kindRefreshAfterLogout,
	kindBruteSlow, kindBruteBurst, kindStuffingDistributed, kindStuffingBurst,
	kindFixation, kindNoReauth,
}

// Attack kinds.
const (
	kindStolenPassword      = "stolen password used from another continent while the owner is active"
	kindHijackAbroad        = "session cookie replayed from a hosting network on another continent"
	kindHijackNearby        = "session cookie replayed from another device on another ISP in the same city"
	kindHijackCloud         = "session cookie replayed from a cloud server in the owner's country"
	kindRefreshReuse        = "stolen refresh token presented after the owner rotated it"
	kindAccessAfterLogout   = "stolen access token used after logout, within its lifetime"
	kindRefreshAfterLogout  = "stolen refresh token presented a day after logout"
	kindBruteSlow           = "slow brute force: one attempt every 3-10 minutes for hours"
	kindBruteBurst          = "burst brute force: dozens of attempts within minutes"
	kindStuffingDistributed = "distributed credential stuffing over many networks of hosting ASNs"
	kindStuffingBurst       = "credential stuffing burst from one network"
	kindFixation            = "app kept the pre-login session id at login"
	kindNoReauth            = "app allowed a sensitive action without re-authentication"
)

// attack collects the events of one attack while it is generated.
type attack struct {
	kind   string
	app    string
	events []*schemas.Event
	// victims are the accounts attacked.
	victims []string
	// sources are the attacker's networks.
	sources map[string]*network
	labels  []Label
	// byOwner: the events are the owner's own (an app's policy
	// violation), not an attacker's.
	byOwner bool
}

// begin starts generating an attack: emit records its events.
func (s *sim) begin(kind, app string) *attack {
	s.cur = &attack{kind: kind, app: app, sources: map[string]*network{}}
	return s.cur
}

// finish labels the current attack for detectors, from its events.
func (s *sim) finish(detectors ...string) {
	a := s.cur
	s.cur = nil
	if len(a.events) == 0 {
		return
	}
	from, to := a.events[0].Time.Time, a.events[0].Time.Time
	for _, e := range a.events {
		from, to = minTime(from, e.Time.Time), maxTime(to, e.Time.Time)
	}
	var asns []uint32
	for _, n := range a.sources {
		if !slices.Contains(asns, n.facts.ASN) {
			asns = append(asns, n.facts.ASN)
		}
	}
	slices.Sort(asns)
	for _, d := range detectors {
		a.labels = append(a.labels, Label{
			Detector: d, App: a.app, Subjects: slices.Clone(a.victims), Sources: slices.Sorted(maps.Keys(a.sources)),
			ASNs: asns, From: from, To: to, Kind: a.kind,
		})
	}
	s.done = append(s.done, a)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// attackerDevice is a device of the attacker's: a tool or a browser.
func (s *sim) attackerDevice() *device {
	return &device{id: s.pseudonym(), ua: toolUAs[s.rnd.IntN(len(toolUAs))]}
}

// use records n as a source of the current attack.
func (s *sim) use(n *network) *network {
	s.cur.sources[n.prefix] = n
	return n
}

// abroad is a hosting network on another continent than the users.
func (s *sim) abroad() *network {
	nets := s.world.hosting[s.rnd.IntN(len(s.world.hosting))]
	return nets[s.rnd.IntN(len(nets))]
}

// pickSession returns a random benign session that ok accepts, or nil.
func (s *sim) pickSession(ok func(*session) bool) *session {
	for range 20000 {
		sess := s.sessions[s.rnd.IntN(len(s.sessions))]
		if ok(sess) && !sess.attacked {
			sess.attacked = true
			return sess
		}
	}
	return nil
}

// inside reports whether t is within the simulation, leaving margin
// before its end.
func (s *sim) inside(t time.Time, margin time.Duration) bool {
	return t.After(s.cfg.Start) && t.Add(margin).Before(s.end)
}

// attacks mixes the attacks into the traffic.
func (s *sim) attacks() {
	for range 10 {
		s.stolenPassword()
	}
	for i := range 13 {
		s.hijack(i % 3)
	}
	for range 5 {
		s.refreshReuse()
	}
	for range 4 {
		s.accessAfterLogout()
	}
	for range 4 {
		s.refreshAfterLogout()
	}
	for range 6 {
		s.bruteForce(true)
	}
	for range 4 {
		s.bruteForce(false)
	}
	for range 3 {
		s.stuffing(true)
	}
	for range 3 {
		s.stuffing(false)
	}
	for range 3 {
		s.fixation()
	}
	for range 3 {
		s.noReauth()
	}
}

// ownerActiveAt picks a time during one of sess's owner's activity.
func (s *sim) ownerActiveAt(sess *session) time.Time {
	return sess.activity[s.rnd.IntN(len(sess.activity))]
}

// stolenPassword: the owner is active at home; meanwhile someone on
// another continent logs in with the owner's password on their own device
// and looks around.
func (s *sim) stolenPassword() {
	sess := s.pickSession(func(x *session) bool {
		return x.u.kind != kindTraveller && !x.app.refresh && len(x.activity) > 2 && s.inside(x.start, 2*time.Hour)
	})
	if sess == nil {
		return
	}
	s.begin(kindStolenPassword, sess.app.name).victims = []string{sess.subject}
	t := s.ownerActiveAt(sess).Add(s.between(5*time.Minute, 40*time.Minute))
	n, d := s.use(s.abroad()), &device{id: s.pseudonym(), ua: laptopUAs[s.rnd.IntN(len(laptopUAs))]}
	thief, t := s.signIn(sess.subject, sess.app, d, n, t, nil)
	for range 2 + s.rnd.IntN(6) {
		s.act(thief, t)
		t = thief.last.Add(s.between(10*time.Second, 2*time.Minute))
	}
	s.finish(detImpossibleTravel)
}

// hijack: the owner's session cookie, taken by malware, is replayed from
// the attacker's machine in the middle of the owner's session: from a
// hosting network abroad (where 0), another ISP in the owner's city (1)
// or a cloud server in the owner's country (2).
func (s *sim) hijack(where int) {
	sess := s.pickSession(func(x *session) bool {
		return !x.app.refresh && len(x.activity) >= 5 && x.u.kind != kindTraveller && x.u.kind != kindVPN && s.inside(x.start, time.Hour)
	})
	if sess == nil {
		return
	}
	kind := kindHijackAbroad
	var n *network
	switch where {
	case 0:
		n = s.abroad()
	case 1:
		kind = kindHijackNearby
		nets := s.world.otherISP[sess.u.country]
		n = nets[s.rnd.IntN(len(nets))]
		if sess.origin.city.name != n.city.name {
			// Next door: the thief's ISP in the owner's city.
			n = s.world.alloc.add(s.world.alloc.take(), sess.origin.city, 25, n.facts.ASN, n.facts.ASOrg)
		}
	default:
		kind = kindHijackCloud
		nets := s.world.hostingLocal[sess.u.country]
		n = nets[s.rnd.IntN(len(nets))]
	}
	s.begin(kind, sess.app.name).victims = []string{sess.subject}
	s.use(n)
	i := 1 + s.rnd.IntN(len(sess.activity)-3)
	t := sess.activity[i].Add(s.between(time.Second, 20*time.Second))
	thief := &session{subject: sess.subject, app: sess.app, dev: &device{id: s.pseudonym(), ua: sess.dev.ua}, id: sess.id, origin: n,
		access: sess.access, lastAuth: sess.lastAuth}
	for range 2 + s.rnd.IntN(4) {
		if s.chance(0.6) {
			s.emit(&schemas.Event{Type: schemas.SessionActivity, App: sess.app.name, Subject: sess.subject, Session: sess.id,
				Client: s.client(thief.dev, n)}, t)
		} else {
			s.emit(&schemas.Event{Type: schemas.ActionPerformed, App: sess.app.name, Subject: sess.subject, Session: sess.id,
				Client: s.client(thief.dev, n), Action: &schemas.Action{Name: "view_orders"}}, t)
		}
		t = t.Add(s.between(3*time.Second, 30*time.Second))
	}
	s.finish(detSessionHijack)
}

// sessionSeenWithin reports whether sess had an event in the day before t,
// so that session_hijack still remembers where it started.
func sessionSeenWithin(sess *session, t time.Time) bool {
	last := sess.start
	for _, a := range sess.activity {
		if a.After(t) {
			break
		}
		last = a
	}
	if !sess.ended.IsZero() && !sess.ended.After(t) {
		last = sess.ended
	}
	return t.Sub(last) < 24*time.Hour
}

// refreshReuse: a refresh token copied from the owner's phone is presented
// by the thief after the phone already rotated it.
func (s *sim) refreshReuse() {
	var stolen tokenRec
	var at time.Time
	sess := s.pickSession(func(x *session) bool {
		if !x.app.refresh || len(x.rotated) == 0 || x.u.kind == kindVPN {
			return false
		}
		stolen = x.rotated[s.rnd.IntN(len(x.rotated))]
		at = stolen.rotatedAt.Add(s.between(20*time.Minute, 6*time.Hour))
		return s.inside(at, time.Minute) && (x.ended.IsZero() || at.Before(x.ended))
	})
	if sess == nil {
		return
	}
	s.begin(kindRefreshReuse, sess.app.name).victims = []string{sess.subject}
	n, d := s.use(s.abroad()), s.attackerDevice()
	rt := tokenRec{id: s.pseudonym(), issued: at, expires: at.Add(refreshLifetime)}
	s.emit(&schemas.Event{Type: schemas.TokenRefreshed, App: sess.app.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n),
		Token: &schemas.Token{ID: rt.id, Kind: schemas.TokenRefresh, Family: sess.family, Parent: stolen.id,
			IssuedAt: timePtr(at), ExpiresAt: timePtr(rt.expires)}}, at)
	dets := []string{detTokenReuse}
	if sessionSeenWithin(sess, at) {
		dets = append(dets, detSessionHijack)
	}
	s.finish(dets...)
}

// accessAfterLogout: an access token copied from the owner's browser is
// used by the thief after the owner logged out, while it is still valid.
func (s *sim) accessAfterLogout() {
	var at time.Time
	sess := s.pickSession(func(x *session) bool {
		if !x.logout || x.app.refresh || x.u.kind == kindVPN || x.access.expires.Sub(x.ended) < 8*time.Minute {
			return false
		}
		at = x.ended.Add(s.between(3*time.Minute, x.access.expires.Sub(x.ended)-2*time.Minute))
		return s.inside(at, time.Minute)
	})
	if sess == nil {
		return
	}
	s.begin(kindAccessAfterLogout, sess.app.name).victims = []string{sess.subject}
	n, d := s.use(s.abroad()), s.attackerDevice()
	for range 1 + s.rnd.IntN(3) {
		s.emit(&schemas.Event{Type: schemas.TokenUsed, App: sess.app.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n),
			Token: &schemas.Token{ID: sess.access.id, Kind: schemas.TokenAccess, ExpiresAt: timePtr(sess.access.expires)}}, at)
		at = at.Add(s.between(2*time.Second, 40*time.Second))
	}
	s.finish(detTokenReuse, detSessionHijack)
}

// refreshAfterLogout: the thief presents a refresh token of a session
// the owner logged out of the day before; it had not expired.
func (s *sim) refreshAfterLogout() {
	var at time.Time
	sess := s.pickSession(func(x *session) bool {
		if !x.logout || !x.app.refresh || x.u.kind == kindVPN {
			return false
		}
		at = x.ended.Add(s.between(18*time.Hour, 23*time.Hour))
		return s.inside(at, time.Minute)
	})
	if sess == nil {
		return
	}
	s.begin(kindRefreshAfterLogout, sess.app.name).victims = []string{sess.subject}
	n, d := s.use(s.abroad()), s.attackerDevice()
	rt := tokenRec{id: s.pseudonym(), issued: at, expires: at.Add(refreshLifetime)}
	s.emit(&schemas.Event{Type: schemas.TokenRefreshed, App: sess.app.name, Subject: sess.subject, Session: sess.id, Client: s.client(d, n),
		Token: &schemas.Token{ID: rt.id, Kind: schemas.TokenRefresh, Family: sess.family, Parent: sess.refresh.id,
			IssuedAt: timePtr(at), ExpiresAt: timePtr(rt.expires)}}, at)
	dets := []string{detTokenReuse}
	if sessionSeenWithin(sess, at) {
		dets = append(dets, detSessionHijack)
	}
	s.finish(dets...)
}

// bruteForce guesses one account's password: slowly (one attempt every 3
// to 10 minutes, 40 to 70 of them, from one to three hosting networks) or
// in a burst (15 to 40 within minutes, from one network); sometimes the
// guess is right and the attacker logs in.
func (s *sim) bruteForce(slow bool) {
	u := s.users[s.rnd.IntN(len(s.users))]
	a := u.apps[s.rnd.IntN(len(u.apps))]
	kind := kindBruteBurst
	if slow {
		kind = kindBruteSlow
	}
	s.begin(kind, a.name).victims = []string{u.subject}
	city := s.world.hosting[s.rnd.IntN(len(s.world.hosting))]
	var tools []*schemas.Client
	nsrc := 1
	if slow {
		nsrc = 1 + s.rnd.IntN(3)
	}
	var nets []*network
	for range nsrc {
		n := s.use(city[s.rnd.IntN(len(city))])
		nets = append(nets, n)
		tools = append(tools, s.client(s.attackerDevice(), n))
	}
	attempts, gapLo, gapHi := 15+s.rnd.IntN(26), 2*time.Second, 15*time.Second
	span := time.Duration(attempts) * 10 * time.Minute
	if slow {
		attempts, gapLo, gapHi = 40+s.rnd.IntN(31), 3*time.Minute, 10*time.Minute
	}
	t := s.cfg.Start.Add(s.between(time.Hour, s.end.Sub(s.cfg.Start)-span-time.Hour))
	var last int
	for i := range attempts {
		last = i * nsrc / attempts
		c := *tools[last]
		// The tool rotates over the network's addresses.
		c.IPHash = ipHash(nets[last], 1+s.rnd.IntN(254))
		s.emit(&schemas.Event{Type: schemas.LoginFailed, App: a.name, Subject: u.subject, Reason: "bad_password", Client: &c}, t)
		t = t.Add(s.between(gapLo, gapHi))
	}
	if s.chance(0.3) {
		d := &device{id: tools[last].Device, ua: tools[last].UserAgent}
		thief, t := s.signIn(u.subject, a, d, nets[last], t, nil)
		s.act(thief, t)
	}
	s.finish(detBruteForce)
}

// stuffing tries a leaked list of accounts once each: spread over 1 to 3
// hours and 30 to 170 networks of one or two hosting ASNs (distributed),
// or within minutes from one network (burst). Most accounts fail, many
// do not exist; under 1% succeed.
func (s *sim) stuffing(distributed bool) {
	a := apps[s.rnd.IntN(len(apps))]
	kind, accounts, span := kindStuffingBurst, 40+s.rnd.IntN(111), s.between(4*time.Minute, 10*time.Minute)
	var nets []*network
	ci := s.rnd.IntN(len(s.world.hosting))
	if distributed {
		kind, accounts, span = kindStuffingDistributed, 200+s.rnd.IntN(401), s.between(time.Hour, 3*time.Hour)
		cities := []int{ci}
		if s.chance(0.5) {
			cities = append(cities, (ci+1)%len(s.world.hosting))
		}
		for range 30 + s.rnd.IntN(141) {
			pool := s.world.hosting[cities[s.rnd.IntN(len(cities))]]
			nets = append(nets, pool[s.rnd.IntN(len(pool))])
		}
	} else {
		pool := s.world.hosting[ci]
		nets = append(nets, pool[s.rnd.IntN(len(pool))])
	}
	at := s.begin(kind, a.name)
	start := s.cfg.Start.Add(s.between(time.Hour, s.end.Sub(s.cfg.Start)-span-time.Hour))
	successes := 0
	for i := range accounts {
		t := start.Add(span * time.Duration(i) / time.Duration(accounts)).Add(s.between(0, 10*time.Second))
		n := s.use(nets[s.rnd.IntN(len(nets))])
		d := s.attackerDevice()
		subject, reason := s.pseudonym(), "unknown_user"
		if s.chance(0.6) {
			u := s.users[s.rnd.IntN(len(s.users))]
			subject, reason = u.subject, "bad_password"
		}
		at.victims = append(at.victims, subject)
		if reason == "bad_password" && successes < accounts/150 && s.chance(0.02) {
			successes++
			thief, t := s.signIn(subject, a, d, n, t, nil)
			s.act(thief, t)
			continue
		}
		s.emit(&schemas.Event{Type: schemas.LoginFailed, App: a.name, Subject: subject, Reason: reason, Client: s.client(d, n)}, t)
	}
	s.finish(detCredentialStuffing)
}

// fixation: the app's login kept the session id the browser had before
// login.
func (s *sim) fixation() {
	u := s.users[s.rnd.IntN(len(s.users))]
	if u.laptop == nil {
		u.laptop = &device{id: s.pseudonym(), ua: laptopUAs[0]}
	}
	t := s.cfg.Start.Add(s.between(2*time.Hour, s.end.Sub(s.cfg.Start)-2*time.Hour))
	if u.away(t) {
		t = u.arrives.Add(time.Hour)
	}
	at := s.begin(kindFixation, appShop.name)
	at.victims, at.byOwner = []string{u.subject}, true
	sess, t := s.signIn(u.subject, appShop, u.laptop, s.use(s.netAt(u, u.laptop, t)), t, u)
	sess.started.PreviousSession = sess.id
	for range 3 {
		s.act(sess, t)
		t = sess.last.Add(s.between(20*time.Second, 3*time.Minute))
	}
	s.closeSession(sess, t, true)
	s.finish(detSessionFixation)
}

// noReauth: the bank app let a transfer through without asking for the
// password again, minutes after the reauthentication window closed.
func (s *sim) noReauth() {
	u := s.users[s.rnd.IntN(len(s.users))]
	d := u.laptop
	if d == nil {
		d = u.phone
	}
	t := s.cfg.Start.Add(s.between(2*time.Hour, s.end.Sub(s.cfg.Start)-2*time.Hour))
	if u.away(t) {
		t = u.arrives.Add(time.Hour)
	}
	at := s.begin(kindNoReauth, appBank.name)
	at.victims, at.byOwner = []string{u.subject}, true
	sess, t := s.signIn(u.subject, appBank, d, s.use(s.netAt(u, d, t)), t, u)
	stop := sess.start.Add(appBank.reauth + s.between(time.Minute, 3*time.Minute))
	for t.Before(stop) {
		n := s.netAt(u, d, t)
		s.emit(&schemas.Event{Type: schemas.SessionActivity, App: appBank.name, Subject: u.subject, Session: sess.id, Client: s.client(d, n)}, t)
		sess.last = t
		t = t.Add(s.between(30*time.Second, 2*time.Minute))
	}
	s.emit(&schemas.Event{Type: schemas.ActionPerformed, App: appBank.name, Subject: u.subject, Session: sess.id, Client: s.client(d, s.netAt(u, d, t)),
		Action: &schemas.Action{Name: appBank.sensitive, Sensitive: true}, Auth: &schemas.Auth{LastAuthAt: timePtr(sess.lastAuth)}}, t)
	sess.last = t
	s.closeSession(sess, t.Add(s.between(10*time.Second, time.Minute)), true)
	s.finish(detMissingReauth)
}

// labelTravel adds an impossible_travel label to every attack in which a
// victim's account is used (signed in, or a session or token of it used;
// failed logins do not count) somewhere the owner's own last or next
// located use could not have reached at 1000 km/h (impossible_travel's
// default), unless the attack is labelled for it already.
func (s *sim) labelTravel() {
	victims := map[string]bool{}
	for _, a := range s.done {
		for _, v := range a.victims {
			victims[v] = true
		}
	}
	attackEvent := map[*schemas.Event]bool{}
	for _, a := range s.done {
		if a.byOwner {
			continue
		}
		for _, e := range a.events {
			attackEvent[e] = true
		}
	}
	own := map[string][]*schemas.Event{}
	for _, e := range s.events {
		if victims[e.Subject] && !attackEvent[e] && e.Type != schemas.LoginFailed && e.Client != nil && e.Client.IPPrefix != "" {
			own[e.Subject] = append(own[e.Subject], e)
		}
	}
	for _, evs := range own {
		slices.SortStableFunc(evs, func(a, b *schemas.Event) int { return a.Time.Compare(b.Time.Time) })
	}
	nets := map[string]*network{}
	for _, a := range s.done {
		for p, n := range a.sources {
			nets[p] = n
		}
	}
	for _, a := range s.done {
		if a.byOwner || slices.ContainsFunc(a.labels, func(l Label) bool { return l.Detector == detImpossibleTravel }) {
			s.labels = append(s.labels, a.labels...)
			continue
		}
		var subjects []string
		var from, to time.Time
		for _, e := range a.events {
			// A failed login is someone trying the account, not the
			// account in use: no travel.
			if e.Client == nil || e.Type == schemas.LoginFailed || slices.Contains(subjects, e.Subject) {
				continue
			}
			n := nets[e.Client.IPPrefix]
			if n == nil || !s.impossibleFor(own[e.Subject], n, e.Time.Time) {
				continue
			}
			subjects = append(subjects, e.Subject)
			if from.IsZero() || e.Time.Before(from) {
				from = e.Time.Time
			}
		}
		for _, e := range a.events {
			if slices.Contains(subjects, e.Subject) {
				to = maxTime(to, e.Time.Time)
			}
		}
		if len(subjects) > 0 {
			l := a.labels[0]
			l.Detector, l.Subjects, l.From, l.To = detImpossibleTravel, subjects, from, to
			l.Kind = fmt.Sprintf("%s (the victim is seen far away)", a.kind)
			a.labels = append(a.labels, l)
		}
		s.labels = append(s.labels, a.labels...)
	}
}

// impossibleFor reports whether being on n at t is too far, at the
// detector's default speed limit, from the owner's nearest own events
// before and after.
func (s *sim) impossibleFor(own []*schemas.Event, n *network, t time.Time) bool {
	i, _ := slices.BinarySearchFunc(own, t, func(e *schemas.Event, t time.Time) int { return e.Time.Compare(t) })
	check := func(e *schemas.Event) bool {
		on := s.world.byPrefix(e.Client.IPPrefix)
		return on != nil && speedKMH(on, n, e.Time.Sub(t).Abs(), 10) > 1000
	}
	return (i > 0 && check(own[i-1])) || (i < len(own) && check(own[i]))
}
