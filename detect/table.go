package detect

import (
	"cmp"
	"math"
	"slices"
)

// table is a bounded map from a key (a subject, session, token or source,
// or a hash of one) to a detector's small state. Inserting a new key into a
// full table first evicts the sixteenth of the keys that were last seen
// longest ago, so the cost of eviction is amortised; the order depends only
// on the stored values and keys, never on map order, so a replay of the
// same events evicts the same keys.
type table[K cmp.Ordered, V any] struct {
	max  int
	last func(V) int64
	m    map[K]V
	// floor is at most last(v) of every stored value, so that dropOlder
	// can tell that nothing is old enough to drop without a walk.
	floor int64
}

// keyTable is a table keyed by the pseudonym itself.
type keyTable[V any] = table[string, V]

// hashTable is a table keyed by pseudonymHash of the pseudonym: it does not
// keep the pseudonym's string alive, which halves the memory of small
// states.
type hashTable[V any] = table[uint64, V]

func newKeyTable[V any](maxKeys int, last func(V) int64) *keyTable[V] {
	return &table[string, V]{max: maxKeys, last: last, m: make(map[string]V), floor: math.MaxInt64}
}

func newHashTable[V any](maxKeys int, last func(V) int64) *hashTable[V] {
	return &table[uint64, V]{max: maxKeys, last: last, m: make(map[uint64]V), floor: math.MaxInt64}
}

func (t *table[K, V]) get(k K) (V, bool) {
	v, ok := t.m[k]
	return v, ok
}

func (t *table[K, V]) has(k K) bool {
	_, ok := t.m[k]
	return ok
}

func (t *table[K, V]) put(k K, v V) {
	if _, ok := t.m[k]; !ok && len(t.m) >= t.max {
		t.evictOldest()
	}
	t.m[k] = v
	t.floor = min(t.floor, t.last(v))
}

func (t *table[K, V]) delete(k K) { delete(t.m, k) }

func (t *table[K, V]) size() int { return len(t.m) }

func (t *table[K, V]) dropIf(drop func(V) bool) {
	for k, v := range t.m {
		if drop(v) {
			delete(t.m, k)
		}
	}
}

// dropOlder is dropIf for a drop that only ever holds for values whose
// last is before cutoff: it skips the walk when no stored value is that
// old, which is most sweeps of a table whose window is long.
func (t *table[K, V]) dropOlder(cutoff int64, drop func(V) bool) {
	if t.floor >= cutoff {
		return
	}
	floor := int64(math.MaxInt64)
	for k, v := range t.m {
		if drop(v) {
			delete(t.m, k)
			continue
		}
		floor = min(floor, t.last(v))
	}
	t.floor = floor
}

func (t *table[K, V]) evictOldest() {
	type aged struct {
		last int64
		key  K
	}
	all := make([]aged, 0, len(t.m))
	for k, v := range t.m {
		all = append(all, aged{t.last(v), k})
	}
	slices.SortFunc(all, func(a, b aged) int {
		return cmp.Or(cmp.Compare(a.last, b.last), cmp.Compare(a.key, b.key))
	})
	for _, a := range all[:max(1, len(all)/16)] {
		delete(t.m, a.key)
	}
}

// pseudonymHash is the 64-bit FNV-1a hash of a pseudonym, for state that
// only needs to recognise it again. Pseudonyms are keyed HMACs or
// fingerprints that senders cannot choose freely, and among a million live
// keys a collision has a chance of about 3 in 10^8.
func pseudonymHash(s string) uint64 {
	if s == "" {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
