-- Legal holds: one row per change (a hold set or lifted), appended and never
-- updated, so the history of a hold is kept. A subject's current hold is its
-- latest change (argMax by time_ms); active = 1 means its data must not be
-- deleted, neither by an erasure request nor by the retention job, until the
-- hold is lifted. reason and actor are what the operator gave.
--
-- This table names subjects by their pseudonym: a hold has to find the
-- subject's rows. Neither retention nor erasure deletes from it; it is the
-- record that a deletion was withheld, and why.
CREATE TABLE IF NOT EXISTS {{.Create "legal_holds"}}
(
    subject String,
    active UInt8,
    reason String,
    actor String,
    time DateTime('UTC'),
    time_ms Int64
)
ENGINE = {{.Engine "legal_holds" "MergeTree()"}}
PARTITION BY toYYYYMM(time)
ORDER BY (subject, time_ms)
SETTINGS index_granularity = 8192;

-- Erasure requests (Art. 17): one row per status change of a request
-- (pending, running, done, failed), appended and never updated. A request's
-- current state is its row with the highest seq (1 for pending, then one
-- more per change). rows_tables and rows_deleted list, per table, the rows
-- the run that finished the request deleted; error says why it failed.
--
-- The rows name the subject by its pseudonym so that a request interrupted
-- by a restart (left pending or running) can be resumed. Once done, the
-- rows are kept as the proof that the request was carried out; the
-- erasure itself never deletes from this table, nor does the retention job.
-- deletion_log names the subject only by the SHA-256 of the pseudonym.
CREATE TABLE IF NOT EXISTS {{.Create "erasure_requests"}}
(
    id String,
    seq UInt32,
    subject String,
    requested_by String,
    status String,
    error String,
    rows_tables Array(String),
    rows_deleted Array(UInt64),
    requested DateTime('UTC'),
    requested_ms Int64,
    updated DateTime('UTC'),
    updated_ms Int64
)
ENGINE = {{.Engine "erasure_requests" "MergeTree()"}}
PARTITION BY toYYYYMM(requested)
ORDER BY (id, seq)
SETTINGS index_granularity = 8192;
