-- Webhook delivery attempts, one row per attempt, written by sessionmon
-- notify for the dashboard: which webhook, which alert, the attempt number,
-- its outcome (delivered, retry, failed, undeliverable), the HTTP status
-- (0 when there was no response), a short error and the latency. Neither
-- the request body nor any secret is stored.
--
-- Deduplication: a row written twice (a retried insert) has the same key
-- and collapses on merge; queries that must not see duplicates read with
-- FINAL. The delivery state itself lives in JetStream; this table is a log.
--
-- Keys: rows are read per alert ("how did this alert's deliveries go") and
-- by time; alert_id leads the key, time_ms bounds the scans by time.
-- Partitions are UTC months: a few rows per alert and webhook.
CREATE TABLE IF NOT EXISTS {{.Create "webhook_deliveries"}}
(
    webhook String,
    alert_id String,
    attempt UInt32,
    status String,
    http_status UInt16,
    error String,
    latency_ms UInt32,
    time DateTime('UTC'),
    time_ms Int64
)
ENGINE = {{.Engine "webhook_deliveries" "ReplacingMergeTree()"}}
PARTITION BY toYYYYMM(time)
ORDER BY (alert_id, webhook, time_ms, attempt, status)
SETTINGS index_granularity = 8192;
{{- .Distribute "webhook_deliveries"}}
