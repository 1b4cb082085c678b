package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/retention"
)

func eraseCommand() *command {
	return &command{
		name:  "erase",
		short: "erase everything stored about a data subject (erasure requests)",
		usage: "sessionmon erase --subject PSEUDONYM [--requested-by NAME] | sessionmon erase list [options]",
		summary: `File an erasure request (Art. 17) for a data subject and carry it out now:
delete their events and alerts, and the status changes and webhook
deliveries of those alerts, from ClickHouse, wait until the deletions are
done (at most retention.mutation_timeout per table), record them in
deletion_log; delete every message about the subject from the NATS streams
(events, alerts and their status changes, dead letters); and ask running
detectors to drop the subject's state. Prints the request id, its status,
the rows erased per table and the messages deleted per stream.
The request and its status (pending, running, done, failed) are kept in
the erasure_requests table. Once done, the request keeps only the SHA-256
of the pseudonym ("sha256:..."), as deletion_log does, with the counts as
proof; the pseudonym is kept only while the request is unfinished, so that
it can be resumed. A request interrupted by a crash stays pending or
running and is finished by 'sessionmon serve', which resumes such requests
at start and every minute. A subject under legal hold is refused (see
'sessionmon hold'). Needs NATS. Safe to run again. 'erase list' shows the
newest requests with the subject's hash and their status. Progress (each
table and stream, every 10 s while a deletion runs) and a summary go to
standard error, and never name the subject.`,
		options: join([]string{"log-format", "log-level", "subject", "requested-by", "format"}, natsOptions, clickhouseOptions, secretOptions),
		words:   true,
		run:     runErase,
	}
}

func exportCommand() *command {
	return &command{
		name:  "export",
		short: "export everything stored about a data subject as NDJSON",
		usage: "sessionmon export --subject PSEUDONYM [--output FILE] [options]",
		summary: `Export everything stored in ClickHouse for a data subject as NDJSON: one
{"data_set": ..., "row": {...}} object a line, events, alerts, alert status
changes and webhook deliveries, each row once. Progress and a summary go to
standard error.`,
		options: join([]string{"log-format", "log-level", "subject", "output"}, clickhouseOptions, secretOptions),
		run:     runExport,
	}
}

func openSubjectStore(ctx context.Context, e *env) (*chstore.Store, error) {
	if e.cfg.SubjectRequest.Subject == "" {
		return nil, usagef("--subject is required")
	}
	store, _, err := openRetentionStore(ctx, e.cfg, e.logger)
	return store, err
}

// erasureListLimit is how many requests `erase list` shows.
const erasureListLimit = 100

func runErase(ctx context.Context, e *env) error {
	list := len(e.args) > 0
	if list {
		if err := wantWord(e.args, "list"); err != nil {
			return err
		}
	}
	if !list && e.cfg.SubjectRequest.Subject == "" {
		return usagef("--subject is required (or: sessionmon erase list)")
	}
	store, rc, err := openRetentionStore(ctx, e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer store.Close()
	var note string
	forget := func(ctx context.Context, subject string, alertIDs []string) (chstore.StreamMessages, error) {
		res, err := purgeDetectorState(ctx, e, subject, alertIDs)
		note = res.String()
		return res.Purged, err
	}
	// Progress and the summary go to stderr, and never name the subject.
	pr := progress.ForWriter(e.stderr, "erase")
	eraser := retention.NewEraser(store, forget, e.logger, retention.WithMutationTimeout(time.Duration(rc.MutationTimeout)),
		retention.WithEraserProgress(pr))
	if list {
		reqs, err := eraser.Requests(ctx, erasureListLimit)
		if err != nil {
			return err
		}
		if formatJSON(e) {
			return printJSON(e.stdout, erasureRequestsJSON(reqs))
		}
		return printErasureRequests(e.stdout, reqs)
	}
	req, err := eraser.Request(ctx, e.cfg.SubjectRequest.Subject, requester(e.cfg.SubjectRequest.RequestedBy))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "request %s: %s\n", req.ID, req.Status)
	release, err := erasureLock(ctx, e)
	if errors.Is(err, natsconn.ErrLocked) {
		fmt.Fprintln(e.stdout, "another process is carrying out erasure requests now; this one stays pending and a running 'sessionmon serve' finishes it (see: sessionmon erase list)")
		return nil
	}
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	req, err = eraser.Process(ctx, req.ID)
	pr.Done(fmt.Sprintf("erase: request %s %s in %s: %d rows erased, %d messages deleted from NATS streams",
		req.ID, req.Status, progress.Round(time.Since(start)), req.Rows.Total(), req.Streams.Total()))
	fmt.Fprintf(e.stdout, "request %s: %s\n", req.ID, req.Status)
	if err != nil {
		return err
	}
	if req.Rows.Total() == 0 && req.Streams.Total() == 0 {
		fmt.Fprintln(e.stdout, "nothing stored for this subject")
	} else {
		for _, t := range retention.SubjectTables {
			fmt.Fprintf(e.stdout, "%s: %d rows erased\n", t, req.Rows[t])
		}
		for _, name := range slices.Sorted(maps.Keys(req.Streams)) {
			fmt.Fprintf(e.stdout, "NATS stream %s: %d messages deleted\n", name, req.Streams[name])
		}
	}
	fmt.Fprintln(e.stdout, "detector state: "+note)
	// The request keeps this hash, not the pseudonym, as its proof.
	fmt.Fprintln(e.stdout, "recorded as subject "+req.SubjectHash)
	return nil
}

