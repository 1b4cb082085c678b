package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigDocInStep keeps docs/configuration.md's table in step with
// Options.
func TestConfigDocInStep(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "docs", "configuration.md")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := UpdateDoc(b)
	require.NoError(t, err)
	if string(want) != string(b) {
		t.Fatalf("docs/configuration.md is out of step with internal/config/options.go; regenerate it with:\n\tgo run ./internal/config/gendoc")
	}
	table := OptionsMarkdown()
	for _, o := range Options {
		if o.FlagOnly {
			require.Contains(t, table, "`--"+o.Name+"`")
			continue
		}
		require.Contains(t, table, "| `"+o.YAML()+"` |", "option %s", o.Name)
		require.Contains(t, table, EnvName(o.Name), "option %s", o.Name)
	}
	require.Contains(t, table, "| none (secret) | `SESSIONMON_NATS_TOKEN` or `SESSIONMON_NATS_TOKEN_FILE` | `nats_token` | none | token for an external NATS server (deprecated key: `nats.token`) |")
	require.Contains(t, table, "| `-o`, `--format` | none (flag only) | none (flag only) | `table` |")
	require.Equal(t, len(Options)+2, strings.Count(table, "\n| "), "one row per option")
}
