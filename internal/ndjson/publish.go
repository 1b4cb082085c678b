// Package ndjson publishes files of schema v1 events, one JSON object a
// line, through the SDK (sessionmon publish).
package ndjson

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/internal/cache"
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
	return &Publisher{
		nc: nc, logger: logger, byApp: map[string]*appLines{},
		seen:  cache.New[idDigest, struct{}](seenIDs),
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
	}
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
	stream := isStream(in)
	start, lastReport := time.Now(), time.Now()
	block := make([]pendingLine, 0, blockLines)
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
			// ReadSlice's buffer is reused for the next line.
			block = append(block, pendingLine{no: lineNo, data: bytes.Clone(line)})
		}
		// From a pipe, what has arrived goes out before the next read
		// waits for more.
		waiting := stream && r.Buffered() == 0
		if len(block) == blockLines || (err != nil || waiting) && len(block) > 0 {
			if perr := a.addBlock(ctx, block, errOut, &n); perr != nil {
				return a.finish(ctx, n, errOut, perr)
			}
			block = block[:0]
			if waiting {
				if perr := a.flushAll(ctx, errOut, &n); perr != nil {
					return a.finish(ctx, n, errOut, perr)
				}
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

// isStream reports whether in is a pipe, a terminal or a socket rather
// than a regular file: lines then arrive over time.
func isStream(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && !fi.Mode().IsRegular()
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
	// seen holds the event ids of the last 1-2 million lines: an id seen
	// again is a duplicate, counted and not published (within a batch the
	// stream could not tell). Farther apart, a repeated id may be stored
	// twice in the stream; ClickHouse keeps one row. It holds digests
	// (see digest), not the ids, so that the garbage collector has no
	// pointers to follow in it.
	seen  *cache.Cache[idDigest, struct{}]
	seeds [2]maphash.Seed
}

// idDigest is 128 bits of an event id: two hashes with random seeds.
// Two of 2 million ids share one with odds of about 1 in 10^26, and the
// seeds are drawn anew each run, so no file can be made to collide.
type idDigest [2]uint64

func (a *Publisher) digest(id string) idDigest {
	return idDigest{maphash.String(a.seeds[0], id), maphash.String(a.seeds[1], id)}
}

// appLines is an app's client and the lines read for it, not yet handed
// to the client.
type appLines struct {
	client  *sdk.Client
	lines   [][]byte
	lineNos []int
}

// seenIDs is about how many recent event ids Publish remembers.
const seenIDs = 2 << 20

// chunkLines is how many lines of one app are handed to the SDK at once.
const chunkLines = 1024

// pendingLine is a line read and not yet handed to its app's client,
// with what the strict decoder found.
type pendingLine struct {
	no      int
	data    []byte
	app, id string
	err     error
}

// blockLines is how many lines are decoded at once, on every core.
const blockLines = 4096

// addBlock validates the lines of block strictly, in parallel, then
// reports the bad ones and keeps each good one for its app's next chunk,
// in file order, publishing a chunk when it is full. It fails only when
// publishing does.
func (a *Publisher) addBlock(ctx context.Context, block []pendingLine, errOut io.Writer, n *Counts) error {
	now := time.Now()
	workers := min(runtime.GOMAXPROCS(0), (len(block)+255)/256)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(block); i += workers {
				l := &block[i]
				e, err := schemas.Decode(l.data, now)
				if err != nil {
					l.err = err
					continue
				}
				l.app, l.id = e.App, e.ID
			}
		}()
	}
	wg.Wait()
	for i := range block {
		l := &block[i]
		if l.err != nil {
			n.Rejected++
			fmt.Fprintf(errOut, "line %d: %v\n", l.no, l.err)
			continue
		}
		id := a.digest(l.id)
		if _, dup := a.seen.Get(id); dup {
			n.Duplicates++
			continue
		}
		a.seen.Put(id, struct{}{})
		al, ok := a.byApp[l.app]
		if !ok {
			c, err := sdk.NewClient(a.nc, sdk.WithApp(l.app), sdk.WithLogger(a.logger), sdk.WithBlockOnFull(time.Minute))
			if err != nil {
				return fmt.Errorf("line %d: client for app %s: %w", l.no, l.app, err)
			}
			al = &appLines{client: c}
			a.byApp[l.app] = al
			waitForLayout(ctx, c)
		}
		al.lines = append(al.lines, l.data)
		al.lineNos = append(al.lineNos, l.no)
		if len(al.lines) < chunkLines {
			continue
		}
		if err := a.flush(ctx, al, errOut, n); err != nil {
			return fmt.Errorf("line %d: %w", l.no, err)
		}
	}
	return nil
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
