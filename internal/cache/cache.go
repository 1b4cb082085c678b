// Package cache is a small bounded, concurrency-safe cache for hot lookups
// (GeoIP networks, user agents).
package cache

import "sync"

// Cache is a bounded cache of two generations: entries go into the current
// map, and when it holds half the capacity it becomes the previous one and
// the oldest generation is dropped. A hit in the previous generation moves
// the entry forward, so keys in use stay cached while one-off keys age out.
// Hits in the current generation take only the read lock. A nil *Cache
// caches nothing.
type Cache[K comparable, V any] struct {
	mu        sync.RWMutex
	half      int
	cur, prev map[K]V
}

// New returns a cache of about size entries, or nil (caching nothing) when
// size <= 0.
func New[K comparable, V any](size int) *Cache[K, V] {
	if size <= 0 {
		return nil
	}
	half := max(size/2, 1)
	return &Cache[K, V]{half: half, cur: make(map[K]V, half)}
}

// Get returns the value of k, if cached.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	c.mu.RLock()
	v, ok := c.cur[k]
	if ok {
		c.mu.RUnlock()
		return v, true
	}
	v, ok = c.prev[k]
	c.mu.RUnlock()
	if ok {
		c.Put(k, v)
	}
	return v, ok
}

// Put caches v for k.
func (c *Cache[K, V]) Put(k K, v V) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.half {
		c.prev = c.cur
		c.cur = make(map[K]V, c.half)
	}
	c.cur[k] = v
}

// Len returns the number of entries, counting a key present in both
// generations twice.
func (c *Cache[K, V]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}
