package geo

import "sync"

// cache is a bounded cache of two generations: entries go into the current
// map, and when it holds half the capacity it becomes the previous one and
// the oldest generation is dropped. A hit in the previous generation moves
// the entry forward, so keys in use stay cached while one-off keys age out.
// Hits in the current generation take only the read lock. A nil *cache
// caches nothing.
type cache[K comparable, V any] struct {
	mu        sync.RWMutex
	half      int
	cur, prev map[K]V
}

// newCache returns a cache of about size entries, or nil when size <= 0.
func newCache[K comparable, V any](size int) *cache[K, V] {
	if size <= 0 {
		return nil
	}
	half := max(size/2, 1)
	return &cache[K, V]{half: half, cur: make(map[K]V, half)}
}

func (c *cache[K, V]) get(k K) (V, bool) {
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
		c.put(k, v)
	}
	return v, ok
}

func (c *cache[K, V]) put(k K, v V) {
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

// len returns the number of entries, counting a key present in both
// generations twice.
func (c *cache[K, V]) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}
