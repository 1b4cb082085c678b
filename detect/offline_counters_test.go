package detect

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The running counts end where the run's stats do.
func TestRunOfflineCounters(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "brute_force_fires")
	in, err := os.ReadFile(filepath.Join(dir, "events.ndjson"))
	require.NoError(t, err)
	var (
		out bytes.Buffer
		c   OfflineCounters
	)
	stats, err := RunOffline(t.Context(), bytes.NewReader(in), &out, scenarioConfig(t, dir), engClock,
		append(scenarioOptions(t, dir), WithOfflineCounters(&c))...)
	require.NoError(t, err)
	require.Positive(t, stats.Events)
	require.Equal(t, stats.Lines, c.Lines.Load())
	require.Equal(t, stats.Events, c.Events.Load())
	require.Positive(t, c.Alerts.Load(), "the scenario fires")
	require.LessOrEqual(t, c.Alerts.Load(), stats.Engine.Alerts, "alerts flushed at the end come on top")
}
