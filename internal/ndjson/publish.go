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
	return &Publisher{nc: nc, logger: logger, byApp: map[string]*sdk.Client{}}
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
			perr := a.publish(ctx, line)
			switch {
			case perr == nil:
			case errors.Is(perr, schemas.ErrInvalidEvent):
				n.Rejected++
				fmt.Fprintf(errOut, "line %d: %v\n", lineNo, perr)
			default:
				return a.settle(ctx, n, fmt.Errorf("line %d: %w", lineNo, perr))
			}
		}
		if time.Since(lastReport) >= progressEvery {
			lastReport = time.Now()
			fmt.Fprintf(errOut, "publish: %d lines read, %d rejected, %.0f lines/s\n", n.Lines, n.Rejected, float64(n.Lines)/time.Since(start).Seconds())
		}
		if errors.Is(err, io.EOF) {
			return a.settle(ctx, n, nil)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return a.settle(ctx, n, fmt.Errorf("read events: %w", err))
		}
	}
}

// settle waits for every accepted event to be stored or fail, and fills
// n's Published and Duplicates from the clients' acknowledgements. It
// returns failed joined with the clients' failures.
func (a *Publisher) settle(ctx context.Context, n Counts, failed error) (Counts, error) {
	errs := []error{failed}
	for app, c := range a.byApp {
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
// only. It is not safe for concurrent use.
type Publisher struct {
	nc     *nats.Conn
	logger *slog.Logger
	byApp  map[string]*sdk.Client
}

// publish validates line and hands it to its app's client, waiting for
// room in the client's window.
func (a *Publisher) publish(ctx context.Context, line []byte) error {
	e, err := schemas.Decode(line, time.Now())
	if err != nil {
		return err
	}
	c, ok := a.byApp[e.App]
	if !ok {
		if c, err = sdk.NewClient(a.nc, sdk.WithApp(e.App), sdk.WithLogger(a.logger), sdk.WithBlockOnFull(time.Minute)); err != nil {
			return fmt.Errorf("client for app %s: %w", e.App, err)
		}
		a.byApp[e.App] = c
	}
	return c.PublishJSONAsync(ctx, line)
}

// Close closes every client, waiting (until ctx ends) for what they hold.
func (a *Publisher) Close(ctx context.Context) error {
	var errs []error
	for _, c := range a.byApp {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}
