package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// http-addr is another name for metrics-addr: the later level (flag >
// environment > file) wins, and at one level metrics-addr wins.
func TestHTTPAddrIsMetricsAddr(t *testing.T) {
	t.Parallel()
	names := []string{"http-addr", "metrics-addr"}

	c, err := load(t, names, nil, nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9477", c.MetricsAddr)
	require.Empty(t, c.HTTPAddr, "http-addr is not set unless given")

	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want string
	}{
		{"old variable", "", map[string]string{"SESSIONMON_HTTP_ADDR": "0.0.0.0:8081"}, nil, "0.0.0.0:8081"},
		{"old key", "http:\n  addr: 127.0.0.1:8082\n", nil, nil, "127.0.0.1:8082"},
		{"old flag over new variable", "", map[string]string{"SESSIONMON_METRICS_ADDR": "127.0.0.1:9191"}, []string{"--http-addr", "127.0.0.1:8083"}, "127.0.0.1:8083"},
		{"new variable over old variable", "", map[string]string{"SESSIONMON_HTTP_ADDR": "127.0.0.1:8084", "SESSIONMON_METRICS_ADDR": "127.0.0.1:9192"}, nil, "127.0.0.1:9192"},
		{"new key over old key", "http:\n  addr: 127.0.0.1:8085\nmetrics:\n  addr: 127.0.0.1:9193\n", nil, nil, "127.0.0.1:9193"},
		{"new flag over old flag", "", nil, []string{"--metrics-addr", "127.0.0.1:9477", "--http-addr", "127.0.0.1:8086"}, "127.0.0.1:9477"},
	}
	for _, tt := range tests {
		args := tt.args
		if tt.file != "" {
			args = append([]string{"--config", writeFile(t, tt.file)}, args...)
		}
		c, err := load(t, names, args, tt.env)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, c.MetricsAddr, tt.name)
		require.NotEmpty(t, c.HTTPAddr, "%s: the deprecated name is recorded, to warn", tt.name)
	}

	_, err = load(t, names, []string{"--http-addr", "nope"}, nil)
	require.ErrorContains(t, err, "http-addr (SESSIONMON_HTTP_ADDR): must be host:port")
	_, err = load(t, names, []string{"--metrics-addr", "nope"}, nil)
	require.ErrorContains(t, err, "metrics-addr (SESSIONMON_METRICS_ADDR): must be host:port")
}
