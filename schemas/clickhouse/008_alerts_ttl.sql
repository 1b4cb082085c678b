-- sessionmon: min_server=19.6 needs=alert_retention_days repeatable
--
-- TTL backstop of alerts, like 002 for events: ClickHouse deletes alerts
-- older than retention.periods.alerts even if the retention job never runs.
-- Skipped before ClickHouse 19.6; re-applied when the period changes. While
-- a legal hold is active the TTL is removed (ClickHouse 20.10 and later) and
-- put back once the last hold is lifted.
ALTER TABLE {{.Alter "alerts"}} {{if .LegalHold}}REMOVE TTL{{else}}MODIFY TTL time + INTERVAL {{.AlertRetentionDays}} DAY{{end}};
