package chstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"
)

// column ties a column of the events table to its EventRow field, once, for
// buffering (EventColumns), writing and reading (a Scan destination).
type column struct {
	name string
	// array: nums holds running element counts (see arrayCol).
	array bool
	// add appends r's value to b.
	add func(b *colBuf, r *EventRow)
	// send appends the values [from, to) of b to c.
	send func(c driver.BatchColumn, b *colBuf, from, to int) error
	// get sets r's field to value i of b, copied.
	get  func(b *colBuf, i int, r *EventRow)
	dest func(r *EventRow) any // a *T for rows.Scan
}

// col is a numeric (or time) column, buffered as the bits enc makes of each
// value.
func col[T any](name string, field func(*EventRow) *T, enc func(T) uint64, dec func(uint64) T) column {
	var pool sync.Pool
	return column{
		name: name,
		add:  func(b *colBuf, r *EventRow) { b.nums = append(b.nums, enc(*field(r))) },
		send: func(c driver.BatchColumn, b *colBuf, from, to int) error {
			return sendNums(&pool, c, b.nums[from:to], dec)
		},
		get:  func(b *colBuf, i int, r *EventRow) { *field(r) = dec(b.nums[i]) },
		dest: func(r *EventRow) any { return field(r) },
	}
}

// boolCol stores a bool in a UInt8 column (0 or 1).
func boolCol(name string, field func(*EventRow) *bool) column {
	var pool sync.Pool
	return column{
		name: name,
		add: func(b *colBuf, r *EventRow) {
			var v uint64
			if *field(r) {
				v = 1
			}
			b.nums = append(b.nums, v)
		},
		send: func(c driver.BatchColumn, b *colBuf, from, to int) error {
			return sendNums(&pool, c, b.nums[from:to], func(u uint64) uint8 { return uint8(u) })
		},
		get:  func(b *colBuf, i int, r *EventRow) { *field(r) = b.nums[i] != 0 },
		dest: func(r *EventRow) any { return field(r) },
	}
}

// sendNums appends nums to c as one typed slice, clickhouse-go's fast
// path. The slice is only read during Append, so it comes from pool.
func sendNums[T any](pool *sync.Pool, c driver.BatchColumn, nums []uint64, dec func(uint64) T) error {
	buf, _ := pool.Get().(*[]T)
	if buf == nil {
		buf = new([]T)
	}
	out := (*buf)[:0]
	for _, v := range nums {
		out = append(out, dec(v))
	}
	err := c.Append(out)
	*buf = out
	pool.Put(buf)
	return err
}

// strCol is a String column, buffered as bytes, and appended as one slice
// of strings that point into the buffer: clickhouse-go copies them.
func strCol(name string, field func(*EventRow) *string) column {
	var pool sync.Pool
	return column{
		name: name,
		add:  func(b *colBuf, r *EventRow) { b.addString(*field(r)) },
		send: func(c driver.BatchColumn, b *colBuf, from, to int) error {
			buf, _ := pool.Get().(*[]string)
			if buf == nil {
				buf = new([]string)
			}
			out := (*buf)[:0]
			for i := from; i < to; i++ {
				out = append(out, b.view(i))
			}
			err := c.Append(out)
			clear(out) // drop the views into the buffer
			*buf = out
			pool.Put(buf)
			return err
		},
		get:  func(b *colBuf, i int, r *EventRow) { *field(r) = strings.Clone(b.view(i)) },
		dest: func(r *EventRow) any { return field(r) },
	}
}

// arrayCol is an Array(String) column: its elements buffered like a
// String column's values, and b.nums[i] the number of elements of rows
// 0 to i. It is appended row by row: clickhouse-go appends a [][]string
// through reflection, but a single []string without.
func arrayCol(name string, field func(*EventRow) *[]string) column {
	return column{
		name:  name,
		array: true,
		add: func(b *colBuf, r *EventRow) {
			for _, v := range *field(r) {
				b.addString(v)
			}
			b.nums = append(b.nums, uint64(len(b.ends)))
		},
		send: func(c driver.BatchColumn, b *colBuf, from, to int) error {
			base, _ := b.elements(from)
			_, last := b.elements(to - 1)
			views := make([]string, last-base)
			for j := range views {
				views[j] = b.view(base + j)
			}
			for i := from; i < to; i++ {
				first, end := b.elements(i)
				if err := c.AppendRow(views[first-base : end-base]); err != nil {
					return err
				}
			}
			return nil
		},
		get: func(b *colBuf, i int, r *EventRow) {
			first, end := b.elements(i)
			var out []string
			for j := first; j < end; j++ {
				out = append(out, strings.Clone(b.view(j)))
			}
			*field(r) = out
		},
		dest: func(r *EventRow) any { return field(r) },
	}
}

