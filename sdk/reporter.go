package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Defaults of ReporterOptions.
const (
	// DefaultActivityInterval is the least time between two session.activity
	// events of one session.
	DefaultActivityInterval = time.Minute
	// DefaultMaxSessions is how many sessions the activity throttle
	// remembers at once (about 100 bytes each).
	DefaultMaxSessions = 100_000
)

// Publisher publishes an event without waiting for the stream. *Client is
// the Publisher of the SDK; tests may pass their own.
type Publisher interface {
	PublishAsync(ctx context.Context, ev *Event) error
}

// ReporterOptions configures a Reporter. Only the funcs that read the raw
// subject and session of a request are needed for Middleware; the raw
// values they return are pseudonymized before anything leaves the app.
type ReporterOptions struct {
	// Inspector reads the client of a request. Nil: one that trusts no
	// proxy, so the direct peer is the client.
	Inspector *RequestInspector
	// Subject returns the raw id of the signed-in user of r, or "" when
	// nobody is signed in (then Middleware reports nothing).
	Subject func(r *http.Request) string
	// Session returns the raw session id of r, or "" when there is none
	// (then Middleware reports nothing).
	Session func(r *http.Request) string
	// Device returns the raw device id of r (such as a long-lived device
	// cookie), or "". Nil: no device.
	Device func(r *http.Request) string
	// ActivityInterval is the least time between two session.activity
	// events of one session (zero: DefaultActivityInterval).
	ActivityInterval time.Duration
	// MaxSessions bounds the sessions the throttle remembers (zero:
	// DefaultMaxSessions). When more are active, the oldest are forgotten
	// early, and their next request is reported again sooner.
	MaxSessions int
	// OnError receives the errors of the events Middleware could not hand
	// to the Publisher (such as ErrBufferFull). Nil: they are dropped; the
	// request goes on either way.
	OnError func(r *http.Request, err error)
}

// Reporter reports the session events of an HTTP app: throttled
// session.activity from Middleware, and logins, logouts and token events
// from the app's handlers. It pseudonymizes every identifier and publishes
// with PublishAsync, so it never waits for the network unless the Client
// was made WithBlockOnFull. A Reporter is safe for concurrent use.
type Reporter struct {
	pub  Publisher
	p    *Pseudonymizer
	ri   *RequestInspector
	opts ReporterOptions
	act  *throttle
}

// NewReporter returns a Reporter that publishes through pub and
// pseudonymizes with p. It fails on a nil pub or p, or a negative option.
func NewReporter(pub Publisher, p *Pseudonymizer, opts ReporterOptions) (*Reporter, error) {
	var errs []error
	if pub == nil {
		errs = append(errs, errors.New("nil Publisher"))
	}
	if p == nil {
		errs = append(errs, errors.New("nil Pseudonymizer"))
	}
	if opts.ActivityInterval < 0 {
		errs = append(errs, fmt.Errorf("ActivityInterval must not be negative (got %s)", opts.ActivityInterval))
	}
	if opts.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("MaxSessions must not be negative (got %d)", opts.MaxSessions))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new reporter: %w: %w", ErrInvalidOption, err)
	}
	if opts.ActivityInterval == 0 {
		opts.ActivityInterval = DefaultActivityInterval
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	ri := opts.Inspector
	if ri == nil {
		ri = &RequestInspector{p: p}
	}
	return &Reporter{pub: pub, p: p, ri: ri, opts: opts, act: newThrottle(opts.ActivityInterval, opts.MaxSessions)}, nil
}

// Middleware returns next wrapped so that each request of a signed-in
// session reports session.activity, at most once per ActivityInterval per
// session, before next runs. It works with any router that takes an
// http.Handler middleware: chi (r.Use(rep.Middleware)), echo
// (e.Use(echo.WrapMiddleware(rep.Middleware))), or gin and others by
// wrapping the whole engine (rep.Middleware(engine)); wrapped outside the
// router, the Subject and Session funcs must read the request itself (its
// session cookie, say), since the router's own middleware has not run yet.
func (rp *Reporter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := rp.Activity(r); err != nil && rp.opts.OnError != nil {
			rp.opts.OnError(r, err)
		}
		next.ServeHTTP(w, r)
	})
}

// Activity reports session.activity for r's session, unless the session
// was reported within ActivityInterval or r has no subject or session (see
// ReporterOptions); it returns nil then.
func (rp *Reporter) Activity(r *http.Request) error {
	if rp.opts.Subject == nil || rp.opts.Session == nil {
		return nil
	}
	rawSubject, rawSession := rp.opts.Subject(r), rp.opts.Session(r)
	if rawSubject == "" || rawSession == "" {
		return nil
	}
	session := rp.p.Session(rawSession)
	now := time.Now()
	if !rp.act.allow(session.String(), now) {
		return nil
	}
	err := rp.publish(r, &Event{Type: SessionActivity, Time: now, Subject: rp.p.Subject(rawSubject), Session: session})
	if err != nil {
		// Not sent: the next request may try again.
		rp.act.forget(session.String())
	}
	return err
}

// Login describes a successful login, for Reporter.Login. IDs are raw: the
// Reporter pseudonymizes them.
type Login struct {
	// UserID is the user who signed in (required).
	UserID string
	// SessionID is the session the login started (required).
	SessionID string
	// PreviousSessionID is the session it replaces, such as the
	// pre-login session rotated at login, or "".
	PreviousSessionID string
	// Auth, Cookie and Policy describe how the user authenticated, the
	// session cookie set and the app's session policy (each optional).
	Auth   *Auth
	Cookie *Cookie
	Policy *Policy
}

