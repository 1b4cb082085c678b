package chstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"
)

// column ties a column of the events table to its EventRow field, once, for
// both writing and reading (a Scan destination).
type column struct {
	name   string
	append func(c driver.BatchColumn, rows []EventRow) error
	dest   func(r *EventRow) any // a *T for rows.Scan
}

// col appends a scalar column as one typed slice, clickhouse-go's fast path.
// The slice is only read during Append, so it comes from a pool.
func col[T any](name string, field func(*EventRow) *T) column {
	var pool sync.Pool
	return column{
		name: name,
		append: func(c driver.BatchColumn, rows []EventRow) error {
			buf, _ := pool.Get().(*[]T)
			if buf == nil {
				buf = new([]T)
			}
			out := (*buf)[:0]
			for i := range rows {
				out = append(out, *field(&rows[i]))
			}
			err := c.Append(out)
			clear(out) // drop references to the rows' strings
			*buf = out
			pool.Put(buf)
			return err
		},
		dest: func(r *EventRow) any { return field(r) },
	}
}

// arrayCol appends an Array(String) column row by row: clickhouse-go appends
// a [][]string through reflection, but a single []string without.
func arrayCol(name string, field func(*EventRow) *[]string) column {
	return column{
		name: name,
		append: func(c driver.BatchColumn, rows []EventRow) error {
			for i := range rows {
				if err := c.AppendRow(*field(&rows[i])); err != nil {
					return err
				}
			}
			return nil
		},
		dest: func(r *EventRow) any { return field(r) },
	}
}

// boolCol stores a bool in a UInt8 column (0 or 1).
func boolCol(name string, field func(*EventRow) *bool) column {
	return column{
		name: name,
		append: func(c driver.BatchColumn, rows []EventRow) error {
			out := make([]uint8, len(rows))
			for i := range rows {
				if *field(&rows[i]) {
					out[i] = 1
				}
			}
			return c.Append(out)
		},
		dest: func(r *EventRow) any { return field(r) },
	}
}

// eventColumns lists every column of the events table in the order used by
// INSERT and SELECT.
var eventColumns = []column{
	col("id", func(r *EventRow) *string { return &r.ID }),
	col("type", func(r *EventRow) *string { return &r.Type }),
	col("time", func(r *EventRow) *time.Time { return &r.Time }),
	col("time_ms", func(r *EventRow) *int64 { return &r.TimeMS }),
	col("app", func(r *EventRow) *string { return &r.App }),
	col("subject", func(r *EventRow) *string { return &r.Subject }),
	col("session", func(r *EventRow) *string { return &r.Session }),
	col("previous_session", func(r *EventRow) *string { return &r.PreviousSession }),
	col("reason", func(r *EventRow) *string { return &r.Reason }),

	col("client_device", func(r *EventRow) *string { return &r.ClientDevice }),
	col("client_ip_prefix", func(r *EventRow) *string { return &r.ClientIPPrefix }),
	col("client_ip_hash", func(r *EventRow) *string { return &r.ClientIPHash }),
	col("client_asn", func(r *EventRow) *uint32 { return &r.ClientASN }),
	col("client_country", func(r *EventRow) *string { return &r.ClientCountry }),
	col("client_city", func(r *EventRow) *string { return &r.ClientCity }),
	boolCol("has_geo", func(r *EventRow) *bool { return &r.HasGeo }),
	col("client_lat", func(r *EventRow) *float64 { return &r.ClientLat }),
	col("client_lon", func(r *EventRow) *float64 { return &r.ClientLon }),
	col("client_accuracy_km", func(r *EventRow) *float32 { return &r.ClientAccuracyKM }),
	col("geo_source", func(r *EventRow) *string { return &r.GeoSource }),
	col("client_as_org", func(r *EventRow) *string { return &r.ClientASOrg }),
	arrayCol("client_anonymity", func(r *EventRow) *[]string { return &r.ClientAnonymity }),
	col("ua_browser", func(r *EventRow) *string { return &r.UABrowser }),
	col("ua_os", func(r *EventRow) *string { return &r.UAOS }),
	col("ua_device", func(r *EventRow) *string { return &r.UADevice }),

	col("token_id", func(r *EventRow) *string { return &r.TokenID }),
	col("token_kind", func(r *EventRow) *string { return &r.TokenKind }),
	col("token_family", func(r *EventRow) *string { return &r.TokenFamily }),
	col("token_parent", func(r *EventRow) *string { return &r.TokenParent }),
	col("token_issued_at_ms", func(r *EventRow) *int64 { return &r.TokenIssuedAtMS }),
	col("token_expires_at_ms", func(r *EventRow) *int64 { return &r.TokenExpiresAtMS }),
	col("token_kid", func(r *EventRow) *string { return &r.TokenKID }),
	col("token_alg", func(r *EventRow) *string { return &r.TokenAlg }),
	arrayCol("token_claims", func(r *EventRow) *[]string { return &r.TokenClaims }),

	col("auth_method", func(r *EventRow) *string { return &r.AuthMethod }),
	col("auth_mfa", func(r *EventRow) *int8 { return &r.AuthMFA }),
	col("auth_last_auth_at_ms", func(r *EventRow) *int64 { return &r.AuthLastAuthAtMS }),

	col("cookie_name", func(r *EventRow) *string { return &r.CookieName }),
	col("cookie_secure", func(r *EventRow) *int8 { return &r.CookieSecure }),
	col("cookie_http_only", func(r *EventRow) *int8 { return &r.CookieHTTPOnly }),
	col("cookie_same_site", func(r *EventRow) *string { return &r.CookieSameSite }),

	col("policy_idle_timeout_s", func(r *EventRow) *uint32 { return &r.PolicyIdleTimeoutS }),
	col("policy_absolute_timeout_s", func(r *EventRow) *uint32 { return &r.PolicyAbsoluteTimeoutS }),
	col("policy_reauth_window_s", func(r *EventRow) *uint32 { return &r.PolicyReauthWindowS }),

	col("action_name", func(r *EventRow) *string { return &r.ActionName }),
	boolCol("action_sensitive", func(r *EventRow) *bool { return &r.ActionSensitive }),
	col("key_kid", func(r *EventRow) *string { return &r.KeyKID }),

	arrayCol("attrs_keys", func(r *EventRow) *[]string { return &r.AttrsKeys }),
	arrayCol("attrs_values", func(r *EventRow) *[]string { return &r.AttrsValues }),

	col("ingested_at", func(r *EventRow) *time.Time { return &r.IngestedAt }),
}

