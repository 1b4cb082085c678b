// Package config builds sessionmon's one Config from, in this precedence,
// command-line flags, SESSIONMON_* environment variables, an optional YAML
// file and the defaults. Every option is declared once, in options.go, with
// its flag, variable and YAML key; secrets have no flag and may be given as
// a file (SESSIONMON_X_FILE).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is every setting of sessionmon, parsed into typed fields.
type Config struct {
	// ConfigFile is the YAML file the other settings were read from, if any.
	ConfigFile string
	// Warnings are the deprecated keys ConfigFile sets options with, one
	// for each key, for the caller to report once it can (they are not
	// errors: the values apply).
	Warnings []Warning

	DataDir   string
	LogFormat string
	LogLevel  slog.Level

	NATS   NATS
	Stream Stream
	// Creds configures the creds command.
	Creds Creds
	// Intake configures the HTTP intake.
	Intake Intake

	ClickHouseDSN      string
	ClickHousePassword string
	// ClickHouseTLSCA is a CA certificate file to verify the ClickHouse
	// server with; setting it turns TLS on.
	ClickHouseTLSCA string
	// ClickHouseCluster, when set, is the ClickHouse cluster (remote_servers)
	// the schema is created on: replicated tables and Distributed tables
	// sharded by subject. Empty: single-node mode.
	ClickHouseCluster string
	// MetricsAddr is the listen address of /metrics, /healthz and /readyz
	// of every long-running command, and the address sessionmon health
	// probes.
	MetricsAddr string
	// HTTPAddr is the deprecated http-addr: setting it sets MetricsAddr
	// too. Empty when it is not set.
	HTTPAddr string

	Ingest Ingest
	Geo    Geo
	DLQ    DLQ

	// DetectYAML is the detect: section of the config file, as YAML, for
	// detect.ParseConfig (empty: the detectors' defaults).
	DetectYAML []byte
	Detect     Detect

	// NotifyYAML is the notify: section of the config file, as YAML, for
	// alert.ParseConfig (empty: no webhooks).
	NotifyYAML []byte
	Notify     Notify

	// RetentionYAML is the retention: section of the config file, as YAML,
	// for package retention (empty: its defaults).
	RetentionYAML []byte
	RetentionRun  RetentionRun
	// DashboardYAML is the dashboard: section of the config file without
	// the deprecated keys of options (addr, insecure_dev_cookies, ...), as YAML,
	// for dashboard.ParseConfig (empty: its defaults, no users).
	DashboardYAML []byte
	Dashboard     Dashboard
	// UserAdd configures `sessionmon user add`.
	UserAdd UserAdd

	// sections are the detect, notify, retention and dashboard sections
	// of the config file, as read (see Section).
	sections map[string]*yaml.Node
	// root is the config file's top-level mapping, as read.
	root *yaml.Node

	// SubjectRequest is a data subject's request (erase, export).
	SubjectRequest SubjectRequest

	// Output is the file a command writes its results to (detect: alerts,
	// demo: events); empty or "-" is standard output.
	Output string
	// Format is how list and report commands print: "table" or "json".
	Format string

	Serve   Serve
	Publish Publish
	Demo    Demo
	Bench   Bench
	// Simulate configures `sessionmon simulate`.
	Simulate Simulate
}

// Bench configures `sessionmon bench`.
type Bench struct {
	Events      int
	Sequential  bool
	SingleEvent bool
}

// Serve configures `sessionmon serve`.
type Serve struct {
	// Demo also runs the demo traffic generator inside serve.
	Demo bool
	// PprofAddr is the loopback address of the profiling server
	// (net/http/pprof); empty: none. Profiles reveal memory contents, so
	// it is never on the metrics listener, which may be reachable.
	PprofAddr string
}

// NATS says how to reach NATS, or how to run the embedded server.
type NATS struct {
	// URL of an external NATS server; empty runs the embedded one.
	URL string
	// Listen is the embedded server's client address.
	Listen string
	// ListenTLSCert and ListenTLSKey turn on TLS for the embedded
	// server's clients (required on a non-loopback Listen).
	ListenTLSCert string
	ListenTLSKey  string
	// Token, User, Password and CredsFile authenticate to the server. With
	// the embedded server and none of them, a command uses the credentials
	// files serve wrote in <data-dir>/nats.
	Token     string
	User      string
	Password  string
	CredsFile string
	// DefaultCredsFile is not an option: a command that talks to the
	// embedded server of its data-dir sets it to the credentials file
	// serve wrote there, used when none of the above is set.
	DefaultCredsFile string
	// CAFile, CertFile, KeyFile configure TLS to an external server.
	CAFile   string
	CertFile string
	KeyFile  string
}