// Login reports login.succeeded and session.started for a login made by
// r. It returns the first error of the two publishes.
func (rp *Reporter) Login(r *http.Request, l Login) error {
	var missing []*FieldError
	if l.UserID == "" {
		missing = append(missing, &FieldError{Field: "subject", Rule: "is required (Login.UserID)"})
	}
	if l.SessionID == "" {
		missing = append(missing, &FieldError{Field: "session", Rule: "is required (Login.SessionID)"})
	}
	if len(missing) > 0 {
		return fmt.Errorf("login: %w", &ValidationError{Errors: missing})
	}
	now := time.Now()
	subject, session := rp.p.Subject(l.UserID), rp.p.Session(l.SessionID)
	err := rp.publish(r, &Event{Type: LoginSucceeded, Time: now, Subject: subject, Session: session, Auth: l.Auth})
	if err != nil {
		return err
	}
	return rp.publish(r, &Event{
		Type: SessionStarted, Time: now, Subject: subject, Session: session,
		PreviousSession: rp.p.Session(l.PreviousSessionID), Cookie: l.Cookie, Policy: l.Policy,
	})
}

// LoginFailed reports login.failed for the account name r tried (the raw
// name typed, pseudonymized like a user id) with a short machine-readable
// reason such as "bad_password". Never put user input in reason.
func (rp *Reporter) LoginFailed(r *http.Request, account, reason string) error {
	return rp.publish(r, &Event{Type: LoginFailed, Subject: rp.p.Subject(account), Reason: reason})
}

// Logout reports session.ended with reason "logout" for the session r
// ended. The throttle forgets the session, so a request that still uses
// it afterwards is reported at once.
func (rp *Reporter) Logout(r *http.Request, userID, sessionID string) error {
	session := rp.p.Session(sessionID)
	rp.act.forget(session.String())
	return rp.publish(r, &Event{Type: SessionEnded, Subject: rp.p.Subject(userID), Session: session, Reason: "logout"})
}

// TokenEvent describes a token for Reporter.Token. Token, Family and
// Parent are raw tokens or token ids (jti): the Reporter sends their
// fingerprints (Pseudonymizer.TokenID) only.
type TokenEvent struct {
	// Token is the token or its jti (required).
	Token string
	// Family is the first token of its refresh family, Parent the token it
	// was refreshed from (each optional).
	Family, Parent string
	// Kind is TokenAccess, TokenRefresh, TokenID, TokenAPIKey or empty.
	Kind string
	// IssuedAt and ExpiresAt are its iat and exp (zero: absent).
	IssuedAt, ExpiresAt time.Time
	// KID and Alg name its signing key and algorithm; Claims lists the
	// names of its claims, never their values.
	KID, Alg string
	Claims   []string
}

// Token reports a token event (TokenIssued, TokenRefreshed, TokenUsed or
// TokenRevoked) of userID's session sessionID (or "") for r.
func (rp *Reporter) Token(r *http.Request, typ Type, userID, sessionID string, t TokenEvent) error {
	return rp.publish(r, &Event{
		Type: typ, Subject: rp.p.Subject(userID), Session: rp.p.Session(sessionID),
		Token: &Token{
			ID: rp.p.TokenID(t.Token), Family: rp.p.TokenID(t.Family), Parent: rp.p.TokenID(t.Parent),
			Kind: t.Kind, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt, KID: t.KID, Alg: t.Alg, Claims: t.Claims,
		},
	})
}

// publish fills the client of ev from r and hands it to the Publisher.
func (rp *Reporter) publish(r *http.Request, ev *Event) error {
	ci := rp.ri.ClientInfo(r)
	if rp.opts.Device != nil {
		ci.Device = rp.p.Device(rp.opts.Device(r))
	}
	ev.Client = &ci
	return rp.pub.PublishAsync(r.Context(), ev)
}

// throttle remembers when each session was last reported, in two
// generations: a session is recent if either generation saw it within the
// interval. The current generation becomes the previous one every interval,
// or early once it holds max sessions, so memory stays within two
// generations of at most max entries each, and no lookup scans the maps.
type throttle struct {
	interval time.Duration
	max      int

	mu        sync.Mutex
	cur, prev map[string]time.Time
	rotated   time.Time
}

func newThrottle(interval time.Duration, max int) *throttle {
	return &throttle{interval: interval, max: max, cur: make(map[string]time.Time), prev: make(map[string]time.Time)}
}

// allow reports whether key may be reported at now, and if so records it.
func (t *throttle) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.rotated) >= t.interval {
		t.rotate(now)
	}
	if last, ok := t.cur[key]; ok && now.Sub(last) < t.interval {
		return false
	}
	if last, ok := t.prev[key]; ok && now.Sub(last) < t.interval {
		return false
	}
	if len(t.cur) >= t.max {
		t.rotate(now)
	}
	t.cur[key] = now
	return true
}

// rotate starts a new generation. Entries of the previous one are older
// than one interval, or the current one filled up.
func (t *throttle) rotate(now time.Time) {
	t.prev, t.cur = t.cur, make(map[string]time.Time, len(t.cur))
	t.rotated = now
}

// forget drops key, so its next request is reported.
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.cur, key)
	delete(t.prev, key)
}

// size returns the number of remembered entries.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur) + len(t.prev)
}

// *Client is the Publisher the SDK provides.
var _ Publisher = (*Client)(nil)
