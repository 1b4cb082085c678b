package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/ndjson"
	"github.com/sessionmon/sessionmon/schemas"
)

func publishCommand() *command {
	return &command{
		name:  "publish",
		short: "publish an NDJSON file of schema v1 events",
		usage: "sessionmon publish --file EVENTS.ndjson [options]",
		summary: `Publish already-pseudonymized schema v1 events, one JSON object a line, through
the SDK. Each line is validated first; a bad line is reported with its line
number and the field and rule it breaks, and skipped. Prints the counts of
published, duplicate and rejected events; exits 1 when any line was rejected.
Events go out asynchronously, in batched messages of one app and stream
partition, packed the same way each time for the same file: a file published
again is counted as duplicates and stored once. An id repeated within a
million lines is a duplicate too.
Without --nats-url it connects to the embedded server of 'sessionmon serve'.`,
		options: join([]string{"log-format", "log-level", "nats-listen", "file"}, natsOptions, secretOptions),
		run:     runPublish,
	}
}

func runPublish(ctx context.Context, e *env) error {
	if e.cfg.Publish.File == "" {
		return usagef("--file is required (use - for standard input)")
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
	// The SDK batches once someone tells it the events stream's layout:
	// sessionmon's ingest workers do, and so does this command while it
	// runs, when its credentials may read the stream (an app's may not:
	// it asks the workers first).
	if js, err := jetstream.New(nc); err == nil && !layoutAnswered(ctx, nc) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := natsconn.EventPartitions(lctx, js)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			// Every publish would wait for a stream that is not there.
			return fmt.Errorf("%s has no events stream %s: start sessionmon (serve or ingest) against it once, which creates it", url, schemas.EventStream)
		case err == nil:
			if stop, err := natsconn.ServeLayout(ctx, nc, js, e.logger); err == nil {
				defer stop()
			}
		}
	}
	pub := ndjson.NewPublisher(nc, e.logger)
	start := time.Now()
	n, err := pub.Publish(ctx, in, e.stderr)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if cerr := pub.Close(closeCtx); cerr != nil && err == nil {
		err = cerr
	}
	fmt.Fprintf(e.stdout, "published %d, duplicates %d, rejected %d of %d lines in %s\n",
		n.Published, n.Duplicates, n.Rejected, n.Lines, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return err
	}
	if n.Rejected > 0 {
		return fmt.Errorf("%d of %d lines rejected", n.Rejected, n.Lines)
	}
	return nil
}

// layoutAnswered reports whether a layout responder (an ingest worker)
// answers on nc within a second.
func layoutAnswered(ctx context.Context, nc *nats.Conn) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := nc.RequestWithContext(ctx, schemas.LayoutSubject, nil)
	return err == nil
}
