package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Option is one setting: its flag name (also the base of the environment
// variable SESSIONMON_<NAME> and of the YAML key), help text, and how it is
// read and written.
type Option struct {
	// Name is the flag name, e.g. "nats-url".
	Name string
	// YAML is the key path in the config file, e.g. "nats.url".
	YAML string
	// Usage is the one-line help.
	Usage string
	// Bool options are flags without a value (--demo).
	Bool bool
	// Secret options have no flag (flags show up in process lists) and may
	// be read from a file named by SESSIONMON_<NAME>_FILE. They are redacted
	// in dumps.
	Secret bool

	get func(*Config) string
	set func(*Config, string) error
}

// EnvName returns the environment variable of an option name.
func EnvName(name string) string {
	return "SESSIONMON_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func str(name, yaml, usage string, p func(*Config) *string) Option {
	return Option{Name: name, YAML: yaml, Usage: usage,
		get: func(c *Config) string { return *p(c) },
		set: func(c *Config, v string) error { *p(c) = v; return nil },
	}
}

func secret(name, yaml, usage string, p func(*Config) *string) Option {
	o := str(name, yaml, usage, p)
	o.Secret = true
	return o
}

func boolean(name, yaml, usage string, p func(*Config) *bool) Option {
	return Option{Name: name, YAML: yaml, Usage: usage, Bool: true,
		get: func(c *Config) string { return strconv.FormatBool(*p(c)) },
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("must be true or false (got %q)", v)
			}
			*p(c) = b
			return nil
		},
	}
}

func list(name, yaml, usage string, p func(*Config) *[]string) Option {
	return Option{Name: name, YAML: yaml, Usage: usage,
		get: func(c *Config) string { return strings.Join(*p(c), ",") },
		set: func(c *Config, v string) error {
			var out []string
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			*p(c) = out
			return nil
		},
	}
}

func float(name, yaml, usage string, p func(*Config) *float64) Option {
	return Option{Name: name, YAML: yaml, Usage: usage,
		get: func(c *Config) string { return strconv.FormatFloat(*p(c), 'g', -1, 64) },
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("must be a number (got %q)", v)
			}
			*p(c) = f
			return nil
		},
	}
}

func dur(name, yaml, usage string, p func(*Config) *time.Duration) Option {
	return Option{Name: name, YAML: yaml, Usage: usage,
		get: func(c *Config) string { return formatDuration(*p(c)) },
		set: func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil {
				return err
			}
			*p(c) = d
			return nil
		},
	}
}

func integer[T int | int64](name, yaml, usage string, p func(*Config) *T) Option {
	return Option{Name: name, YAML: yaml, Usage: usage,
		get: func(c *Config) string { return strconv.FormatInt(int64(*p(c)), 10) },
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("must be an integer (got %q)", v)
			}
			*p(c) = T(n)
			return nil
		},
	}
}

