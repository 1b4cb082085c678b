-- sessionmon: min_server=19.6 needs=retention_days repeatable
--
-- TTL backstop: ClickHouse itself deletes events older than the configured
-- retention even if the retention job never runs. TTL arrived in ClickHouse
-- 19.6, so older servers skip this migration (and apply it once upgraded).
-- It is re-applied whenever the configured number of days changes.
ALTER TABLE {{.Database}}.events MODIFY TTL time + INTERVAL {{.RetentionDays}} DAY;
