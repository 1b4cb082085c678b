package detect

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyTableEvictsOldestDeterministically(t *testing.T) {
	t.Parallel()
	tab := newKeyTable(16, func(v int64) int64 { return v })
	for i := range int64(16) {
		tab.put(string(rune('a'+i)), 100-i) // "p" is the oldest
	}
	tab.put("new", 200)
	require.Equal(t, 16, tab.size())
	_, ok := tab.get("p")
	require.False(t, ok)
	_, ok = tab.get("a")
	require.True(t, ok)
	tab.put("a", 300) // an update never evicts
	require.Equal(t, 16, tab.size())
}