// ClickHouseURL returns the ClickHouse DSN with ClickHousePassword, when
// set, as the password of its user (default "default"), and with
// ClickHouseTLSCA, when set, as secure=true and tls_ca_file (the DSN
// parameter package chstore reads). Keep the result out of logs and errors.
func (c *Config) ClickHouseURL() string {
	if c.ClickHousePassword == "" && c.ClickHouseTLSCA == "" {
		return c.ClickHouseDSN
	}
	u, err := url.Parse(c.ClickHouseDSN)
	if err != nil {
		return c.ClickHouseDSN
	}
	if c.ClickHousePassword != "" {
		user := "default"
		if u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, c.ClickHousePassword)
	}
	if c.ClickHouseTLSCA != "" {
		q := u.Query()
		q.Set("secure", "true")
		q.Set("tls_ca_file", c.ClickHouseTLSCA)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// ClientURL is where a client subcommand connects: the external server, or
// the embedded server of a running 'sessionmon serve'.
func (n NATS) ClientURL() string {
	if n.URL != "" {
		return n.URL
	}
	if n.ListenTLSCert != "" {
		return "tls://" + n.Listen
	}
	return "nats://" + n.Listen
}

// Embedded reports whether sessionmon runs its own NATS server.
func (n NATS) Embedded() bool { return n.URL == "" }

// Creds configures the creds command.
type Creds struct {
	// Dir holds the NATS keys and credentials files; empty: the embedded
	// server's, <data-dir>/nats.
	Dir string
	// HTTP makes an HTTP intake token instead of NATS credentials.
	HTTP bool
	// TokenName labels an intake token.
	TokenName string
	// Expires is how long an intake token is valid.
	Expires time.Duration
}

// Intake configures the HTTP intake (POST /v1/events).
type Intake struct {
	// Addr is the listen address of the standalone intake (sessionmon
	// intake); serve takes events on its dashboard's address.
	Addr string
	// MaxInFlight is how many intake requests are handled at once.
	MaxInFlight int
}

// Stream holds the limits of the events stream.
type Stream struct {
	MaxAge     time.Duration
	Duplicates time.Duration
	MaxBytes   int64
	Replicas   int
	// Partitions is the number of subject partitions of the events stream.
	Partitions int
}

// Ingest tunes the ingest worker.
type Ingest struct {
	BatchSize     int
	BatchAge      time.Duration
	MaxAckPending int
	AckWait       time.Duration
}

// Geo names the GeoIP databases (MaxMind .mmdb format) used to enrich
// events that have an ip_prefix but no location.
type Geo struct {
	CityDBs           []string
	ASNDBs            []string
	AnonymousIPDB     string
	DefaultAccuracyKM float64
}

// DLQ configures the dead-letter stream and `sessionmon dlq`.
type DLQ struct {
	MaxAge time.Duration
	Limit  int
}

// Notify configures `sessionmon notify redeliver`.
type Notify struct {
	AlertID string
	Webhook string
}

// Detect configures `sessionmon detect` (offline mode).
type Detect struct {
	Input string
	// Labels is the labels file of the attacks in Input (sessionmon
	// simulate's labels.json): with it, the offline run reports detection
	// quality. Empty: none.
	Labels string
	// Partitions are the events stream partitions a live detect process
	// owns; nil: all of them.
	Partitions []int
	// SourceDetectors runs the detectors that are not keyed by subject
	// (credential stuffing, ...) over every partition; nil: only when the
	// process owns every partition.
	SourceDetectors *bool
	// SnapshotInterval is how often a live detect process saves its
	// detectors' state to NATS; 0 turns snapshots off.
	SnapshotInterval time.Duration
	// LeaseTTL is how long the lease of a live detect process on what it
	// owns outlives its last renewal.
	LeaseTTL time.Duration
}

// OwnedPartitions returns Partitions as detect-partitions takes them
// ("0-7,9"), or "all".
func (d Detect) OwnedPartitions() string { return formatPartitions(d.Partitions) }

// Publish configures `sessionmon publish`.
type Publish struct {
	File string
}

// Demo configures `sessionmon demo`.
type Demo struct {
	Users    int
	Duration time.Duration
	Rate     int
	Seed     int64
}

// Simulate configures `sessionmon simulate`.
type Simulate struct {
	// Out is the directory the simulation is written to.
	Out   string
	Seed  int64
	Users int
	Days  int
}

// RetentionRun configures `sessionmon retention run`.
type RetentionRun struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
}