// Options lists every setting of sessionmon, with its default in Default().
var Options = []Option{
	str("data-dir", "data_dir", "directory for the embedded NATS server's JetStream store and other local state", func(c *Config) *string { return &c.DataDir }),
	str("log-format", "log.format", "log format: text or json", func(c *Config) *string { return &c.LogFormat }),
	{Name: "log-level", YAML: "log.level", Usage: "log level: debug, info, warn or error",
		get: func(c *Config) string { return strings.ToLower(c.LogLevel.String()) },
		set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) },
	},

	str("nats-url", "nats.url", "URL of an external NATS server (comma-separated for a cluster); empty runs an embedded server", func(c *Config) *string { return &c.NATS.URL }),
	str("nats-listen", "nats.listen", "client address of the embedded NATS server (apps and the nats CLI connect here)", func(c *Config) *string { return &c.NATS.Listen }),
	secret("nats-token", "nats.token", "token for an external NATS server", func(c *Config) *string { return &c.NATS.Token }),
	str("nats-user", "nats.user", "user name for an external NATS server", func(c *Config) *string { return &c.NATS.User }),
	secret("nats-password", "nats.password", "password for nats-user", func(c *Config) *string { return &c.NATS.Password }),
	str("nats-creds", "nats.creds_file", "NATS credentials file (JWT and NKey seed)", func(c *Config) *string { return &c.NATS.CredsFile }),
	str("nats-tls-ca", "nats.tls.ca_file", "CA certificate file to verify the NATS server", func(c *Config) *string { return &c.NATS.CAFile }),
	str("nats-tls-cert", "nats.tls.cert_file", "client certificate file for NATS mutual TLS", func(c *Config) *string { return &c.NATS.CertFile }),
	str("nats-tls-key", "nats.tls.key_file", "client key file for NATS mutual TLS", func(c *Config) *string { return &c.NATS.KeyFile }),

	dur("stream-max-age", "stream.max_age", "how long the events stream keeps an event (e.g. 7d, 72h; 0 keeps forever)", func(c *Config) *time.Duration { return &c.Stream.MaxAge }),
	dur("stream-duplicates", "stream.duplicates", "window in which an event published twice with the same id is stored once", func(c *Config) *time.Duration { return &c.Stream.Duplicates }),
	integer("stream-max-bytes", "stream.max_bytes", "size limit of the events stream in bytes (0: none); when full, publishers get an error, nothing is dropped", func(c *Config) *int64 { return &c.Stream.MaxBytes }),
	integer("stream-replicas", "stream.replicas", "copies of the events stream in a NATS cluster", func(c *Config) *int { return &c.Stream.Replicas }),

	str("clickhouse-dsn", "clickhouse.dsn", "ClickHouse address, clickhouse://[user@]host:port/database (put the password in SESSIONMON_CLICKHOUSE_PASSWORD, not here)", func(c *Config) *string { return &c.ClickHouseDSN }),
	secret("clickhouse-password", "clickhouse.password", "password of the ClickHouse user", func(c *Config) *string { return &c.ClickHousePassword }),
	str("http-addr", "http.addr", "address of the HTTP server (health, metrics)", func(c *Config) *string { return &c.HTTPAddr }),

	integer("ingest-batch-size", "ingest.batch_size", "events per ClickHouse insert (a batch is written when full or old enough)", func(c *Config) *int { return &c.Ingest.BatchSize }),
	dur("ingest-batch-age", "ingest.batch_age", "longest time an event waits in a batch before it is written", func(c *Config) *time.Duration { return &c.Ingest.BatchAge }),
	integer("ingest-max-ack-pending", "ingest.max_ack_pending", "events delivered to ingest and not yet acknowledged, at most (bounds memory)", func(c *Config) *int { return &c.Ingest.MaxAckPending }),
	dur("ingest-ack-wait", "ingest.ack_wait", "time after which an unacknowledged event is redelivered", func(c *Config) *time.Duration { return &c.Ingest.AckWait }),

	list("geo-city-db", "geo.city_dbs", "GeoIP2/GeoLite2-City or DB-IP city .mmdb files, comma-separated (DB-IP has separate IPv4 and IPv6 files)", func(c *Config) *[]string { return &c.Geo.CityDBs }),
	list("geo-asn-db", "geo.asn_dbs", "GeoLite2-ASN or DB-IP ASN .mmdb files, comma-separated", func(c *Config) *[]string { return &c.Geo.ASNDBs }),
	str("geo-anonymous-db", "geo.anonymous_ip_db", "GeoIP2-Anonymous-IP .mmdb file (optional; marks VPN, proxy, hosting and Tor networks)", func(c *Config) *string { return &c.Geo.AnonymousIPDB }),
	float("geo-default-accuracy-km", "geo.default_accuracy_km", "accuracy radius in km for databases that have none (DB-IP)", func(c *Config) *float64 { return &c.Geo.DefaultAccuracyKM }),

	dur("dlq-max-age", "dlq.max_age", "how long dead letters are kept", func(c *Config) *time.Duration { return &c.DLQ.MaxAge }),
	integer("limit", "dlq.limit", "number of dead letters to show", func(c *Config) *int { return &c.DLQ.Limit }),

	boolean("sequential", "bench.sequential", "publish every event first, then ingest, to measure each stage alone", func(c *Config) *bool { return &c.Bench.Sequential }),
	integer("events", "bench.events", "number of events the benchmark publishes", func(c *Config) *int { return &c.Bench.Events }),

	str("input", "detect_offline.input", "NDJSON file of schema v1 events to run the detectors over (- for standard input)", func(c *Config) *string { return &c.Detect.Input }),
	str("output", "output", "file to write results to, one JSON object a line (default: standard output)", func(c *Config) *string { return &c.Output }),

	str("alert", "notify_redeliver.alert", "id of the alert to deliver again", func(c *Config) *string { return &c.Notify.AlertID }),
	str("webhook", "notify_redeliver.webhook", "webhook to deliver to again (default: every webhook that gave up on the alert)", func(c *Config) *string { return &c.Notify.Webhook }),

	boolean("dry-run", "retention_run.dry_run", "retention run: report what would be deleted, delete nothing", func(c *Config) *bool { return &c.RetentionRun.DryRun }),

	str("subject", "subject_request.subject", "pseudonym of the data subject to erase or export (as the SDK sent it)", func(c *Config) *string { return &c.SubjectRequest.Subject }),

	str("file", "publish.file", "NDJSON file of schema v1 events to publish (- for standard input)", func(c *Config) *string { return &c.Publish.File }),

	boolean("demo", "serve.demo", "also send demo traffic into the pipeline (see sessionmon demo)", func(c *Config) *bool { return &c.Serve.Demo }),
	integer("demo-users", "demo.users", "number of synthetic users in demo traffic", func(c *Config) *int { return &c.Demo.Users }),
	integer("demo-rate", "demo.rate", "demo events per second", func(c *Config) *int { return &c.Demo.Rate }),
	dur("demo-duration", "demo.duration", "how long to send demo traffic (0: one pass over every scenario, then stop)", func(c *Config) *time.Duration { return &c.Demo.Duration }),
	integer("demo-seed", "demo.seed", "random seed of demo traffic (the same seed gives the same traffic)", func(c *Config) *int64 { return &c.Demo.Seed }),
}

// Lookup returns the option with the given flag name.
func Lookup(name string) (Option, bool) {
	for _, o := range Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// ParseDuration parses a Go duration and also whole days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("must be a duration like 90s, 15m, 12h or 30d (got %q)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like 90s, 15m, 12h or 30d (got %q)", s)
	}
	return d, nil
}

func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// Dump returns every option's effective value, secrets redacted, for logs
// and `--print-config`.
func (c *Config) Dump() []slog.Attr {
	out := make([]slog.Attr, 0, len(Options))
	for _, o := range Options {
		v := o.get(c)
		if o.Secret && v != "" {
			v = "[redacted]"
		}
		out = append(out, slog.String(o.YAML, v))
	}
	return out
}