// eventColumnList is "id, type, ...", for INSERT and SELECT.
var eventColumnList = func() string {
	names := make([]string, len(eventColumns))
	for i, c := range eventColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}()

// defaultInsertBlockRows is how many rows an INSERT encodes before it sends
// them as one native block. The server squashes the blocks of one INSERT
// into one part, so this only keeps the client's column buffers small and
// reused instead of growing with the batch, and lets the server decode one
// block while the next is encoded.
const defaultInsertBlockRows = 8192

// minRowsPerInsert is the smallest share of a batch worth its own INSERT:
// every INSERT writes at least one part, at a fixed cost of some
// milliseconds, and parts are merged later.
const minRowsPerInsert = 10_000

// defaultInsertConcurrency is how many INSERTs a large batch is split into.
// One: every INSERT becomes a part that the server sorts, compresses and
// later merges, and on a busy host that work costs more than splitting
// gains. Ingest already writes two batches at once.
const defaultInsertConcurrency = 1

// WithInsertConcurrency splits a batch of InsertEvents into up to n INSERTs
// that run at once, each of at least 10,000 rows (default 1: no split).
func WithInsertConcurrency(n int) Option {
	return func(s *Store) { s.insertConcurrency = max(n, 1) }
}

// InsertEvents writes rows and returns once ClickHouse has confirmed all of
// them, so the caller may then ack the source messages. A large batch goes
// out as a few concurrent INSERTs (see WithInsertConcurrency). On error any
// part of the rows may have been written; retrying the same rows is safe
// because the events table collapses duplicates. An empty slice writes
// nothing. InsertEvents is safe for concurrent use.
func (s *Store) InsertEvents(ctx context.Context, rows []EventRow) error {
	n := min(s.insertConcurrency, len(rows)/minRowsPerInsert)
	if n <= 1 {
		return s.insert(ctx, rows)
	}
	share := (len(rows) + n - 1) / n
	g, gctx := errgroup.WithContext(ctx)
	for start := 0; start < len(rows); start += share {
		part := rows[start:min(start+share, len(rows))]
		g.Go(func() error { return s.insert(gctx, part) })
	}
	return g.Wait()
}

// insert writes rows with one INSERT: a columnar batch sent in blocks and
// confirmed by Send.
func (s *Store) insert(ctx context.Context, rows []EventRow) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(s.insertContext(ctx), "INSERT INTO "+s.db+".events ("+eventColumnList+")")
	if err != nil {
		return fmt.Errorf("insert events (%d rows): prepare: %w", len(rows), err)
	}
	for start := 0; start < len(rows); start += s.blockRows {
		chunk := rows[start:min(start+s.blockRows, len(rows))]
		for i, c := range eventColumns {
			if err := c.append(batch.Column(i), chunk); err != nil {
				return errors.Join(fmt.Errorf("insert events (%d rows): column %s: %w", len(rows), c.name, err), batch.Abort())
			}
		}
		if start+len(chunk) < len(rows) {
			if err := batch.Flush(); err != nil {
				return errors.Join(fmt.Errorf("insert events (%d rows): flush: %w", len(rows), err), batch.Abort())
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert events (%d rows): send: %w", len(rows), err)
	}
	return nil
}

// insertContext adds the settings inserts need. Current servers refuse an
// INSERT block that touches more than max_partitions_per_insert_block (100)
// partitions: a batch of events spread over more than 100 days (a
// backfill, an app with a broken clock) would fail for ever and stall
// ingest. Servers that have the setting get it lifted; 18.16 has no such
// limit and would reject the unknown setting.
func (s *Store) insertContext(ctx context.Context) context.Context {
	settings := s.insertSettings.Load()
	if settings == nil {
		var n uint64
		q := "SELECT count() FROM system.settings WHERE name = 'max_partitions_per_insert_block'"
		if err := s.conn.QueryRow(ctx, q).Scan(&n); err != nil {
			// The insert will fail the same way and be retried.
			return ctx
		}
		settings = &clickhouse.Settings{}
		if n > 0 {
			settings = &clickhouse.Settings{"max_partitions_per_insert_block": 0}
		}
		s.insertSettings.Store(settings)
	}
	if len(*settings) == 0 {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(*settings))
}