// Dashboard holds the dashboard's options; the rest of its configuration
// (users, timeouts) is DashboardYAML.
type Dashboard struct {
	// Addr is the dashboard's listen address.
	Addr string
	// InsecureDevCookies drops __Host- and Secure from the dashboard's
	// cookies (plain-http development on loopback only).
	InsecureDevCookies bool
	// PseudonymKey is the key of the dashboard's own events (secret);
	// empty: a key kept in <data-dir>/dashboard-pseudonym.key.
	PseudonymKey string
	// RecordKey authenticates the dashboard's session and API token
	// records in NATS (secret); empty: a key kept in
	// <data-dir>/dashboard-record.key.
	RecordKey string
	// AdminPassword (secret) makes a first admin user, "admin", when the
	// config file names no dashboard users: for containers, whose
	// operators cannot run `sessionmon user add` before the first start.
	AdminPassword string
}

// UserAdd configures `sessionmon user add`.
type UserAdd struct {
	Role         string
	PasswordFile string
}

// SubjectRequest configures `sessionmon erase`, `sessionmon export` and
// `sessionmon hold`.
type SubjectRequest struct {
	// Subject is the subject's pseudonym.
	Subject string
	// RequestedBy names who asks for an erasure or changes a legal hold
	// (default: the OS user).
	RequestedBy string
	// Reason says why a legal hold is set.
	Reason string
}

// Default returns the configuration out of the box.
func Default() Config {
	return Config{
		DataDir:   "./data",
		LogFormat: "text",
		LogLevel:  slog.LevelInfo,
		NATS: NATS{
			Listen: "127.0.0.1:4222",
		},
		Stream: Stream{
			MaxAge: 7 * 24 * time.Hour,
			// The stream's index of message ids costs ~130 bytes per
			// event in the window, held up to 3 times over by
			// nats-server (docs/soak.md): 2h at 5,000 events/s is
			// gigabytes. SDK retries come within seconds.
			Duplicates: 2 * time.Minute,
			Replicas:   1,
			Partitions: 16,
		},
		ClickHouseDSN: "clickhouse://127.0.0.1:9000/sessionmon",
		MetricsAddr:   "127.0.0.1:9477",
		Dashboard:     Dashboard{Addr: "127.0.0.1:8080"},
		Ingest: Ingest{
			BatchSize:     100000,
			BatchAge:      time.Second,
			MaxAckPending: 200000,
			AckWait:       60 * time.Second,
		},
		Geo:    Geo{DefaultAccuracyKM: 100},
		Detect: Detect{SnapshotInterval: 5 * time.Minute, LeaseTTL: 15 * time.Second},
		Bench:  Bench{Events: 1_000_000},
		DLQ:    DLQ{MaxAge: 7 * 24 * time.Hour, Limit: 20},
		Format: "table",
		Creds:  Creds{Expires: 365 * 24 * time.Hour},
		Intake: Intake{Addr: "127.0.0.1:8090", MaxInFlight: 64},
		Demo: Demo{
			Users:    500,
			Duration: 0,
			Rate:     200,
			Seed:     1,
		},
		Simulate: Simulate{Seed: 1, Users: 3000, Days: 2},
	}
}

