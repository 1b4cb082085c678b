-- The dashboard's audit log: one row per sign-in, sign-out, re-authentication
-- and analyst or admin action (alert triage, exports, erasures, legal holds,
-- webhook redeliveries, API tokens), appended and never updated, so who did
-- what, when, from where and with which outcome can be shown.
--
-- actor is the dashboard user (or "token:<id>" for an API token); a data
-- subject appears only as "subject sha256:<hex>" in target or detail, never
-- as its pseudonym. source_ip_prefix is the client's /24 (IPv4) or /48
-- (IPv6) network, never its address. request_id ties a row to the logs.
--
-- A plain MergeTree: rows are never replaced; id keeps them apart. Ordered
-- by time for the page that lists the newest first; partitions are UTC
-- months, which the retention job drops as a whole (data set audit_log,
-- column time).
CREATE TABLE IF NOT EXISTS {{.Create "audit_log"}}
(
    id String,
    time DateTime('UTC'),
    time_ms Int64,
    actor String,
    role String,
    action String,
    target String,
    outcome String,
    detail String,
    request_id String,
    source_ip_prefix String
)
ENGINE = {{.Engine "audit_log" "MergeTree()"}}
PARTITION BY toYYYYMM(time)
ORDER BY (time_ms, id)
SETTINGS index_granularity = 8192;
