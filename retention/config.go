// Package retention enforces storage limitation: it deletes what sessionmon
// stored once its retention period is over, and records every deletion in
// ClickHouse's deletion_log.
//
// Jobs (jobs.go) are plain functions over a *chstore.Store; schedule.go turns
// the configured cron expression and time zone into a schedule; Service
// (service.go) runs them in a long-running process: the scheduled job, the
// erasure worker and the TTL backstop. The Eraser forgets a subject in what
// NATS keeps through a ForgetFunc (detect.ForgetVia).
package retention

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/schemas"
)

// Day is one retention day; periods are whole days because partitions are.
const Day = 24 * time.Hour

// Data sets, the keys of periods:.
const (
	DataSetEvents            = "events"
	DataSetAlerts            = "alerts"
	DataSetAlertStatus       = "alert_status"
	DataSetWebhookDeliveries = "webhook_deliveries"
	// DataSetAuditLog is the dashboard's audit log; Run skips it while its
	// table does not exist yet.
	DataSetAuditLog = "audit_log"
	// DataSetDeadLetters lives in the SESSIONMON_DLQ JetStream stream, whose
	// max age (--dlq-max-age) enforces it; Run does not touch it.
	DataSetDeadLetters = "dead_letters"
)

// DataSets lists every data set sessionmon stores, in processing order.
var DataSets = []string{DataSetEvents, DataSetAlerts, DataSetAlertStatus, DataSetWebhookDeliveries, DataSetAuditLog, DataSetDeadLetters}

// Tables maps the data sets stored in ClickHouse to their tables; dead
// letters live in NATS.
var Tables = map[string]string{
	DataSetEvents:            chstore.TableEvents,
	DataSetAlerts:            chstore.TableAlerts,
	DataSetAlertStatus:       chstore.TableAlertStatus,
	DataSetWebhookDeliveries: chstore.TableWebhookDeliveries,
	DataSetAuditLog:          chstore.TableAuditLog,
}

// Defaults.
const (
	DefaultSchedule  = "30 3 * * *" // every day at 03:30
	DefaultTimeZone  = "UTC"
	DefaultMaxPeriod = 730 * Day
	// DefaultMutationTimeout bounds each wait for ClickHouse mutations.
	DefaultMutationTimeout = time.Hour
	// MaxMutationTimeout is the longest mutation_timeout allowed: runs take
	// a lock that expires after 6 hours.
	MaxMutationTimeout = 6 * time.Hour
)

// DefaultPeriods are the retention periods out of the box.
func DefaultPeriods() map[string]Period {
	return map[string]Period{
		DataSetEvents:            Period(90 * Day),
		DataSetAlerts:            Period(365 * Day),
		DataSetAlertStatus:       Period(365 * Day),
		DataSetWebhookDeliveries: Period(90 * Day),
		DataSetAuditLog:          Period(365 * Day),
		DataSetDeadLetters:       Period(7 * Day),
	}
}

// Period is a retention period, written in YAML as whole days ("30d") or a
// Go duration that is a whole number of days ("720h").
type Period time.Duration

// UnmarshalYAML reads "30d" or "720h".
func (p *Period) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: period must be a string like 30d", n.Line)
	}
	d, err := parsePeriod(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = Period(d)
	return nil
}

// String formats p as days ("30d") when it is whole days.
func (p Period) String() string {
	d := time.Duration(p)
	if d%Day == 0 {
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return d.String()
}

func parsePeriod(s string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("period %q: want whole days or weeks like 30d or 2w", s)
	}
	return d, nil
}

// Config is the retention: section of sessionmon's config file.
type Config struct {
	// Schedule is a standard 5-field cron expression ("30 3 * * *"),
	// evaluated in TimeZone.
	Schedule string `yaml:"schedule"`
	// TimeZone is an IANA zone name ("UTC", "Europe/Berlin").
	TimeZone string `yaml:"time_zone"`
	// MaxPeriod caps every period (a policy ceiling set by the DPO).
	MaxPeriod Period `yaml:"max_period"`
	// Periods maps each data set (DataSets) to how long it is kept.
	Periods map[string]Period `yaml:"periods"`
	// EventTypes overrides the events period for single event types; an
	// override may only be shorter.
	EventTypes map[schemas.Type]Period `yaml:"event_types"`
	// Apps overrides the events period for the events of single apps; an
	// override may only be shorter. Where an app's and an event type's
	// periods both apply, the shorter one wins.
	Apps map[string]Period `yaml:"apps"`
	// MutationTimeout bounds each wait for a ClickHouse mutation (a
	// deletion of rows); a step whose mutation is not done by then fails.
	// Written like a period ("1h", "90m").
	MutationTimeout Period `yaml:"mutation_timeout"`
}

