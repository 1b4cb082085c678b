package cache

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKeepsHotEntries checks that a key in steady use survives a stream of
// one-off keys, which age out.
func TestKeepsHotEntries(t *testing.T) {
	t.Parallel()
	const hot = "curl/8.5.0"
	c := New[string, int](8)
	c.Put(hot, 1)
	for i := range 100 {
		c.Put(fmt.Sprintf("one-off/%d", i), i)
		_, ok := c.Get(hot)
		require.True(t, ok, "hot entry evicted after %d one-off entries", i+1)
		require.LessOrEqual(t, c.Len(), 8)
	}
	_, ok := c.Get("one-off/0")
	require.False(t, ok, "cold entry must be evicted")
}

func TestNilCachesNothing(t *testing.T) {
	t.Parallel()
	c := New[string, int](0)
	require.Nil(t, c)
	c.Put("k", 1)
	_, ok := c.Get("k")
	require.False(t, ok)
	require.Zero(t, c.Len())
}
