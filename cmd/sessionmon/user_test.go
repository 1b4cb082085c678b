package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/internal/config"
)

func TestUserAdd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("a long enough passphrase\n"), 0o600))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("tooshort\n"), 0o600))

	runAdd := func(args []string, role, file string) (string, error) {
		cfg := config.Default()
		cfg.UserAdd = config.UserAdd{Role: role, PasswordFile: file}
		var out, errOut bytes.Buffer
		err := runUser(context.Background(), &env{cfg: &cfg, stdout: &out, stderr: &errOut, args: args})
		return out.String(), err
	}

	out, err := runAdd([]string{"add", "alice"}, "admin", pwFile)
	require.NoError(t, err)
	require.NotContains(t, out, "passphrase", "the password is never printed")
	// The printed entry, pasted under dashboard.users, is a valid config.
	var entry strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "#") {
			entry.WriteString("  " + line + "\n")
		}
	}
	cfg, err := dashboard.ParseConfig([]byte("users:\n" + entry.String()))
	require.NoError(t, err, out)
	require.Len(t, cfg.Users, 1)
	require.Equal(t, "alice", cfg.Users[0].Name)
	require.Equal(t, dashboard.RoleAdmin, cfg.Users[0].Role)
	ok, err := dashboard.VerifyPassword(cfg.Users[0].PasswordHash, "a long enough passphrase")
	require.NoError(t, err)
	require.True(t, ok)

	tests := []struct {
		name       string
		args       []string
		role, file string
		want       string
	}{
		{name: "weak password", args: []string{"add", "bob"}, role: "viewer", file: short, want: "password: must be at least 12 characters"},
		{name: "bad role", args: []string{"add", "bob"}, role: "root", file: pwFile, want: "--role"},
		{name: "no role", args: []string{"add", "bob"}, file: pwFile, want: "--role"},
		{name: "bad name", args: []string{"add", "bob smith"}, role: "viewer", file: pwFile, want: "NAME"},
		{name: "no name", args: []string{"add"}, role: "viewer", file: pwFile, want: "missing the user's NAME"},
		{name: "missing file", args: []string{"add", "bob"}, role: "viewer", file: filepath.Join(dir, "nope"), want: "--password-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runAdd(tt.args, tt.role, tt.file)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
