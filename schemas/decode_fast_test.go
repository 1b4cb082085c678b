package schemas

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	jsonv2 "github.com/goccy/go-json/v2"
	"github.com/stretchr/testify/require"
)

// requireFastAgrees checks the fast path's promise on data: what it
// decodes, the full decoder decodes too, into an equal Event.
func requireFastAgrees(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := decodeFast(data)
	if !ok {
		return
	}
	var full Event
	err := jsonv2.Unmarshal(data, &full, decodeOptions)
	require.NoError(t, err, "the fast path accepted what the full decoder rejects: %q", data)
	require.False(t, bytes.Contains(data, nullLiteral) && hasNull(data), "the fast path accepted a null: %q", data)
	require.Equal(t, &full, fast, "%q", data)
}

func TestDecodeFastAgreesWithFullDecoder(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	accepted := 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		if _, ok := decodeFast(data); ok {
			accepted++
		}
		requireFastAgrees(t, data)
		// Every prefix and a few edits of each fixture, to reach the
		// fast path's ways of giving up.
		for i := range data {
			requireFastAgrees(t, data[:i])
			for _, c := range []byte{' ', '"', '\\', '-', '0', 'e', '.', ',', '}', ']', 0x80, 0xff} {
				edit := bytes.Clone(data)
				edit[i] = c
				requireFastAgrees(t, edit)
			}
		}
	}
	require.Positive(t, accepted, "the fast path takes the usual events")
}

func FuzzDecodeFast(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	require.NoError(f, err)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(requireFastAgrees)
}
