// Package ndjson publishes files of schema v1 events, one JSON object a
// line, through the SDK (sessionmon publish).
package ndjson

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// maxLine is the longest NDJSON line read; longer lines are rejected (an
// event is at most schemas.MaxEventBytes anyway).
const maxLine = 1 << 20

// Counts are the results of a Publish run.
type Counts struct {
	Lines, Published, Duplicates, Rejected int
}

// NewPublisher returns a Publisher on nc; logger is its clients'.
func NewPublisher(nc *nats.Conn, logger *slog.Logger) *Publisher {
	return &Publisher{nc: nc, logger: logger, byApp: map[string]*appLines{}, seen: map[string]struct{}{}}
}

// progressEvery is how often Publish reports its progress on a long file.
const progressEvery = 2 * time.Second

// Publish publishes every non-empty line of in, asynchronously within each
// app's client's bounded window, and reports bad lines (and, on a long
// file, its progress) to errOut. It waits until every event was stored or
// failed for good, so the counts are exact: Published and Duplicates come
// from the stream's acknowledgements. It stops early only when the context
// ends, reading fails or NATS fails; events not stored make it fail,
// saying how many.
func (a *Publisher) Publish(ctx context.Context, in io.Reader, errOut io.Writer) (Counts, error) {
	var n Counts
	r := bufio.NewReaderSize(in, maxLine)
	start, lastReport := time.Now(), time.Now()
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of an overlong line; it can't be an event.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			n.Lines++
			n.Rejected++
			fmt.Fprintf(errOut, "line %d: invalid event: (event): must be at most %d bytes\n", lineNo, schemas.MaxEventBytes)
			line = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n.Lines++
			perr := a.add(ctx, line, lineNo, errOut, &n)
			switch {
			case perr == nil:
			case errors.Is(perr, schemas.ErrInvalidEvent):
				n.Rejected++
				fmt.Fprintf(errOut, "line %d: %v\n", lineNo, perr)
			default:
				return a.finish(ctx, n, errOut, fmt.Errorf("line %d: %w", lineNo, perr))
			}
		}
		if time.Since(lastReport) >= progressEvery {
			lastReport = time.Now()
			fmt.Fprintf(errOut, "publish: %d lines read, %d rejected, %.0f lines/s\n", n.Lines, n.Rejected, float64(n.Lines)/time.Since(start).Seconds())
		}
		if errors.Is(err, io.EOF) {
			return a.finish(ctx, n, errOut, nil)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return a.finish(ctx, n, errOut, fmt.Errorf("read events: %w", err))
		}
	}
}

// finish publishes the lines still held and settles.
func (a *Publisher) finish(ctx context.Context, n Counts, errOut io.Writer, failed error) (Counts, error) {
	return a.settle(ctx, n, errors.Join(failed, a.flushAll(ctx, errOut, &n)))
}

// settle waits for every accepted event to be stored or fail, and fills
// n's Published and Duplicates from the clients' acknowledgements. It
// returns failed joined with the clients' failures.
func (a *Publisher) settle(ctx context.Context, n Counts, failed error) (Counts, error) {
	errs := []error{failed}
	for app, al := range a.byApp {
		c := al.client
		if err := c.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", app, err))
		}
		st := c.Stats()
		n.Published += int(st.Published - st.Duplicates)
		n.Duplicates += int(st.Duplicates)
		if st.Failed > 0 {
			errs = append(errs, fmt.Errorf("app %s: %d events not stored", app, st.Failed))
		}
	}
	return n, errors.Join(errs...)
}

// Publisher publishes NDJSON lines of schema v1 events through the SDK,
// with one client per app named in them: a client publishes for one app
// only. Each app's lines go in chunks of chunkLines, in file order, which
// the SDK packs into batched messages the same way every time, so that a
// file published again is recognized as duplicates. It is not safe for
// concurrent use.
type Publisher struct {
	nc     *nats.Conn
	logger *slog.Logger
	byApp  map[string]*appLines
	// seen holds the event ids read so far: an id seen again in the file
	// is a duplicate, counted and not published (within a batch the
	// stream could not tell).
	seen map[string]struct{}
}

// appLines is an app's client and the lines read for it, not yet handed
// to the client.
type appLines struct {
	client  *sdk.Client
	lines   [][]byte
	lineNos []int
}

// chunkLines is how many lines of one app are handed to the SDK at once.
const chunkLines = 1024

// add validates line strictly and keeps it for its app's next chunk,
// publishing the chunk when it is full.
func (a *Publisher) add(ctx context.Context, line []byte, lineNo int, errOut io.Writer, n *Counts) error {
	e, err := schemas.Decode(line, time.Now())
	if err != nil {
		return err
	}
	if _, dup := a.seen[e.ID]; dup {
		n.Duplicates++
		return nil
	}
	a.seen[e.ID] = struct{}{}
	al, ok := a.byApp[e.App]
	if !ok {
		c, err := sdk.NewClient(a.nc, sdk.WithApp(e.App), sdk.WithLogger(a.logger), sdk.WithBlockOnFull(time.Minute))
		if err != nil {
			return fmt.Errorf("client for app %s: %w", e.App, err)
		}
		al = &appLines{client: c}
		a.byApp[e.App] = al
		waitForLayout(ctx, c)
	}
	// ReadSlice's buffer is reused for the next line.
	al.lines = append(al.lines, bytes.Clone(line))
	al.lineNos = append(al.lineNos, lineNo)
	if len(al.lines) < chunkLines {
		return nil
	}
	return a.flush(ctx, al, errOut, n)
}

// layoutWait bounds the wait for a new client to learn how to batch.
const layoutWait = 1500 * time.Millisecond

// waitForLayout gives a new client up to layoutWait to learn the events
// stream's layout, so that a file is packed the same way each time it is
// published (without an answer, events go one per message).
func waitForLayout(ctx context.Context, c *sdk.Client) {
	deadline := time.Now().Add(layoutWait)
	for !c.Batching() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// flush hands al's lines to its client and reports those the SDK refused.
func (a *Publisher) flush(ctx context.Context, al *appLines, errOut io.Writer, n *Counts) error {
	bad, err := al.client.PublishJSONBatchAsync(ctx, al.lines)
	for i, berr := range bad {
		if berr != nil {
			n.Rejected++
			fmt.Fprintf(errOut, "line %d: %v\n", al.lineNos[i], berr)
		}
	}
	al.lines, al.lineNos = al.lines[:0], al.lineNos[:0]
	return err
}

// flushAll publishes every app's remaining lines.
func (a *Publisher) flushAll(ctx context.Context, errOut io.Writer, n *Counts) error {
	for _, al := range a.byApp {
		if err := a.flush(ctx, al, errOut, n); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every client, waiting (until ctx ends) for what they hold.
func (a *Publisher) Close(ctx context.Context) error {
	var errs []error
	for _, al := range a.byApp {
		errs = append(errs, al.client.Close(ctx))
	}
	return errors.Join(errs...)
}
