package detect

import (
	"bufio"
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/alertbus"
	"github.com/sessionmon/sessionmon/internal/testutil/schematest"
	"github.com/sessionmon/sessionmon/schemas"
)

// TestScenarioAlertsMatchSchema: every alert the engine raises in the
// scenarios of detect/testdata, as written offline and as published on the
// alerts stream, validates against schemas/alert.v1.schema.json.
func TestScenarioAlertsMatchSchema(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		in, err := os.ReadFile(path)
		require.NoError(t, err)
		var out bytes.Buffer
		_, err = RunOffline(t.Context(), bytes.NewReader(in), &out, scenarioConfig(t, dir), engClock)
		require.NoError(t, err)
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			require.NoError(t, schematest.ValidateAlert(sc.Bytes()), "offline: %s", sc.Text())
		}
		require.NoError(t, sc.Err())
		for _, a := range runEngine(t, scenarioConfig(t, dir), loadEvents(t, path)) {
			m, err := alertbus.Message(&a)
			require.NoError(t, err)
			require.Equal(t, schemas.AlertSubject(&a), m.Subject)
			require.NoError(t, schematest.ValidateAlert(m.Data), "published: %s", m.Data)
		}
	})
}
