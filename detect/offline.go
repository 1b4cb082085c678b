package detect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/schemas"
)

// Offline pipeline sizes.
const (
	// offlineBatch is how many lines the reader decodes before handing
	// them to the engine: large enough to make the channel cheap.
	offlineBatch = 512
	// offlineQueue is how many decoded batches may wait for the engine
	// (at most offlineQueue*offlineBatch events in memory).
	offlineQueue = 8
	// maxLineBytes is the longest line read whole; longer lines are
	// reported invalid (schema v1 events are at most 16 KiB).
	maxLineBytes = 1 << 20
	// MaxReportedInvalid is how many invalid lines OfflineStats lists.
	MaxReportedInvalid = 100
)

// OfflineStats reports a RunOffline run.
type OfflineStats struct {
	// Lines read, blank ones included.
	Lines int64 `json:"lines"`
	// Events decoded and run through the detectors.
	Events int64 `json:"events"`
	// Invalid lines, skipped; the first MaxReportedInvalid are listed.
	Invalid      int64         `json:"invalid"`
	InvalidLines []InvalidLine `json:"invalid_lines,omitempty"`
	// Engine is the engine's counters (alerts, late events, duplicates).
	Engine Stats `json:"engine"`
	// Duration is the wall time of the run, and EventsPerSecond the
	// throughput.
	Duration        time.Duration `json:"duration_ns"`
	EventsPerSecond float64       `json:"events_per_second"`
	// Warnings about the configuration (expired networks entries).
	Warnings []string `json:"warnings,omitempty"`
}

// OfflineCounters are the running counts of a RunOffline run, safe to
// read while it runs: lines read, events run through the detectors and
// alerts raised so far.
type OfflineCounters struct {
	Lines, Events, Alerts atomic.Int64
}

// WithOfflineCounters makes RunOffline update c after each batch of
// events, for progress reports. Other users of the engine ignore it.
func WithOfflineCounters(c *OfflineCounters) Option {
	return func(e *Engine) { e.offline = c }
}

// InvalidLine is a line that is not a valid schema v1 event.
type InvalidLine struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

// decodedBatch is a run of lines, decoded.
type decodedBatch struct {
	events  []*schemas.Event
	invalid []InvalidLine
	lines   int64
	bad     int64
}

// RunOffline runs the detectors of cfg over NDJSON events read from in (one
// schema v1 event a line, as exported from the stream or ClickHouse) and
// writes each alert to out as one JSON object a line, in event-time order
// of the events that raised them. It needs no server. Invalid lines are
// counted and listed with their numbers, never fatal. clock is the wall
// clock: it dates alerts (detected_at), checks event times (an event more
// than 24 hours ahead of it is invalid) and judges networks entries'
// expiry for Warnings; detection runs in event time.
//
// opts are given to the engine after WithClock (WithGeo, say).
//
// Decoding runs in its own goroutine, ahead of the engine, through a
// bounded queue. RunOffline returns when in is exhausted (after flushing
// the engine), on the first error reading in or writing out, or when ctx is
// cancelled.
func RunOffline(ctx context.Context, in io.Reader, out io.Writer, cfg Config, clock func() time.Time, opts ...Option) (OfflineStats, error) {
	start := time.Now()
	stats := OfflineStats{Warnings: cfg.Warnings(clock())}
	dets, err := NewDetectors(cfg)
	if err != nil {
		return stats, err
	}
	engine, err := NewEngine(cfg, dets, append([]Option{WithClock(clock)}, opts...)...)
	if err != nil {
		return stats, err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	write := func(alerts []schemas.Alert) error {
		for i := range alerts {
			b, err := json.Marshal(&alerts[i])
			if err != nil {
				return fmt.Errorf("encode alert: %w", err)
			}
			b = append(b, '\n')
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("write alerts: %w", err)
			}
		}
		return nil
	}

	g, ctx := errgroup.WithContext(ctx)
	// The reader owns and closes batches; the engine loop drains it.
	batches := make(chan decodedBatch, offlineQueue)
	g.Go(func() error {
		defer close(batches)
		return readEvents(ctx, in, clock(), batches)
	})
	g.Go(func() error {
		for b := range batches {
			stats.Lines += b.lines
			stats.Invalid += b.bad
			for _, il := range b.invalid {
				if len(stats.InvalidLines) < MaxReportedInvalid {
					stats.InvalidLines = append(stats.InvalidLines, il)
				}
			}
			for _, ev := range b.events {
				if err := write(engine.Process(ev)); err != nil {
					return err
				}
			}
			stats.Events += int64(len(b.events))
			if c := engine.offline; c != nil {
				c.Lines.Store(stats.Lines)
				c.Events.Store(stats.Events)
				c.Alerts.Store(engine.stats.Alerts)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := write(engine.Flush()); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write alerts: %w", err)
		}
		return nil
	})
	err = g.Wait()
	stats.Engine = engine.Stats()
	stats.Duration = time.Since(start)
	if s := stats.Duration.Seconds(); s > 0 {
		stats.EventsPerSecond = float64(stats.Events) / s
	}
	return stats, err
}

// readEvents reads and decodes lines into batches until in is exhausted.
// now is the receiver's clock for schemas.Decode.
func readEvents(ctx context.Context, in io.Reader, now time.Time, batches chan<- decodedBatch) error {
	r := bufio.NewReaderSize(in, maxLineBytes)
	var (
		b    decodedBatch
		line int64
	)
	send := func() error {
		select {
		case batches <- b:
			b = decodedBatch{events: make([]*schemas.Event, 0, offlineBatch)}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.events = make([]*schemas.Event, 0, offlineBatch)
	for {
		data, err := r.ReadSlice('\n')
		if len(data) > 0 || err == nil {
			line++
			b.lines++
			if errors.Is(err, bufio.ErrBufferFull) {
				if skipErr := skipLine(r); skipErr != nil && !errors.Is(skipErr, io.EOF) {
					return fmt.Errorf("read events (line %d): %w", line, skipErr)
				}
				b.addInvalid(line, fmt.Sprintf("line longer than %d bytes", maxLineBytes))
				err = nil
			} else if data = bytes.TrimSpace(data); len(data) > 0 {
				// The gate of ingest and live detection, without the
				// subject check (a file has no NATS subjects). Its
				// errors quote no values.
				if ev, derr := pii.Admit("", data, now); derr != nil {
					b.addInvalid(line, derr.Error())
				} else {
					b.events = append(b.events, ev)
				}
			}
			if len(b.events)+len(b.invalid) >= offlineBatch {
				if err := send(); err != nil {
					return err
				}
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return send()
		case err != nil:
			return fmt.Errorf("read events (line %d): %w", line+1, err)
		}
	}
}

func (b *decodedBatch) addInvalid(line int64, msg string) {
	b.bad++
	if len(b.invalid) < MaxReportedInvalid {
		b.invalid = append(b.invalid, InvalidLine{Line: line, Error: msg})
	}
}

// skipLine discards the rest of an over-long line.
func skipLine(r *bufio.Reader) error {
	for {
		_, err := r.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}