// DefaultConfig returns the retention defaults.
func DefaultConfig() Config {
	return Config{
		Schedule:        DefaultSchedule,
		TimeZone:        DefaultTimeZone,
		MaxPeriod:       Period(DefaultMaxPeriod),
		Periods:         DefaultPeriods(),
		EventTypes:      map[schemas.Type]Period{},
		Apps:            map[string]Period{},
		MutationTimeout: Period(DefaultMutationTimeout),
	}
}

// ParseConfig reads the retention: section (the mapping under the
// retention: key) over DefaultConfig, strictly: an unknown key is an error.
// Periods given replace the default of their data set only. It then
// validates the result and returns every problem at once. It does no I/O
// beyond loading the time zone database.
func ParseConfig(b []byte) (Config, error) {
	n, err := config.ParseNode(b)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ParseConfigNode(n)
}

// ParseConfigNode is ParseConfig of the section as read from the config
// file: its problems are *config.FieldError with the file's lines.
func ParseConfigNode(n *yaml.Node) (Config, error) {
	cfg := DefaultConfig()
	var raw Config
	if err := config.DecodeNode(n, &raw, "retention"); err != nil {
		return Config{}, config.Mark(err, ErrInvalidConfig)
	}
	if raw.Schedule != "" {
		cfg.Schedule = raw.Schedule
	}
	if raw.TimeZone != "" {
		cfg.TimeZone = raw.TimeZone
	}
	if raw.MaxPeriod != 0 {
		cfg.MaxPeriod = raw.MaxPeriod
	}
	if raw.MutationTimeout != 0 {
		cfg.MutationTimeout = raw.MutationTimeout
	}
	var errs []error
	for k, v := range raw.Periods {
		if !slices.Contains(DataSets, k) {
			errs = append(errs, config.Problem(ErrInvalidConfig, "retention.periods."+k, "unknown data set (want one of %s)", strings.Join(DataSets, ", ")))
			continue
		}
		cfg.Periods[k] = v
	}
	for k, v := range raw.EventTypes {
		cfg.EventTypes[k] = v
	}
	for k, v := range raw.Apps {
		cfg.Apps[k] = v
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, config.Lines(config.Mark(err, ErrInvalidConfig), n, "retention")
	}
	return cfg, nil
}

// Validate checks every field and returns all problems at once, each naming
// its field (retention.periods.events, ...).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, config.Problem(ErrInvalidConfig, "retention."+field, format, args...))
	}
	if _, err := c.Location(); err != nil {
		bad("time_zone", "%q: not a known IANA time zone", c.TimeZone)
	}
	if _, err := parseSchedule(c.Schedule); err != nil {
		bad("schedule", "%q: %v", c.Schedule, err)
	}
	checkPeriod := func(field string, p Period) {
		d := time.Duration(p)
		switch {
		case d < Day || d%Day != 0:
			bad(field, "%s: must be a whole number of days, at least 1d", p)
		case c.MaxPeriod > 0 && d > time.Duration(c.MaxPeriod):
			bad(field, "%s: exceeds retention.max_period %s", p, c.MaxPeriod)
		}
	}
	if d := time.Duration(c.MutationTimeout); d <= 0 || d > MaxMutationTimeout {
		bad("mutation_timeout", "%s: must be more than 0 and at most %s", c.MutationTimeout, Period(MaxMutationTimeout))
	}
	if d := time.Duration(c.MaxPeriod); d < Day || d%Day != 0 {
		bad("max_period", "%s: must be a whole number of days, at least 1d", c.MaxPeriod)
	}
	for _, ds := range DataSets {
		p, ok := c.Periods[ds]
		if !ok {
			bad("periods."+ds, "missing: every data set needs a period")
			continue
		}
		checkPeriod("periods."+ds, p)
	}
	types := make([]schemas.Type, 0, len(c.EventTypes))
	for t := range c.EventTypes {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		field := "event_types." + string(t)
		p := c.EventTypes[t]
		if !t.Valid() {
			bad(field, "unknown event type (want a schema v1 type such as %s)", schemas.LoginFailed)
			continue
		}
		checkPeriod(field, p)
		if p > c.Periods[DataSetEvents] {
			bad(field, "%s: longer than retention.periods.events %s (an override may only shorten it)", p, c.Periods[DataSetEvents])
		}
	}
	for _, app := range slices.Sorted(maps.Keys(c.Apps)) {
		field, p := "apps."+app, c.Apps[app]
		if !schemas.ValidApp(app) {
			bad(field, "not an app name (1-64 characters of A-Z a-z 0-9 _ -, as in events)")
			continue
		}
		checkPeriod(field, p)
		if p > c.Periods[DataSetEvents] {
			bad(field, "%s: longer than retention.periods.events %s (an override may only shorten it)", p, c.Periods[DataSetEvents])
		}
	}
	return errors.Join(errs...)
}

// Location returns the time zone the schedule runs in.
func (c Config) Location() (*time.Location, error) {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q: %w", ErrInvalidConfig, c.TimeZone, err)
	}
	return loc, nil
}
