package retention_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := retention.ParseConfig(nil)
	require.NoError(t, err)
	require.Equal(t, retention.DefaultConfig(), cfg)
	for _, ds := range retention.DataSets {
		require.Contains(t, cfg.Periods, ds)
	}
	require.Equal(t, "UTC", cfg.TimeZone)
	require.Equal(t, retention.Period(time.Hour), cfg.MutationTimeout)
	require.Equal(t, retention.Period(365*retention.Day), cfg.Periods[retention.DataSetAuditLog])

	cfg, err = retention.ParseConfig([]byte("mutation_timeout: 90m\n"))
	require.NoError(t, err)
	require.Equal(t, retention.Period(90*time.Minute), cfg.MutationTimeout)
}

func TestParseConfigOverrides(t *testing.T) {
	t.Parallel()
	cfg, err := retention.ParseConfig([]byte(`
schedule: "0 2 * * *"
time_zone: Europe/Berlin
max_period: 400d
periods:
  events: 30d
  alerts: 400d
event_types:
  login.failed: 7d
  token.used: 168h
`))
	require.NoError(t, err)
	require.Equal(t, "0 2 * * *", cfg.Schedule)
	require.Equal(t, retention.Period(30*retention.Day), cfg.Periods[retention.DataSetEvents])
	require.Equal(t, retention.Period(400*retention.Day), cfg.Periods[retention.DataSetAlerts])
	require.Equal(t, retention.Period(365*retention.Day), cfg.Periods[retention.DataSetAlertStatus], "default kept")
	require.Equal(t, retention.Period(7*retention.Day), cfg.EventTypes[schemas.LoginFailed])
	require.Equal(t, retention.Period(7*retention.Day), cfg.EventTypes[schemas.TokenUsed])
	require.Equal(t, "7d", cfg.EventTypes[schemas.TokenUsed].String())

	c, err := retention.NewCron(cfg, func() {})
	require.NoError(t, err)
	require.Equal(t, "Europe/Berlin", c.Location().String())
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		yaml  string
		wants []string
	}{
		{"unknown key", "perods: {events: 30d}", []string{"line 1: retention.perods: unknown key"}},
		{"unknown data set", "periods: {sessions: 30d}", []string{"retention.periods.sessions: unknown data set"}},
		{"not whole days", "periods: {events: 36h}", []string{"retention.periods.events: 36h0m0s: must be a whole number of days"}},
		{"zero", "periods: {alerts: 0d}", []string{"retention.periods.alerts"}},
		{"bad period", "periods: {events: soon}", []string{`period "soon"`}},
		{"above max", "max_period: 100d", []string{"retention.periods.alerts: 365d: exceeds retention.max_period 100d", "retention.periods.alert_status"}},
		{"unknown event type", "event_types: {login.maybe: 7d}", []string{"retention.event_types.login.maybe: unknown event type"}},
		{"override longer", "event_types: {login.failed: 100d}", []string{"retention.event_types.login.failed: 100d: longer than retention.periods.events 90d"}},
		{"app override longer", "apps: {shop: 100d}", []string{"retention.apps.shop: 100d: longer than retention.periods.events 90d"}},
		{"bad app name", "apps: {'shop front': 7d}", []string{"retention.apps.shop front: not an app name"}},
		{"bad zone", "time_zone: Mars/Olympus", []string{"retention.time_zone"}},
		{"bad schedule", "schedule: every day", []string{"retention.schedule"}},
		{"mutation timeout negative", "mutation_timeout: -5m", []string{"retention.mutation_timeout: -5m0s: must be more than 0 and at most 6h0m0s"}},
		{"mutation timeout too long", "mutation_timeout: 7h", []string{"retention.mutation_timeout: 7h0m0s: must be more than 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := retention.ParseConfig([]byte(tc.yaml))
			require.ErrorIs(t, err, retention.ErrInvalidConfig)
			for _, w := range tc.wants {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestPeriodString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "30d", retention.Period(30*retention.Day).String())
	require.Equal(t, "1h0m0s", retention.Period(time.Hour).String())
}
