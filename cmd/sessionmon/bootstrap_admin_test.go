package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

// TestBootstrapAdminFromPasswordFile is what docker compose does: serve
// starts with no dashboard users and SESSIONMON_DASHBOARD_ADMIN_PASSWORD_FILE
// naming a secret; one can then sign in as admin, with the admin role (it
// may make an API token). Not parallel: it sets the environment.
func TestBootstrapAdminFromPasswordFile(t *testing.T) {
	const password = "a first admin passphrase"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "admin-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(password+"\n"), 0o600))
	t.Setenv("SESSIONMON_DASHBOARD_ADMIN_PASSWORD_FILE", pwFile)
	cfgFile := filepath.Join(dir, "sessionmon.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("log:\n  level: info\n"), 0o600))
	dsn := chtest.DSN(t)
	p := serveWithConfig(t, dsn, filepath.Join(dir, "data"), cfgFile, "ingest", "dashboard")
	api := dashboardAPI(t, p.base, "admin", password)
	status, body := api(http.MethodGet, "/api/v1/overview", nil)
	require.Equal(t, http.StatusOK, status, string(body))
}

func TestBootstrapAdminRefusesAShortPassword(t *testing.T) {
	t.Parallel()
	_, err := bootstrapAdmin("too short")
	require.ErrorContains(t, err, "SESSIONMON_DASHBOARD_ADMIN_PASSWORD")
	require.ErrorContains(t, err, "at least 12 characters")
	u, err := bootstrapAdmin("long enough, surely")
	require.NoError(t, err)
	require.Equal(t, "admin", u.Name)
	require.NotContains(t, u.PasswordHash, "long enough")
}