// clickHouseCluster is the form of a cluster name chstore splices into SQL.
var clickHouseCluster = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate checks every field and the rules between them and returns all
// problems at once, each naming the environment variable to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(opt, format string, args ...any) {
		errs = append(errs, &OptionError{Name: opt, Msg: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "must be text or json (got %q)", c.LogFormat)
	}
	if c.NATS.URL != "" {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || p.Host == "" || !oneOf(p.Scheme, "nats", "tls", "ws", "wss") {
				bad("nats-url", "must be a nats://, tls://, ws:// or wss:// URL (comma-separated for a cluster)")
				break
			}
		}
	} else if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
		bad("nats-listen", "must be host:port (got %q)", c.NATS.Listen)
	}
	if c.NATS.Token != "" && (c.NATS.User != "" || c.NATS.CredsFile != "") {
		bad("nats-token", "use one of token, user/password or a credentials file")
	}
	if (c.NATS.User == "") != (c.NATS.Password == "") {
		bad("nats-user", "user and password go together")
	}
	if (c.NATS.ListenTLSCert == "") != (c.NATS.ListenTLSKey == "") {
		bad("nats-listen-tls-cert", "the embedded server's TLS certificate needs its key (nats-listen-tls-key, %s), and the reverse", EnvName("nats-listen-tls-key"))
	}
	if (c.NATS.CertFile == "") != (c.NATS.KeyFile == "") {
		bad("nats-tls-cert", "a client certificate needs its key (and the reverse)")
	}
	if c.Stream.MaxAge < 0 {
		bad("stream-max-age", "must not be negative")
	}
	if c.Stream.Duplicates <= 0 {
		bad("stream-duplicates", "must be positive: it is the window in which a repeated event id is dropped")
	} else if c.Stream.MaxAge > 0 && c.Stream.Duplicates > c.Stream.MaxAge {
		bad("stream-duplicates", "must not be longer than stream-max-age")
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		bad("stream-replicas", "must be between 1 and 5")
	}
	if c.Stream.Partitions < 1 || c.Stream.Partitions > 1024 {
		bad("event-partitions", "must be between 1 and 1024")
	}
	for _, p := range c.Detect.Partitions {
		if p >= c.Stream.Partitions {
			bad("detect-partitions", "partition %d does not exist: event-partitions is %d (partitions are 0 to %d)", p, c.Stream.Partitions, c.Stream.Partitions-1)
			break
		}
	}
	if d := c.Detect.SnapshotInterval; d < 0 || (d > 0 && d < time.Second) {
		bad("detect-snapshot-interval", "must be 0 (off) or at least 1s (got %s)", d)
	}
	if d := c.Detect.LeaseTTL; d < time.Second || d > 10*time.Minute {
		bad("detect-lease-ttl", "must be between 1s and 10m (got %s)", d)
	}
	if u, err := url.Parse(c.ClickHouseDSN); err != nil || !oneOf(u.Scheme, "clickhouse", "tcp", "http", "https") {
		bad("clickhouse-dsn", "must be a clickhouse://host:port/database URL")
	}
	if c.ClickHouseCluster != "" && !clickHouseCluster.MatchString(c.ClickHouseCluster) {
		bad("clickhouse-cluster", "must be a cluster name of letters, digits and _ (got %q)", c.ClickHouseCluster)
	}
	metricsName := "metrics-addr"
	if c.HTTPAddr != "" && c.HTTPAddr == c.MetricsAddr {
		metricsName = "http-addr"
	}
	if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
		bad(metricsName, "must be host:port (got %q)", c.MetricsAddr)
	}
	if c.Serve.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.Serve.PprofAddr); err != nil {
			bad("pprof-addr", "must be host:port (got %q)", c.Serve.PprofAddr)
		} else if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
			bad("pprof-addr", "must be a loopback address such as 127.0.0.1:6060: profiles expose memory contents (got %q)", c.Serve.PprofAddr)
		}
	}
	if _, _, err := net.SplitHostPort(c.Dashboard.Addr); err != nil {
		bad("dashboard-addr", "must be host:port (got %q)", c.Dashboard.Addr)
	}
	if c.Dashboard.PseudonymKey != "" && len(c.Dashboard.PseudonymKey) < 32 {
		bad("dashboard-pseudonym-key", "must be at least 32 bytes")
	}
	if c.Dashboard.RecordKey != "" && len(c.Dashboard.RecordKey) < 32 {
		bad("dashboard-record-key", "must be at least 32 bytes")
	}
	if c.Ingest.BatchSize < 1 || c.Ingest.BatchSize > 1_000_000 {
		bad("ingest-batch-size", "must be between 1 and 1000000")
	}
	if c.Ingest.BatchAge <= 0 {
		bad("ingest-batch-age", "must be positive")
	}
	if c.Ingest.MaxAckPending < 2*c.Ingest.BatchSize {
		bad("ingest-max-ack-pending", "must be at least twice ingest-batch-size (%d), so one batch is written while the next fills", c.Ingest.BatchSize)
	}
	if c.Ingest.AckWait < 2*c.Ingest.BatchAge {
		bad("ingest-ack-wait", "must be at least twice ingest-batch-age")
	}
	if c.Geo.DefaultAccuracyKM <= 0 {
		bad("geo-default-accuracy-km", "must be positive")
	}
	if c.DLQ.MaxAge <= 0 {
		bad("dlq-max-age", "must be positive")
	}
	if c.DLQ.Limit < 1 {
		bad("limit", "must be at least 1")
	}
	if c.Creds.Expires <= 0 || c.Creds.Expires > 730*24*time.Hour {
		bad("expires", "must be between 1s and 730d")
	}
	if c.Intake.MaxInFlight < 1 {
		bad("intake-max-in-flight", "must be at least 1")
	}
	if c.Bench.Events < 1 {
		bad("events", "must be at least 1")
	}
	if c.Demo.Users < 10 {
		bad("demo-users", "must be at least 10")
	}
	if c.Demo.Rate < 1 {
		bad("demo-rate", "must be at least 1 event per second")
	}
	if c.Demo.Duration < 0 {
		bad("demo-duration", "must not be negative")
	}
	if c.Simulate.Users < 1 {
		bad("users", "must be at least 1")
	}
	if c.Simulate.Days < 1 {
		bad("days", "must be at least 1")
	}
	return errors.Join(errs...)
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}
