package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealthCommand(t *testing.T) {
	// Not parallel: subtests set SESSIONMON_METRICS_ADDR and SESSIONMON_HTTP_ADDR.
	ready := map[string]int{"/readyz": http.StatusServiceUnavailable, "/healthz": http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, ok := ready[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	// Only the port matters: a wildcard listen address is probed on loopback.
	wildcard := "0.0.0.0:" + addr[strings.LastIndex(addr, ":")+1:]

	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderrs []string
	}{
		{name: "ready/not ready", args: []string{"health", "--metrics-addr", addr}, code: exitError,
			stdout: `{"path":"/readyz"}`, stderrs: []string{"status 503", "not healthy"}},
		{name: "live/alive", args: []string{"health", "live", "--metrics-addr", addr}, code: exitOK, stdout: `{"path":"/healthz"}`},
		{name: "live/wildcard address", args: []string{"health", "live", "--metrics-addr", wildcard}, code: exitOK, stdout: `{"path":"/healthz"}`},
		{name: "unknown argument", args: []string{"health", "deep", "--metrics-addr", addr}, code: exitUsage, stderrs: []string{"want ready or live", "Usage: sessionmon health"}},
		{name: "nothing listening", args: []string{"health", "--metrics-addr", freeAddr(t)}, code: exitError, stderrs: []string{"(metrics-addr)", "connect"}},
		{name: "deprecated flag", args: []string{"health", "live", "--http-addr", addr}, code: exitOK, stdout: `{"path":"/healthz"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, t.Context(), tc.args...)
			require.Equal(t, tc.code, code, "stderr: %s", stderr)
			if tc.stdout != "" {
				require.Equal(t, tc.stdout+"\n", stdout)
			}
			for _, s := range tc.stderrs {
				require.Contains(t, stderr, s)
			}
		})
	}
	t.Run("env sets the address", func(t *testing.T) {
		t.Setenv("SESSIONMON_METRICS_ADDR", addr)
		code, stdout, _ := runCmd(t, t.Context(), "health", "live")
		require.Equal(t, exitOK, code)
		require.Contains(t, stdout, "/healthz")
	})
	t.Run("deprecated env sets the address", func(t *testing.T) {
		t.Setenv("SESSIONMON_HTTP_ADDR", addr)
		code, stdout, _ := runCmd(t, t.Context(), "health", "live")
		require.Equal(t, exitOK, code)
		require.Contains(t, stdout, "/healthz")
	})
}

func TestProbeURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/readyz"},
		{":8080", "http://127.0.0.1:8080/readyz"},
		{"[::]:8080", "http://[::1]:8080/readyz"},
		{"sessionmon:9000", "http://sessionmon:9000/readyz"},
	} {
		got, err := probeURL(tc.addr, "/readyz")
		require.NoError(t, err, tc.addr)
		require.Equal(t, tc.want, got, tc.addr)
	}
	_, err := probeURL("8080", "/readyz")
	require.ErrorContains(t, err, "metrics-addr")
}
