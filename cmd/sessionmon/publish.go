package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// maxLine is the longest NDJSON line read; longer lines are rejected (an
// event is at most schemas.MaxEventBytes anyway).
const maxLine = 1 << 20

func publishCommand() *command {
	return &command{
		name:  "publish",
		short: "publish an NDJSON file of schema v1 events",
		usage: "sessionmon publish --file EVENTS.ndjson [options]",
		summary: `Publish already-pseudonymized schema v1 events, one JSON object a line, through
the SDK. Each line is validated first; a bad line is reported with its line
number and the field and rule it breaks, and skipped. Prints the counts of
published, duplicate and rejected events; exits 1 when any line was rejected.
Without --nats-url it connects to the embedded server of 'sessionmon serve'.`,
		options: join([]string{"log-format", "log-level", "nats-listen", "file"}, natsOptions, secretOptions),
		run:     runPublish,
	}
}

// publishCounts are the results of a publish run.
type publishCounts struct {
	lines, published, duplicates, rejected int
}

func runPublish(ctx context.Context, e *env) error {
	if e.cfg.Publish.File == "" {
		return errors.New("--file is required (use - for standard input)")
	}
	var in io.Reader = os.Stdin
	if e.cfg.Publish.File != "-" {
		f, err := os.Open(e.cfg.Publish.File)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		defer f.Close()
		in = f
	}
	url := e.cfg.NATS.ClientURL()
	nc, err := natsconn.Connect(url, e.cfg.NATS, "sessionmon-publish", e.logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	clients := &appClients{nc: nc, logger: e.logger, byApp: map[string]*sdk.Client{}}
	start := time.Now()
	n, err := publishLines(ctx, clients, in, e.stderr)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if cerr := clients.close(closeCtx); cerr != nil && err == nil {
		err = cerr
	}
	fmt.Fprintf(e.stdout, "published %d, duplicates %d, rejected %d of %d lines in %s\n",
		n.published, n.duplicates, n.rejected, n.lines, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return err
	}
	if n.rejected > 0 {
		return fmt.Errorf("%d of %d lines rejected", n.rejected, n.lines)
	}
	return nil
}

// publishLines publishes every non-empty line of in and reports bad lines
// to errOut. It stops early only when the context ends, reading fails or
// NATS fails.
func publishLines(ctx context.Context, clients *appClients, in io.Reader, errOut io.Writer) (publishCounts, error) {
	var n publishCounts
	r := bufio.NewReaderSize(in, maxLine)
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of an overlong line; it can't be an event.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			n.lines++
			n.rejected++
			fmt.Fprintf(errOut, "line %d: invalid event: (event): must be at most %d bytes\n", lineNo, schemas.MaxEventBytes)
			line = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			n.lines++
			dup, perr := clients.publish(ctx, line)
			switch {
			case perr == nil && dup:
				n.duplicates++
			case perr == nil:
				n.published++
			case errors.Is(perr, schemas.ErrInvalidEvent):
				n.rejected++
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

// appClients holds one SDK client per app named in the file: a client
// publishes for one app only.
type appClients struct {
	nc     *nats.Conn
	logger *slog.Logger
	byApp  map[string]*sdk.Client
}

// publish validates line, publishes it through its app's client and
// reports whether the stream already held its id.
func (a *appClients) publish(ctx context.Context, line []byte) (bool, error) {
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

func (a *appClients) close(ctx context.Context) error {
	var errs []error
	for _, c := range a.byApp {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}
