package dashboard

import (
	"sync"
	"time"
)

// Login rate limits: failed sign-ins counted over a sliding window, per
// user name and per source address. Once a key reaches its limit, sign-ins
// for it are refused with 429 and Retry-After until its oldest failure
// leaves the window, whether the password is right or not, and whether the
// user exists or not. The counters live in the memory of each dashboard
// process: several processes behind a load balancer each allow the limit,
// and a restart forgets them.
const (
	loginWindow       = 15 * time.Minute
	loginFailsPerUser = 5
	loginFailsPerIP   = 20
	// maxLimiterKeys bounds the memory of the limiter; when it is full,
	// keys whose failures all left the window are dropped, and if none
	// did, new keys are counted in one shared overflow key.
	maxLimiterKeys = 10000
)

const overflowKey = "\x00overflow"

// limiter counts failures per key in a sliding window. It is safe for
// concurrent use.
type limiter struct {
	mu     sync.Mutex
	window time.Duration
	limit  int
	fails  map[string][]time.Time
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{window: window, limit: limit, fails: map[string][]time.Time{}}
}

// retryAfter returns how long key must wait before its next attempt, 0
// when it may try now.
func (l *limiter) retryAfter(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.fails[key]; !ok && len(l.fails) >= maxLimiterKeys {
		key = overflowKey
	}
	f := l.prune(key, now)
	if len(f) < l.limit {
		return 0
	}
	return f[len(f)-l.limit].Add(l.window).Sub(now)
}

// fail records a failure of key at now.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.fails[key]; !ok && len(l.fails) >= maxLimiterKeys {
		for k := range l.fails {
			l.prune(k, now)
		}
		if len(l.fails) >= maxLimiterKeys {
			key = overflowKey
		}
	}
	f := l.prune(key, now)
	// Only the latest limit failures matter for the answer.
	if len(f) >= l.limit {
		f = f[len(f)-l.limit+1:]
	}
	l.fails[key] = append(f, now)
}

// reset forgets key's failures (a successful sign-in of that user).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

// prune drops key's failures older than the window and returns the rest.
// l.mu must be held.
func (l *limiter) prune(key string, now time.Time) []time.Time {
	f := l.fails[key]
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