// erasureRequestJSON is a row of erase list -o json: the columns of the
// table. The pseudonym is never shown: the hash is the proof.
type erasureRequestJSON struct {
	ID              string    `json:"id"`
	SubjectHash     string    `json:"subject_hash"`
	Status          string    `json:"status"`
	Requested       time.Time `json:"requested"`
	RequestedBy     string    `json:"requested_by"`
	Updated         time.Time `json:"updated"`
	RowsErased      uint64    `json:"rows_erased"`
	MessagesDeleted uint64    `json:"messages_deleted"`
	Error           string    `json:"error"`
}

func erasureRequestsJSON(reqs []chstore.ErasureRequest) []erasureRequestJSON {
	out := make([]erasureRequestJSON, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, erasureRequestJSON{
			ID: r.ID, SubjectHash: r.SubjectHash, Status: string(r.Status), Requested: r.Requested.UTC(), RequestedBy: r.RequestedBy,
			Updated: r.Updated.UTC(), RowsErased: r.Rows.Total(), MessagesDeleted: r.Streams.Total(), Error: r.Error,
		})
	}
	return out
}

func printErasureRequests(out io.Writer, reqs []chstore.ErasureRequest) error {
	if len(reqs) == 0 {
		fmt.Fprintln(out, "no erasure requests")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSUBJECT\tSTATUS\tREQUESTED\tBY\tUPDATED\tROWS ERASED\tMESSAGES DELETED\tERROR")
	for _, r := range reqs {
		// The pseudonym is never shown: the hash is the proof.
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.SubjectHash, r.Status, r.Requested.Format(time.RFC3339),
			r.RequestedBy, r.Updated.Format(time.RFC3339), r.Rows.Total(), r.Streams.Total(), r.Error)
	}
	return w.Flush()
}

// erasureLock takes the lock the erasure worker of 'sessionmon serve'
// takes, so that a request is never carried out by two processes at once.
// Without a reachable NATS no serve is running, and nothing competes: it
// returns a no-op release. It returns natsconn.ErrLocked when another
// process holds the lock.
func erasureLock(ctx context.Context, e *env) (func(), error) {
	nc, err := natsconn.Connect(e.cfg.NATS.ClientURL(), e.cfg.NATS, "sessionmon-erase", e.logger)
	if err != nil {
		return func() {}, nil
	}
	return holdLock(ctx, nc, retention.ErasureLock, retention.LockTTL)
}

// purgeDetectorState erases the subject from NATS and the detectors'
// state (detect.ForgetEverywhere: its messages in the events, alerts and
// dead-letter streams, the state snapshots saved in NATS, and every
// running detect process, serve or each detect of a partitioned
// deployment). It fails when NATS is not reachable (the saved state could
// come back at the next start), and when a step failed; the result says
// what was done.
func purgeDetectorState(ctx context.Context, e *env, subject string, alertIDs []string) (detect.ForgetResult, error) {
	nc, err := natsconn.Connect(e.cfg.NATS.ClientURL(), e.cfg.NATS, "sessionmon-erase", e.logger)
	if err != nil {
		return detect.ForgetResult{}, fmt.Errorf("NATS is not reachable, so its streams and the detectors' saved state may still hold the subject (start sessionmon serve, or NATS, and erase again): %w", err)
	}
	defer nc.Close()
	return detect.ForgetEverywhere(ctx, nc, subject, alertIDs)
}

func runExport(ctx context.Context, e *env) error {
	store, err := openSubjectStore(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	// Progress and the summary go to stderr, and never name the subject.
	pr := progress.ForWriter(e.stderr, "export")
	start := time.Now()
	var d chstore.SubjectData
	_, err = progress.Track(pr, "read from ClickHouse", "rows", 0, "still reading", progress.HeartbeatInterval, func() (int64, error) {
		var err error
		d, err = store.SubjectData(ctx, e.cfg.SubjectRequest.Subject)
		return int64(len(d.Events) + len(d.Alerts) + len(d.AlertStatus) + len(d.WebhookDeliveries)), err
	})
	if err != nil {
		pr.Done("")
		return err
	}
	out := e.stdout
	if e.cfg.Output != "" && e.cfg.Output != "-" {
		f, err := os.Create(e.cfg.Output)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		out = f
	}
	n, err := progress.Track(pr, "write NDJSON", "lines", 0, "still writing", progress.HeartbeatInterval, func() (int64, error) {
		n, err := retention.WriteExport(out, d)
		return int64(n), err
	})
	if err != nil {
		pr.Done("")
		return err
	}
	pr.Done(fmt.Sprintf("export: %d lines written (%d events, %d alerts, %d alert status changes, %d webhook deliveries) in %s",
		n, len(d.Events), len(d.Alerts), len(d.AlertStatus), len(d.WebhookDeliveries), progress.Round(time.Since(start))))
	return nil
}
