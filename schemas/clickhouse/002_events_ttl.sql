-- sessionmon: min_server=19.6 needs=retention_days repeatable
--
-- TTL backstop: ClickHouse itself deletes events older than the configured
-- retention even if the retention job never runs. TTL arrived in ClickHouse
-- 19.6, so older servers skip this migration (and apply it once upgraded).
-- It is re-applied whenever the configured number of days changes.{{/*
  While a legal hold is active the TTL, which knows nothing of holds, is
  removed (ClickHouse 20.10 and later), and put back once the last hold is
  lifted; the retention job keeps held rows meanwhile. Without a hold this
  renders exactly as before, so installations see no change of checksum. */}}
ALTER TABLE {{.Alter "events"}} {{if .LegalHold}}REMOVE TTL{{else}}MODIFY TTL time + INTERVAL {{.RetentionDays}} DAY{{end}};
