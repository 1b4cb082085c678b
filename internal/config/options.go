package config

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Option is one setting: its flag name (also the base of the environment
// variable SESSIONMON_<NAME> and of the config file key <name>), help text,
// and how it is read and written.
type Option struct {
	// Name is the flag name, e.g. "nats-url".
	Name string
	// LegacyYAML is the key path the config file used to set the option
	// with (e.g. "nats.url"), still read with a warning; empty when it was
	// YAML().
	LegacyYAML string
	// Usage is the one-line help.
	Usage string
	// Bool options are flags without a value (--demo).
	Bool bool
	// Secret options have no flag (flags show up in process lists) and may
	// be read from a file named by SESSIONMON_<NAME>_FILE. They are redacted
	// in dumps.
	Secret bool
	// FlagOnly options are read from the command line only, never from the
	// environment or the config file: they choose what one run does.
	FlagOnly bool
	// Short is a one-letter alias of the flag (-o for --format), if any.
	Short string

	get func(*Config) string
	set func(*Config, string) error
}

// EnvName returns the environment variable of an option name.
func EnvName(name string) string {
	return "SESSIONMON_" + strings.ToUpper(YAMLKey(name))
}

// YAMLKey returns the config file key of an option name: the name with
// every - written as _, at the top level of the file (nats-url: nats_url).
func YAMLKey(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// YAML returns the option's key in the config file (see YAMLKey).
func (o Option) YAML() string {
	return YAMLKey(o.Name)
}

func str(name, legacy, usage string, p func(*Config) *string) Option {
	return Option{Name: name, LegacyYAML: legacy, Usage: usage,
		get: func(c *Config) string { return *p(c) },
		set: func(c *Config, v string) error { *p(c) = v; return nil },
	}
}

func secret(name, legacy, usage string, p func(*Config) *string) Option {
	o := str(name, legacy, usage, p)
	o.Secret = true
	return o
}

func flagOnly(o Option) Option {
	o.FlagOnly = true
	return o
}

func boolean(name, legacy, usage string, p func(*Config) *bool) Option {
	return Option{Name: name, LegacyYAML: legacy, Usage: usage, Bool: true,
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

func list(name, legacy, usage string, p func(*Config) *[]string) Option {
	return Option{Name: name, LegacyYAML: legacy, Usage: usage,
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

func float(name, legacy, usage string, p func(*Config) *float64) Option {
	return Option{Name: name, LegacyYAML: legacy, Usage: usage,
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

func dur(name, legacy, usage string, p func(*Config) *time.Duration) Option {
	return Option{Name: name, LegacyYAML: legacy, Usage: usage,
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

func integer[T int | int64](name, legacy, usage string, p func(*Config) *T) Option {
	return Option{Name: name, LegacyYAML: legacy, Usage: usage,
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
// The second argument of str, boolean, ... is the option's deprecated key
// (LegacyYAML); its key in the config file follows from its name (YAML).
var Options = []Option{
	str("data-dir", "", "directory for the embedded NATS server's JetStream store and other local state", func(c *Config) *string { return &c.DataDir }),
	str("log-format", "log.format", "log format: text or json", func(c *Config) *string { return &c.LogFormat }),
	{Name: "log-level", LegacyYAML: "log.level", Usage: "log level: debug, info, warn or error",
		get: func(c *Config) string { return strings.ToLower(c.LogLevel.String()) },
		set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) },
	},

	str("nats-url", "nats.url", "URL of an external NATS server (comma-separated for a cluster); empty runs an embedded server", func(c *Config) *string { return &c.NATS.URL }),
	str("nats-listen", "nats.listen", "client address of the embedded NATS server (apps and the nats CLI connect here, with the credentials in <data-dir>/nats); a loopback address unless nats-listen-tls-cert is set", func(c *Config) *string { return &c.NATS.Listen }),
	str("nats-listen-tls-cert", "nats.listen_tls.cert_file", "TLS certificate file (PEM, with its chain) of the embedded NATS server; required to listen on an address other than loopback", func(c *Config) *string { return &c.NATS.ListenTLSCert }),
	str("nats-listen-tls-key", "nats.listen_tls.key_file", "TLS key file (PEM) of nats-listen-tls-cert", func(c *Config) *string { return &c.NATS.ListenTLSKey }),
	secret("nats-token", "nats.token", "token for an external NATS server", func(c *Config) *string { return &c.NATS.Token }),
	str("nats-user", "nats.user", "user name for an external NATS server", func(c *Config) *string { return &c.NATS.User }),
	secret("nats-password", "nats.password", "password for nats-user", func(c *Config) *string { return &c.NATS.Password }),
	str("nats-creds", "nats.creds_file", "NATS credentials file (JWT and NKey seed); default with the embedded server: the one serve wrote in <data-dir>/nats", func(c *Config) *string { return &c.NATS.CredsFile }),
	str("nats-tls-ca", "nats.tls.ca_file", "CA certificate file to verify the NATS server", func(c *Config) *string { return &c.NATS.CAFile }),
	str("nats-tls-cert", "nats.tls.cert_file", "client certificate file for NATS mutual TLS", func(c *Config) *string { return &c.NATS.CertFile }),
	str("nats-tls-key", "nats.tls.key_file", "client key file for NATS mutual TLS", func(c *Config) *string { return &c.NATS.KeyFile }),

	dur("stream-max-age", "stream.max_age", "how long the events stream keeps an event (e.g. 7d, 72h; 0 keeps forever)", func(c *Config) *time.Duration { return &c.Stream.MaxAge }),
	dur("stream-duplicates", "stream.duplicates", "window in which an event published twice with the same id is stored once (the embedded or external NATS server keeps every event id of the window in memory: ~130 bytes each, up to 3 times over: rate × window; see docs/soak.md)", func(c *Config) *time.Duration { return &c.Stream.Duplicates }),
	integer("stream-max-bytes", "stream.max_bytes", "size limit of the events stream in bytes (0: none); when full, publishers get an error, nothing is dropped", func(c *Config) *int64 { return &c.Stream.MaxBytes }),
	integer("stream-replicas", "stream.replicas", "copies in a NATS cluster of every stream and key-value bucket (events, dead letters, alerts, detector state, redeliveries, undeliverable alerts, locks, dashboard sessions and tokens); serve declares them with it, and no process lowers the copies a stream has (lower them with nats stream edit)", func(c *Config) *int { return &c.Stream.Replicas }),
	integer("event-partitions", "stream.partitions", "subject partitions of the events stream (set the same value in every process; a change applies to new events only)", func(c *Config) *int { return &c.Stream.Partitions }),
	{Name: "detect-partitions", LegacyYAML: "detect_live.partitions", Usage: "events stream partitions this detect process owns, e.g. 0-7 or 0,2,4 (default: all)",
		get: func(c *Config) string { return formatPartitions(c.Detect.Partitions) },
		set: func(c *Config, v string) error { p, err := parsePartitions(v); c.Detect.Partitions = p; return err },
	},
	{Name: "detect-source-detectors", LegacyYAML: "detect_live.source_detectors", Usage: "run the detectors not keyed by subject (credential_stuffing, insecure_cookie, retired_signing_key) over every partition: true, false or auto (true when this process owns every partition); exactly one detect process of a deployment must run them",
		get: func(c *Config) string {
			if c.Detect.SourceDetectors == nil {
				return "auto"
			}
			return strconv.FormatBool(*c.Detect.SourceDetectors)
		},
		set: func(c *Config, v string) error {
			if v = strings.TrimSpace(v); v == "auto" || v == "" {
				c.Detect.SourceDetectors = nil
				return nil
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("must be true, false or auto (got %q)", v)
			}
			c.Detect.SourceDetectors = &b
			return nil
		},
	},
	dur("detect-lease-ttl", "detect_live.lease_ttl", "how long a detect process's lease on the partitions (or the source role) it owns outlives its last renewal (bucket SESSIONMON_DETECT_LEASES): a second process for the same partition waits, and takes over at most this long after the holder dies; the bucket keeps the TTL it was created with", func(c *Config) *time.Duration { return &c.Detect.LeaseTTL }),
	dur("detect-snapshot-interval", "detect_live.snapshot_interval", "how often live detection saves its detectors' state to NATS (bucket SESSIONMON_DETECT_STATE), which a restart restores instead of replaying history; it is also saved at shutdown and after an erasure (0: off, every start replays at most 24 h)", func(c *Config) *time.Duration { return &c.Detect.SnapshotInterval }),

	str("clickhouse-dsn", "clickhouse.dsn", "ClickHouse address, clickhouse://[user@]host:port/database (put the password in SESSIONMON_CLICKHOUSE_PASSWORD, not here)", func(c *Config) *string { return &c.ClickHouseDSN }),
	secret("clickhouse-password", "clickhouse.password", "password of the ClickHouse user", func(c *Config) *string { return &c.ClickHousePassword }),
	str("clickhouse-tls-ca", "clickhouse.tls.ca_file", "CA certificate file to verify the ClickHouse server; turns on TLS (secure=true; use the server's secure port, e.g. 9440)", func(c *Config) *string { return &c.ClickHouseTLSCA }),
	str("clickhouse-cluster", "clickhouse.cluster", "ClickHouse cluster (from remote_servers) to create the schema on: replicated tables, Distributed tables sharded by subject; empty: a single server", func(c *Config) *string { return &c.ClickHouseCluster }),
	// http-addr comes before metrics-addr: when both are set at the same
	// level (both variables, both keys), metrics-addr wins.
	{Name: "http-addr", LegacyYAML: "http.addr", Usage: "deprecated: another name for metrics-addr, kept for one release",
		get: func(c *Config) string { return c.HTTPAddr },
		set: func(c *Config, v string) error { c.HTTPAddr, c.MetricsAddr = v, v; return nil },
	},
	str("metrics-addr", "metrics.addr", "address (host:port) of the HTTP server of /metrics, /healthz and /readyz, apart from the dashboard and the HTTP intake; keep it off the internet", func(c *Config) *string { return &c.MetricsAddr }),
	str("pprof-addr", "serve.pprof_addr", "loopback address (e.g. 127.0.0.1:6060) of a separate HTTP server with Go's net/http/pprof profiles, for investigating memory or CPU; empty: off", func(c *Config) *string { return &c.Serve.PprofAddr }),

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

	boolean("single-event", "bench.single_event", "publish one event per message (the SDK's batching off), to compare with batches", func(c *Config) *bool { return &c.Bench.SingleEvent }),
	boolean("sequential", "bench.sequential", "publish every event first, then ingest, to measure each stage alone", func(c *Config) *bool { return &c.Bench.Sequential }),
	integer("events", "bench.events", "number of events the benchmark publishes", func(c *Config) *int { return &c.Bench.Events }),

	flagOnly(str("input", "detect_offline.input", "NDJSON file of schema v1 events to run the detectors over offline, instead of live (- for standard input)", func(c *Config) *string { return &c.Detect.Input })),
	str("labels", "detect_offline.labels", "labels file of the attacks in --input (as sessionmon simulate writes it): print recall and false positives per detector after the run", func(c *Config) *string { return &c.Detect.Labels }),
	{Name: "format", Short: "o", FlagOnly: true, Usage: "output format of lists and reports: table or json (one JSON document)",
		get: func(c *Config) string { return c.Format },
		set: func(c *Config, v string) error {
			if v = strings.TrimSpace(v); v != "table" && v != "json" {
				return fmt.Errorf("must be table or json (got %q)", v)
			}
			c.Format = v
			return nil
		},
	},
	str("output", "", "file to write results to (default: standard output): one JSON object a line; for creds, the credentials file", func(c *Config) *string { return &c.Output }),

	str("alert", "notify_redeliver.alert", "id of the alert to deliver again", func(c *Config) *string { return &c.Notify.AlertID }),
	str("webhook", "notify_redeliver.webhook", "webhook to deliver to again (default: every webhook that gave up on the alert)", func(c *Config) *string { return &c.Notify.Webhook }),

	boolean("dry-run", "retention_run.dry_run", "retention run: report what would be deleted, delete nothing", func(c *Config) *bool { return &c.RetentionRun.DryRun }),

	str("subject", "subject_request.subject", "pseudonym of the data subject to erase or export (as the SDK sent it)", func(c *Config) *string { return &c.SubjectRequest.Subject }),
	str("requested-by", "subject_request.requested_by", "who asks for the erasure or changes the legal hold, recorded with it (default: the OS user)", func(c *Config) *string { return &c.SubjectRequest.RequestedBy }),
	str("reason", "subject_request.reason", "hold set: why the subject's data must be kept (a case or matter reference)", func(c *Config) *string { return &c.SubjectRequest.Reason }),

	str("dir", "creds.dir", "directory of the NATS keys and credentials files (default: <data-dir>/nats, the embedded server's)", func(c *Config) *string { return &c.Creds.Dir }),
	boolean("http", "creds.http", "creds app: make an HTTP intake token for the app (stored hashed in NATS; needs serve, or --nats-url) instead of NATS credentials", func(c *Config) *bool { return &c.Creds.HTTP }),
	str("token-name", "creds.token_name", "creds app --http: a label for the token, shown by creds http-tokens (e.g. web-eu)", func(c *Config) *string { return &c.Creds.TokenName }),
	dur("expires", "creds.expires", "creds app --http: how long the token is valid (at most 730d)", func(c *Config) *time.Duration { return &c.Creds.Expires }),

	str("intake-addr", "intake.addr", "address (host:port) of the standalone HTTP intake, sessionmon intake; serve takes events on its dashboard-addr", func(c *Config) *string { return &c.Intake.Addr }),
	integer("intake-max-in-flight", "intake.max_in_flight", "HTTP intake requests handled at once; more are answered 429 with Retry-After", func(c *Config) *int { return &c.Intake.MaxInFlight }),

	str("file", "publish.file", "NDJSON file of schema v1 events to publish (- for standard input)", func(c *Config) *string { return &c.Publish.File }),

	str("dashboard-addr", "dashboard.addr", "address (host:port) of the dashboard; serve also takes HTTP intake events (POST /v1/events) there", func(c *Config) *string { return &c.Dashboard.Addr }),
	boolean("insecure-dev-cookies", "dashboard.insecure_dev_cookies", "dashboard cookies without __Host- and Secure, for plain-http development on a loopback dashboard-addr only", func(c *Config) *bool { return &c.Dashboard.InsecureDevCookies }),
	secret("dashboard-pseudonym-key", "dashboard.pseudonym_key", "key (32+ bytes) the dashboard pseudonymizes its own events with; default: a random key kept in <data-dir>/dashboard-pseudonym.key", func(c *Config) *string { return &c.Dashboard.PseudonymKey }),
	secret("dashboard-admin-password", "dashboard.admin_password", "password of a first admin user, admin, made when the config file lists no dashboard users (containers: SESSIONMON_DASHBOARD_ADMIN_PASSWORD_FILE=/run/secrets/...); at least 12 characters; ignored once users are configured", func(c *Config) *string { return &c.Dashboard.AdminPassword }),
	secret("dashboard-record-key", "dashboard.record_key", "key (32+ bytes) that authenticates the dashboard's sessions and API tokens stored in NATS; every serve and dashboard process must share it (changing it signs everyone out and voids every API token); default: a random key kept in <data-dir>/dashboard-record.key", func(c *Config) *string { return &c.Dashboard.RecordKey }),
	str("role", "user_add.role", "role of the new dashboard user: viewer, analyst or admin", func(c *Config) *string { return &c.UserAdd.Role }),
	str("password-file", "user_add.password_file", "file holding the new user's password (- for standard input; default: ask on the terminal)", func(c *Config) *string { return &c.UserAdd.PasswordFile }),

	boolean("demo", "serve.demo", "also send demo traffic into the pipeline (see sessionmon demo)", func(c *Config) *bool { return &c.Serve.Demo }),
	integer("demo-users", "demo.users", "number of synthetic users in demo traffic", func(c *Config) *int { return &c.Demo.Users }),
	integer("demo-rate", "demo.rate", "demo events per second", func(c *Config) *int { return &c.Demo.Rate }),
	dur("demo-duration", "demo.duration", "how long to send demo traffic (0: one pass over every scenario, then stop)", func(c *Config) *time.Duration { return &c.Demo.Duration }),
	integer("demo-seed", "demo.seed", "random seed of demo traffic (the same seed gives the same traffic)", func(c *Config) *int64 { return &c.Demo.Seed }),

	str("out", "simulate.out", "directory sessionmon simulate writes events.ndjson, labels.json and geo/*.mmdb into (created if missing)", func(c *Config) *string { return &c.Simulate.Out }),
	integer("seed", "simulate.seed", "random seed of the simulation (the same seed gives the same data)", func(c *Config) *int64 { return &c.Simulate.Seed }),
	integer("users", "simulate.users", "number of simulated users", func(c *Config) *int { return &c.Simulate.Users }),
	integer("days", "simulate.days", "number of simulated days", func(c *Config) *int { return &c.Simulate.Days }),
}

// lookupShort returns the option whose short flag is name.
func lookupShort(name string) (Option, bool) {
	for _, o := range Options {
		if o.Short != "" && o.Short == name {
			return o, true
		}
	}
	return Option{}, false
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

// ParseDuration parses a duration as every setting of sessionmon writes
// it: a Go duration ("90s", "15m", "1h30m") or whole days or weeks ("30d",
// "2w"). It is the one duration syntax of flags, variables and every
// section of the config file.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 || int64(v) > int64(math.MaxInt64/unit) {
				return 0, fmt.Errorf("must be a duration like 90s, 15m, 12h, 30d or 2w (got %q)", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like 90s, 15m, 12h, 30d or 2w (got %q)", s)
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
		out = append(out, slog.String(o.YAML(), v))
	}
	return out
}

// parsePartitions parses a list of partitions and ranges ("0-7,12");
// "all" or "" is nil: every partition.
func parsePartitions(v string) ([]int, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "all" {
		return nil, nil
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, errA := strconv.Atoi(strings.TrimSpace(lo))
		b, errB := a, error(nil)
		if isRange {
			b, errB = strconv.Atoi(strings.TrimSpace(hi))
		}
		if errA != nil || errB != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("must be partitions and ranges between 0 and 1023 like 0-7,12 (got %q)", part)
		}
		for p := a; p <= b; p++ {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// formatPartitions is the inverse of parsePartitions, with runs as ranges.
func formatPartitions(ps []int) string {
	if ps == nil {
		return "all"
	}
	var b strings.Builder
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ps[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(ps[j]))
		}
		i = j + 1
	}
	return b.String()
}
