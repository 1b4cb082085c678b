package dashboard

import (
	"sync"
	"time"
)

// Login rate limits. Every sign-in and re-authentication attempt is counted
// before its password is checked, as a failure until it succeeds, so
// parallel guesses get no more tries than the limits allow. Failures are
// counted over a sliding window per source address, per user name from one
// source, and per user name from all sources:
//
//   - a source with loginFailsPerIP failures is refused, whatever the name;
//   - a user name with loginFailsPerUser failures from one source is
//     refused from that source, whether the password is right or not and
//     whether the user exists or not;
//   - a user name with loginFailsPerUserAll failures from all sources is
//     refused from every source that has failures of its own; a source
//     without failures may always try, so nobody can lock a user out from
//     elsewhere.
//
// Refused attempts get 429 and Retry-After until the failure that blocks
// them leaves the window. The counters live in the memory of each
// dashboard process: several processes behind a load balancer each allow
// the limits, and a restart forgets them.
const (
	loginWindow          = 15 * time.Minute
	loginFailsPerUser    = 5
	loginFailsPerIP      = 20
	loginFailsPerUserAll = 10
	// maxLimiterKeys bounds the memory of each counter table; when one is
	// full, keys whose failures all left the window are dropped, and if
	// none did, the key with the oldest latest failure is, so every other
	// key keeps its own count (there is no shared overflow counter that
	// one attacker could spend for everyone).
	maxLimiterKeys = 10000
)

// loginLimits holds the three counter tables of the login rate limits. It
// is safe for concurrent use: one mutex guards all three, so checking and
// counting an attempt is atomic.
type loginLimits struct {
	mu                    sync.Mutex
	sources, pairs, users *limiter
}

func newLoginLimits() *loginLimits {
	return &loginLimits{
		sources: newLimiter(loginFailsPerIP, loginWindow),
		pairs:   newLimiter(loginFailsPerUser, loginWindow),
		users:   newLimiter(loginFailsPerUserAll, loginWindow),
	}
}

// loginAttempt is an attempt counted by begin: a failure unless it is
// resolved otherwise.
type loginAttempt struct {
	l                  *loginLimits
	user, source, pair string
	at                 time.Time
}

// begin counts an attempt for user (a userKey) from source (a sourceKey)
// at now and returns it, or returns how long the source must wait before
// it may try user again.
func (l *loginLimits) begin(user, source string, now time.Time) (*loginAttempt, time.Duration) {
	pair := user + "\x00" + source
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	wait = max(wait, l.sources.retryAfter(source, now))
	wait = max(wait, l.pairs.retryAfter(pair, now))
	if l.sources.count(source, now) > 0 {
		wait = max(wait, l.users.retryAfter(user, now))
	}
	if wait > 0 {
		return nil, wait
	}
	l.sources.add(source, now)
	l.pairs.add(pair, now)
	l.users.add(user, now)
	return &loginAttempt{l: l, user: user, source: source, pair: pair, at: now}, 0
}

// succeeded uncounts the attempt (the password was right) and forgets the
// failures of its user from its source. The user's failures from other
// sources stay.
func (a *loginAttempt) succeeded() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.l.sources.remove(a.source, a.at)
	a.l.users.remove(a.user, a.at)
	a.l.pairs.reset(a.pair)
}

// cancel uncounts an attempt whose password was never checked.
func (a *loginAttempt) cancel() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.l.sources.remove(a.source, a.at)
	a.l.users.remove(a.user, a.at)
	a.l.pairs.remove(a.pair, a.at)
}

// limiter counts failures per key in a sliding window, with at most
// maxLimiterKeys keys. The caller serializes calls (loginLimits.mu).
type limiter struct {
	window time.Duration
	limit  int
	fails  map[string][]time.Time
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{window: window, limit: limit, fails: map[string][]time.Time{}}
}

// count returns how many failures key has in the window at now.
func (l *limiter) count(key string, now time.Time) int { return len(l.prune(key, now)) }

// retryAfter returns how long key must wait before its next attempt, 0
// when it may try now.
func (l *limiter) retryAfter(key string, now time.Time) time.Duration {
	f := l.prune(key, now)
	if len(f) < l.limit {
		return 0
	}
	return f[len(f)-l.limit].Add(l.window).Sub(now)
}

// add records a failure of key at now.
func (l *limiter) add(key string, now time.Time) {
	if _, ok := l.fails[key]; !ok && len(l.fails) >= maxLimiterKeys {
		l.evict(now)
	}
	f := l.prune(key, now)
	// Only the latest limit failures matter for the answer.
	if len(f) >= l.limit {
		f = f[len(f)-l.limit+1:]
	}
	l.fails[key] = append(f, now)
}

// evict makes room for a new key: it drops the keys whose failures all
// left the window, and if that frees nothing, the key whose latest failure
// is the oldest.
func (l *limiter) evict(now time.Time) {
	for k := range l.fails {
		l.prune(k, now)
	}
	if len(l.fails) < maxLimiterKeys {
		return
	}
	var oldest string
	var at time.Time
	for k, f := range l.fails {
		if last := f[len(f)-1]; oldest == "" || last.Before(at) {
			oldest, at = k, last
		}
	}
	delete(l.fails, oldest)
}

// remove drops one failure of key recorded at t, if it is still there.
func (l *limiter) remove(key string, t time.Time) {
	f := l.fails[key]
	for i := len(f) - 1; i >= 0; i-- {
		if f[i].Equal(t) {
			f = append(f[:i:i], f[i+1:]...)
			break
		}
	}
	if len(f) == 0 {
		delete(l.fails, key)
		return
	}
	l.fails[key] = f
}

// reset forgets key's failures.
func (l *limiter) reset(key string) { delete(l.fails, key) }

// prune drops key's failures older than the window and returns the rest.
func (l *limiter) prune(key string, now time.Time) []time.Time {
	f, ok := l.fails[key]
	if !ok {
		return nil
	}
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = f
	return f
}
