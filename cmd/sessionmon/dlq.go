package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/natsconn"
)

func dlqCommand() *command {
	return &command{
		name:  "dlq",
		short: "list dead letters (refused events) with reasons",
		usage: "sessionmon dlq list [--limit N] [options]",
		summary: `Show the newest dead letters: events ingest refused (not JSON, not schema v1, or
carrying what looks like raw personal data), with the reason and the fields.
Values that look like personal data were redacted before the dead letter was
stored. Without --nats-url it connects to the embedded server of
'sessionmon serve'.`,
		options: join([]string{"log-format", "log-level", "limit", "format"}, natsOptions, secretOptions),
		words:   true,
		run:     runDLQ,
	}
}

// deadLetterJSON is a row of dlq list -o json: the columns of the table.
type deadLetterJSON struct {
	Seq uint64 `json:"seq"`
	// EventSeq and EventIndex say where the refused event was: the
	// message's sequence in the events stream and, in a batched message,
	// the event's place in it (from 1).
	EventSeq   uint64    `json:"event_seq"`
	EventIndex int       `json:"event_index,omitempty"`
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	Fields     []string  `json:"fields"`
	Error      string    `json:"error"`
}

func runDLQ(ctx context.Context, e *env) error {
	if err := wantWord(e.args, "list"); err != nil {
		return err
	}
	url := e.cfg.NATS.ClientURL()
	nc, err := natsconn.Connect(url, e.cfg.NATS, "sessionmon-dlq", e.logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	dead, err := ingest.ListDeadLetters(ctx, js, e.cfg.DLQ.Limit)
	missing := errors.Is(err, jetstream.ErrStreamNotFound)
	if err != nil && !missing {
		return err
	}
	if formatJSON(e) {
		out := make([]deadLetterJSON, 0, len(dead))
		for _, d := range dead {
			fields := d.Fields
			if fields == nil {
				fields = []string{}
			}
			out = append(out, deadLetterJSON{Seq: d.Seq, EventSeq: d.EventSeq, EventIndex: d.EventIndex, Time: d.Time.UTC(), Reason: d.Reason, Fields: fields, Error: d.Error})
		}
		return printJSON(e.stdout, out)
	}
	if missing {
		fmt.Fprintln(e.stdout, "no dead letters (the dead-letter stream does not exist yet)")
		return nil
	}
	if len(dead) == 0 {
		fmt.Fprintln(e.stdout, "no dead letters")
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tEVENT\tTIME\tREASON\tFIELDS\tERROR")
	for _, d := range dead {
		event := strconv.FormatUint(d.EventSeq, 10)
		if d.EventIndex > 0 {
			event += "#" + strconv.Itoa(d.EventIndex)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", d.Seq, event, d.Time.UTC().Format(time.RFC3339), d.Reason, strings.Join(d.Fields, ","), d.Error)
	}
	return w.Flush()
}
