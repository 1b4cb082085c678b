-- Erasure requests keep the pseudonym only until they are done. subject_hash
-- is the SHA-256 of the pseudonym ("sha256:<hex>", as in deletion_log),
-- shown to every viewer and kept as proof; subject is cleared on every row
-- of a request once it is done (a mutation). streams and streams_purged
-- list, per NATS JetStream stream, the messages the run that finished the
-- request deleted.
{{.AddColumn "erasure_requests" "subject_hash String AFTER subject"}}
{{.AddColumn "erasure_requests" "streams Array(String) AFTER rows_deleted"}}
{{.AddColumn "erasure_requests" "streams_purged Array(UInt64) AFTER streams"}}
