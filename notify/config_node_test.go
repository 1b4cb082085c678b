package notify

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
)

// TestParseConfigDurationsInDays: notify reads durations as every section
// does, days and weeks included.
func TestParseConfigDurationsInDays(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("retry_max: 1h\nwebhooks:\n  - {name: a, url: https://x.example, secret_file: /s, give_up_after: 2d}\n  - {name: b, url: https://y.example, secret_file: /s, give_up_after: 1w}\n"))
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, cfg.Webhooks[0].GiveUpAfter)
	require.Equal(t, 7*24*time.Hour, cfg.Webhooks[1].GiveUpAfter)
}

// TestParseConfigChecksDetectorNames: a detector name that is no detector
// is an error naming its line and path, so the webhook can't silently never
// fire.
func TestParseConfigChecksDetectorNames(t *testing.T) {
	t.Parallel()
	known := []string{"brute_force", "impossible_travel"}
	n, err := config.ParseNode([]byte("webhooks:\n  - name: a\n    url: https://x.example\n    secret_file: /s\n    detectors:\n      - brute_force\n      - imposible_travel\n"))
	require.NoError(t, err)
	_, err = ParseConfigNodeWith(n, known)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.EqualError(t, err, `line 7: webhooks[0].detectors[1]: unknown detector "imposible_travel" (known: brute_force, impossible_travel)`)

	_, err = ParseConfigNode(n)
	require.NoError(t, err, "without the detectors, only the form of the names is checked")

	n, err = config.ParseNode([]byte("webhooks: [{name: a, url: https://x.example, secret_file: /s, detectors: [impossible_travel]}]\n"))
	require.NoError(t, err)
	_, err = ParseConfigNodeWith(n, known)
	require.NoError(t, err)
}