// Encodings of the numeric columns' values in a colBuf.
func encTime(t time.Time) uint64  { return uint64(t.Unix()) }
func decTime(u uint64) time.Time  { return time.Unix(int64(u), 0).UTC() }
func encInt64(v int64) uint64     { return uint64(v) }
func decInt64(u uint64) int64     { return int64(u) }
func encInt8(v int8) uint64       { return uint64(v) }
func decInt8(u uint64) int8       { return int8(u) }
func encUint32(v uint32) uint64   { return uint64(v) }
func decUint32(u uint64) uint32   { return uint32(u) }
func encFloat64(v float64) uint64 { return math.Float64bits(v) }
func decFloat64(u uint64) float64 { return math.Float64frombits(u) }
func encFloat32(v float32) uint64 { return uint64(math.Float32bits(v)) }
func decFloat32(u uint64) float32 { return math.Float32frombits(uint32(u)) }

// eventColumns lists every column of the events table in the order used by
// INSERT and SELECT.
var eventColumns = []column{
	strCol("id", func(r *EventRow) *string { return &r.ID }),
	strCol("type", func(r *EventRow) *string { return &r.Type }),
	col("time", func(r *EventRow) *time.Time { return &r.Time }, encTime, decTime),
	col("time_ms", func(r *EventRow) *int64 { return &r.TimeMS }, encInt64, decInt64),
	strCol("app", func(r *EventRow) *string { return &r.App }),
	strCol("subject", func(r *EventRow) *string { return &r.Subject }),
	strCol("session", func(r *EventRow) *string { return &r.Session }),
	strCol("previous_session", func(r *EventRow) *string { return &r.PreviousSession }),
	strCol("reason", func(r *EventRow) *string { return &r.Reason }),

	strCol("client_device", func(r *EventRow) *string { return &r.ClientDevice }),
	strCol("client_ip_prefix", func(r *EventRow) *string { return &r.ClientIPPrefix }),
	strCol("client_ip_hash", func(r *EventRow) *string { return &r.ClientIPHash }),
	col("client_asn", func(r *EventRow) *uint32 { return &r.ClientASN }, encUint32, decUint32),
	strCol("client_country", func(r *EventRow) *string { return &r.ClientCountry }),
	strCol("client_city", func(r *EventRow) *string { return &r.ClientCity }),
	boolCol("has_geo", func(r *EventRow) *bool { return &r.HasGeo }),
	col("client_lat", func(r *EventRow) *float64 { return &r.ClientLat }, encFloat64, decFloat64),
	col("client_lon", func(r *EventRow) *float64 { return &r.ClientLon }, encFloat64, decFloat64),
	col("client_accuracy_km", func(r *EventRow) *float32 { return &r.ClientAccuracyKM }, encFloat32, decFloat32),
	strCol("geo_source", func(r *EventRow) *string { return &r.GeoSource }),
	strCol("client_as_org", func(r *EventRow) *string { return &r.ClientASOrg }),
	arrayCol("client_anonymity", func(r *EventRow) *[]string { return &r.ClientAnonymity }),
	strCol("ua_browser", func(r *EventRow) *string { return &r.UABrowser }),
	strCol("ua_os", func(r *EventRow) *string { return &r.UAOS }),
	strCol("ua_device", func(r *EventRow) *string { return &r.UADevice }),

	strCol("token_id", func(r *EventRow) *string { return &r.TokenID }),
	strCol("token_kind", func(r *EventRow) *string { return &r.TokenKind }),
	strCol("token_family", func(r *EventRow) *string { return &r.TokenFamily }),
	strCol("token_parent", func(r *EventRow) *string { return &r.TokenParent }),
	col("token_issued_at_ms", func(r *EventRow) *int64 { return &r.TokenIssuedAtMS }, encInt64, decInt64),
	col("token_expires_at_ms", func(r *EventRow) *int64 { return &r.TokenExpiresAtMS }, encInt64, decInt64),
	strCol("token_kid", func(r *EventRow) *string { return &r.TokenKID }),
	strCol("token_alg", func(r *EventRow) *string { return &r.TokenAlg }),
	arrayCol("token_claims", func(r *EventRow) *[]string { return &r.TokenClaims }),

	strCol("auth_method", func(r *EventRow) *string { return &r.AuthMethod }),
	col("auth_mfa", func(r *EventRow) *int8 { return &r.AuthMFA }, encInt8, decInt8),
	col("auth_last_auth_at_ms", func(r *EventRow) *int64 { return &r.AuthLastAuthAtMS }, encInt64, decInt64),

	strCol("cookie_name", func(r *EventRow) *string { return &r.CookieName }),
	col("cookie_secure", func(r *EventRow) *int8 { return &r.CookieSecure }, encInt8, decInt8),
	col("cookie_http_only", func(r *EventRow) *int8 { return &r.CookieHTTPOnly }, encInt8, decInt8),
	strCol("cookie_same_site", func(r *EventRow) *string { return &r.CookieSameSite }),

	col("policy_idle_timeout_s", func(r *EventRow) *uint32 { return &r.PolicyIdleTimeoutS }, encUint32, decUint32),
	col("policy_absolute_timeout_s", func(r *EventRow) *uint32 { return &r.PolicyAbsoluteTimeoutS }, encUint32, decUint32),
	col("policy_reauth_window_s", func(r *EventRow) *uint32 { return &r.PolicyReauthWindowS }, encUint32, decUint32),

	strCol("action_name", func(r *EventRow) *string { return &r.ActionName }),
	boolCol("action_sensitive", func(r *EventRow) *bool { return &r.ActionSensitive }),
	strCol("key_kid", func(r *EventRow) *string { return &r.KeyKID }),

	arrayCol("attrs_keys", func(r *EventRow) *[]string { return &r.AttrsKeys }),
	arrayCol("attrs_values", func(r *EventRow) *[]string { return &r.AttrsValues }),

	col("ingested_at", func(r *EventRow) *time.Time { return &r.IngestedAt }, encTime, decTime),
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

// InsertEvents writes rows (see InsertColumns).
func (s *Store) InsertEvents(ctx context.Context, rows []EventRow) error {
	var cols EventColumns
	for i := range rows {
		cols.Add(&rows[i])
	}
	return s.InsertColumns(ctx, &cols)
}

// InsertColumns writes the rows of cols and returns once ClickHouse has
// confirmed all of them, so the caller may then ack the source messages. A
// large batch may go out as a few concurrent INSERTs (see
// WithInsertConcurrency). On error any part of the rows may have been
// written; retrying the same rows is safe because the events table
// collapses duplicates. No rows write nothing. InsertColumns only reads
// cols and is safe for concurrent use.
func (s *Store) InsertColumns(ctx context.Context, cols *EventColumns) error {
	rows := cols.Len()
	n := min(s.insertConcurrency, rows/minRowsPerInsert)
	if n <= 1 {
		return s.insert(ctx, cols, 0, rows)
	}
	share := (rows + n - 1) / n
	g, gctx := errgroup.WithContext(ctx)
	for start := 0; start < rows; start += share {
		g.Go(func() error { return s.insert(gctx, cols, start, min(start+share, rows)) })
	}
	return g.Wait()
}

// insert writes the rows [from, to) of cols with one INSERT: a columnar
// batch sent in blocks and confirmed by Send.
func (s *Store) insert(ctx context.Context, cols *EventColumns, from, to int) error {
	rows := to - from
	if rows <= 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(s.insertContext(ctx), "INSERT INTO "+s.db+".events ("+eventColumnList+")")
	if err != nil {
		return fmt.Errorf("insert events (%d rows): prepare: %w", rows, err)
	}
	for start := from; start < to; start += s.blockRows {
		end := min(start+s.blockRows, to)
		for i, c := range eventColumns {
			if err := c.send(batch.Column(i), &cols.bufs[i], start, end); err != nil {
				return errors.Join(fmt.Errorf("insert events (%d rows): column %s: %w", rows, c.name, err), batch.Abort())
			}
		}
		if end < to {
			if err := batch.Flush(); err != nil {
				return errors.Join(fmt.Errorf("insert events (%d rows): flush: %w", rows, err), batch.Abort())
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert events (%d rows): send: %w", rows, err)
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
