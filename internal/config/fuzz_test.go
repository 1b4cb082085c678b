package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadFile feeds any bytes to the YAML config file loader: it never
// panics, it either fails with an error or returns a config that passes
// Validate, and it never echoes a secret given in the environment.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{
		"",
		"nats:\n  url: nats://127.0.0.1:4222\n",
		"log:\n  level: debug\n  format: json\n",
		"clickhouse:\n  dsn: clickhouse://127.0.0.1:9000/sessionmon\n",
		"stream:\n  max_age: 7d\n",
		"nats:\n  password: oops\n",
		"detect:\n  impossible_travel:\n    max_speed_kmh: 900\n",
		"retention:\n  periods:\n    events: 30d\n",
		"[1, 2",
		"a: &a [*a]\n",
		"http:\n  addr: ':99999'\n",
		"nats_url: nats://127.0.0.1:4222\nstream_max_age: 7d\nlog_level: debug\n",
		"event_partitions: 8\nstream:\n  partitions: 16\n",
		"dashboard_addr: 127.0.0.1:8080\ndashboard:\n  addr: 127.0.0.1:8081\n  users: []\n",
		"demo: {users: 20}\nhttp: true\n",
	} {
		f.Add([]byte(s))
	}
	const secret = "fuzz-secret-value-7f3a"
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range Options {
			names = append(names, o.Name)
		}
		l := &Loader{Names: names, Getenv: func(k string) (string, bool) {
			if k == EnvName("clickhouse-password") {
				return secret, true
			}
			return "", false
		}}
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		l.Register(fs)
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		cfg, err := l.Load(fs)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error echoes a secret: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load returned a config that fails Validate: %v", err)
		}
	})
}
