package sdkgo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSDKModuleStandsAlone builds an app module outside this repository
// that imports only the SDK, as an app's would, and checks that it gets
// none of the server's dependencies.
func TestSDKModuleStandsAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gomod := "module example.com/shop\n\ngo 1.22\n\n" +
		"require github.com/sessionmon/sessionmon/sdk v0.0.0\n\n" +
		"replace github.com/sessionmon/sessionmon/sdk => " + sdkDir(t) + "\n"
	main := `package main

import (
	"fmt"

	"github.com/sessionmon/sessionmon/sdk"
)

func main() {
	p, err := sdk.NewPseudonymizer("k1", make([]byte, sdk.MinKeyBytes))
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Subject("user-1"), sdk.LoginSucceeded)
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o600))

	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", filepath.Join(dir, "shop"), "."}, {"run", "."}} {
		cmd := exec.CommandContext(t.Context(), "go", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s: %s", strings.Join(args, " "), out)
		if args[0] == "run" {
			require.Contains(t, string(out), "k1:")
			require.Contains(t, string(out), "login.succeeded")
		}
	}

	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	require.NoError(t, err)
	require.Contains(t, string(sum), "github.com/nats-io/nats.go ")
	for _, server := range []string{"github.com/labstack/echo", "github.com/ClickHouse/clickhouse-go", "github.com/prometheus", "github.com/stretchr/testify", "github.com/goccy/go-json"} {
		require.NotContains(t, string(sum), server, "an app importing the SDK gets a dependency of the server")
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	require.NotContains(t, string(mod), "github.com/sessionmon/sessionmon ", "the app requires the server module")
}
