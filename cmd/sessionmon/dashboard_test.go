package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/internal/config"
)

func TestDemoDashboardAdmin(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Serve.Demo = true
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	dc, err := dashboardConfig(&cfg, "127.0.0.1:8080", logger)
	require.NoError(t, err)
	require.Len(t, dc.Users, 1)
	require.Equal(t, "admin", dc.Users[0].Name)
	require.Equal(t, dashboard.RoleAdmin, dc.Users[0].Role)
	require.True(t, dc.InsecureDevCookies, "demo on loopback uses dev cookies")

	path := filepath.Join(dir, demoAdminPasswordFile)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	password := strings.TrimSpace(string(b))
	require.GreaterOrEqual(t, len(password), dashboard.MinPasswordLength)
	ok, err := dashboard.VerifyPassword(dc.Users[0].PasswordHash, password)
	require.NoError(t, err)
	require.True(t, ok, "the hash is of the password in the file")
	require.Contains(t, logs.String(), path, "the log names the file")
	require.NotContains(t, logs.String(), password, "the log never holds the password")
	require.Contains(t, logs.String(), "insecure dev cookies")

	// A restarted demo keeps the password.
	dc2, err := dashboardConfig(&cfg, "127.0.0.1:8080", logger)
	require.NoError(t, err)
	ok, err = dashboard.VerifyPassword(dc2.Users[0].PasswordHash, password)
	require.NoError(t, err)
	require.True(t, ok)

	// Not on a public address, and not without --demo.
	dc3, err := dashboardConfig(&cfg, "0.0.0.0:8080", logger)
	require.NoError(t, err)
	require.False(t, dc3.InsecureDevCookies)
	cfg.Serve.Demo = false
	dc4, err := dashboardConfig(&cfg, "127.0.0.1:8080", logger)
	require.NoError(t, err)
	require.Empty(t, dc4.Users)
	require.False(t, dc4.InsecureDevCookies)

	// A password file others can read is refused.
	require.NoError(t, os.Chmod(path, 0o644))
	cfg.Serve.Demo = true
	_, err = dashboardConfig(&cfg, "127.0.0.1:8080", logger)
	require.ErrorContains(t, err, "0600")
}
