-- One row per session event (schema v1). The raw user agent is never stored,
-- only the parsed ua_* fields.
--
-- Deduplication: ReplacingMergeTree collapses rows with equal ORDER BY keys, so
-- a redelivered event (same id, and therefore the same subject and time_ms)
-- collapses to one row on merge; queries that must not see duplicates read
-- with FINAL. The version column is ingested_at: the most recent delivery wins,
-- so re-ingesting after a GeoIP or user-agent parser upgrade refreshes the
-- enrichment.
--
-- Partitions are UTC days, so retention drops whole partitions.
CREATE TABLE IF NOT EXISTS {{.Create "events"}}
(
    id String,
    type String,
    time DateTime('UTC'),
    time_ms Int64,
    app String,
    subject String,
    session String,
    previous_session String,
    reason String,

    client_device String,
    client_ip_prefix String,
    client_ip_hash String,
    client_asn UInt32,
    client_country String,
    client_city String,
    has_geo UInt8,
    client_lat Float64,
    client_lon Float64,
    client_accuracy_km Float32,
    geo_source String,
    ua_browser String,
    ua_os String,
    ua_device String,

    token_id String,
    token_kind String,
    token_family String,
    token_parent String,
    token_issued_at_ms Int64,
    token_expires_at_ms Int64,
    token_kid String,
    token_alg String,
    token_claims Array(String),

    auth_method String,
    auth_mfa Int8,
    auth_last_auth_at_ms Int64,

    cookie_name String,
    cookie_secure Int8,
    cookie_http_only Int8,
    cookie_same_site String,

    policy_idle_timeout_s UInt32,
    policy_absolute_timeout_s UInt32,
    policy_reauth_window_s UInt32,

    action_name String,
    action_sensitive UInt8,
    key_kid String,

    attrs_keys Array(String),
    attrs_values Array(String),

    ingested_at DateTime('UTC')
)
ENGINE = {{.Engine "events" "ReplacingMergeTree(ingested_at)"}}
PARTITION BY toYYYYMMDD(time)
ORDER BY (subject, time_ms, id)
SETTINGS index_granularity = 8192;
{{- .Distribute "events"}}
