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

// Publish publishes every non-empty line of in and reports bad lines
// to errOut. It stops early only when the context ends, reading fails or
// NATS fails.
func (a *Publisher) Publish(ctx context.Context, in io.Reader, errOut io.Writer) (Counts, error) {
	var n Counts
	r := bufio.NewReaderSize(in, maxLine)
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
			dup, perr := a.publish(ctx, line)
			switch {
			case perr == nil && dup:
				n.Duplicates++
			case perr == nil:
				n.Published++
			case errors.Is(perr, schemas.ErrInvalidEvent):
				n.Rejected++
				fmt.Fprintf(errOut, "line %d: %v\n", lineNo, perr)
			default:
				return n, fmt.Errorf("line %d: %w", lineNo, perr)
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, fmt.Errorf("read events: %w", err)
		}
	}
}

// Publisher publishes NDJSON lines of schema v1 events through the SDK,
// with one client per app named in them: a client publishes for one app
// only. It is not safe for concurrent use.
type Publisher struct {
	nc     *nats.Conn
	logger *slog.Logger
	byApp  map[string]*sdk.Client
}

// publish validates line, publishes it through its app's client and
// reports whether the stream already held its id.
func (a *Publisher) publish(ctx context.Context, line []byte) (bool, error) {
	e, err := schemas.Decode(line, time.Now())
	if err != nil {
		return false, err
	}
	c, ok := a.byApp[e.App]
	if !ok {
		if c, err = sdk.NewClient(a.nc, sdk.WithApp(e.App), sdk.WithLogger(a.logger)); err != nil {
			return false, fmt.Errorf("client for app %s: %w", e.App, err)
		}
		a.byApp[e.App] = c
	}
	dups := c.Stats().Duplicates
	if err := c.PublishJSON(ctx, line); err != nil {
		return false, err
	}
	return c.Stats().Duplicates > dups, nil
}

// Close closes every client, waiting (until ctx ends) for what they hold.
func (a *Publisher) Close(ctx context.Context) error {
	var errs []error
	for _, c := range a.byApp {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}
