-- The deletion log: one row per step of a retention run (a partition
-- dropped, rows deleted by a mutation) and one summary row per run, appended
-- and never updated, so the data protection officer can show what was
-- deleted, when, under which policy, and with how many rows before and
-- after. target is a partition id or the deletion predicate; it holds event
-- types and times, never a subject. Counts are rows physically stored
-- (before deduplication). The retention job never deletes from this table.
CREATE TABLE IF NOT EXISTS {{.Create "deletion_log"}}
(
    id String,
    job String,
    policy String,
    data_set String,
    action String,
    target String,
    rows_before UInt64,
    rows_after UInt64,
    started DateTime('UTC'),
    started_ms Int64,
    finished DateTime('UTC'),
    finished_ms Int64,
    outcome String,
    error String
)
ENGINE = {{.Engine "deletion_log" "MergeTree()"}}
PARTITION BY toYYYYMM(started)
ORDER BY (started_ms, id)
SETTINGS index_granularity = 8192;
