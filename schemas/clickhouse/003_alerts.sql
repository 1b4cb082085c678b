-- Alerts raised by sessionmon detect, one row per alert, written by detect's
-- store writer from the SESSIONMON_ALERTS stream (at least once).
--
-- Deduplication: an alert's id is derived from its detector, key and
-- triggering event, so its time_ms never changes; ReplacingMergeTree
-- collapses a redelivered alert (same time_ms and id) on merge, and queries
-- that must not see duplicates read with FINAL.
--
-- Keys: alerts are few (thousands a day, not millions) and every dashboard
-- query is bounded by a time range and ordered by time, so the primary key
-- leads with time_ms; filters on severity, detector, app or subject scan that
-- range, which is cheap at this size. Partitions are UTC days, so retention
-- drops whole partitions. severity_rank (low 1 ... critical 4) lets queries
-- ask for "high and above".
CREATE TABLE IF NOT EXISTS {{.Create "alerts"}}
(
    id String,
    detector String,
    severity String,
    severity_rank UInt8,
    time DateTime('UTC'),
    time_ms Int64,
    detected_at DateTime('UTC'),
    detected_at_ms Int64,
    app String,
    subject String,
    session String,
    source_ip_prefix String,
    source_asn UInt32,
    title String,
    summary String,
    details String,
    evidence Array(String),
    stored_at DateTime('UTC')
)
ENGINE = {{.Engine "alerts" "ReplacingMergeTree()"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (time_ms, id)
SETTINGS index_granularity = 8192;
{{- .Distribute "alerts"}}

-- Alert status changes (acknowledged, resolved, false positive), appended,
-- never updated: an alert's current status is its latest change
-- (argMax by time_ms, then id), and "open" when it has none. id is the
-- change's own id, so a redelivered change collapses like an alert does.
-- Ordered by alert_id first: every read is "the history of these alerts".
CREATE TABLE IF NOT EXISTS {{.Create "alert_status"}}
(
    id String,
    alert_id String,
    status String,
    actor String,
    comment String,
    time DateTime('UTC'),
    time_ms Int64
)
ENGINE = {{.Engine "alert_status" "ReplacingMergeTree()"}}
PARTITION BY toYYYYMM(time)
ORDER BY (alert_id, time_ms, id)
SETTINGS index_granularity = 8192;
{{- .Distribute "alert_status"}}
