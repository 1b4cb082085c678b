package retention

import (
	"fmt"

	"github.com/robfig/cron/v3"
)

// cronParser reads standard 5-field expressions and descriptors (@daily).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func parseSchedule(spec string) (cron.Schedule, error) {
	return cronParser.Parse(spec)
}

// NewCron returns a cron scheduler in the configured time zone, not started,
// with job added on the configured schedule. The caller starts it and stops
// it with <-c.Stop().Done().
func NewCron(cfg Config, job func()) (*cron.Cron, error) {
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	c := cron.New(cron.WithLocation(loc), cron.WithParser(cronParser))
	if _, err := c.AddFunc(cfg.Schedule, job); err != nil {
		return nil, fmt.Errorf("%w: schedule %q: %w", ErrInvalidConfig, cfg.Schedule, err)
	}
	return c, nil
}
