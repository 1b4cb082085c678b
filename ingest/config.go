// Package ingest moves session events from the SESSIONMON_EVENTS stream
// into ClickHouse: a durable pull consumer, batches flushed by size or age,
// columnar inserts, and acknowledgements only after ClickHouse confirmed
// the batch. Events that fail schema v1 or carry what looks like raw
// personal data go, redacted, to the SESSIONMON_DLQ stream instead.
//
// Exactly once as seen by queries: a batch redelivered after a crash between
// insert and ack is inserted again, and the events table (a
// ReplacingMergeTree keyed by subject, time and event id) collapses the
// copies; queries that count read it with FINAL.
package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Config tunes the worker.
type Config struct {
	// Durable is the name of the JetStream consumer all ingest processes
	// share.
	Durable string
	// BatchSize flushes a batch when it has this many events.
	BatchSize int
	// BatchAge flushes a non-empty batch this long after its first event.
	BatchAge time.Duration
	// MaxAckPending bounds the events delivered but not yet acknowledged,
	// and so the worker's memory.
	MaxAckPending int
	// AckWait is how long JetStream waits for an ack before redelivering.
	// While a batch is retried the worker extends it (InProgress).
	AckWait time.Duration
	// RetryMin and RetryMax bound the backoff between ClickHouse retries.
	RetryMin, RetryMax time.Duration
	// DLQMaxAge is how long dead letters are kept.
	DLQMaxAge time.Duration
}

// DefaultConfig is the worker's configuration out of the box.
func DefaultConfig() Config {
	return Config{
		Durable:       schemas.IngestDurable,
		BatchSize:     100000,
		BatchAge:      time.Second,
		MaxAckPending: 200000,
		AckWait:       60 * time.Second,
		RetryMin:      200 * time.Millisecond,
		RetryMax:      10 * time.Second,
		DLQMaxAge:     7 * 24 * time.Hour,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Durable == "" {
		errs = append(errs, errors.New("ingest durable name must not be empty"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, errors.New("ingest batch size must be at least 1"))
	}
	if c.BatchAge <= 0 {
		errs = append(errs, errors.New("ingest batch age must be positive"))
	}
	if c.MaxAckPending < 2*c.BatchSize {
		errs = append(errs, fmt.Errorf("ingest max ack pending (%d) must be at least twice the batch size (%d), so one batch can be written while the next fills", c.MaxAckPending, c.BatchSize))
	}
	if c.AckWait < 2*c.BatchAge {
		errs = append(errs, errors.New("ingest ack wait must be at least twice the batch age"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("ingest retry backoff must be positive, min <= max"))
	}
	if c.DLQMaxAge <= 0 {
		errs = append(errs, errors.New("dead letter max age must be positive"))
	}
	return errors.Join(errs...)
}
