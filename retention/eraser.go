package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/progress"
)

// Eraser carries out erasure requests (Art. 17) with a status that is
// stored in ClickHouse (erasure_requests): a request is filed as pending,
// marked running, then done with the rows deleted per table, or failed
// with the error. A request left pending or running by a process that
// died is picked up again by RunPending; erasing is idempotent, so running
// one twice is harmless.
//
// An Eraser is safe for concurrent use, but two processes must not run the
// same request at once: callers serialize RunPending across processes (the
// serve command does with a lock in NATS).
type Eraser struct {
	store   *chstore.Store
	forget  ForgetFunc
	logger  *slog.Logger
	timeout time.Duration
	// progress hears of each step of Process; heartbeat is how often a
	// step that waits says so.
	progress  progress.Reporter
	heartbeat time.Duration
}

// ForgetFunc erases a subject from what sessionmon keeps outside
// ClickHouse: its messages in the NATS streams (events, alerts and their
// status changes, dead letters) and the detectors' state. alertIDs are the
// ids of the subject's alerts as ClickHouse knew them before the erasure,
// so that the status changes of alerts that have already left the alerts
// stream are found. It returns the messages deleted per stream, also when
// it fails part-way, and must be safe to run again.
type ForgetFunc func(ctx context.Context, subject string, alertIDs []string) (chstore.StreamMessages, error)

// EraserOption configures an Eraser.
type EraserOption func(*Eraser)

// WithMutationTimeout bounds each wait for a ClickHouse mutation (default
// DefaultMutationTimeout); see Config.MutationTimeout.
func WithMutationTimeout(d time.Duration) EraserOption {
	return func(e *Eraser) {
		if d > 0 {
			e.timeout = d
		}
	}
}

// WithEraserProgress makes Process report to r as it goes: each table's
// deletion started and finished with its rows and the time it took, a
// heartbeat every progress.HeartbeatInterval while a mutation runs, the
// messages deleted from each NATS stream, and the clearing of the
// pseudonym from the requests. Events name tables and streams, never the
// subject.
func WithEraserProgress(r progress.Reporter) EraserOption {
	return func(e *Eraser) { e.progress = r }
}

// NewEraser returns an Eraser on store. forget, if not nil, is called after
// the subject's rows are deleted, to delete its messages from the NATS
// streams and drop what running detectors hold about it. A nil logger
// discards.
func NewEraser(store *chstore.Store, forget ForgetFunc, logger *slog.Logger, opts ...EraserOption) *Eraser {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Eraser{store: store, forget: forget, logger: logger.With("component", "erasure"), timeout: DefaultMutationTimeout,
		heartbeat: progress.HeartbeatInterval}
	for _, opt := range opts {
		opt(e)
	}
	e.progress = progress.OrNop(e.progress)
	return e
}

// Request files an erasure request for subject, asked for by requestedBy,
// as pending, and returns it. It refuses an invalid subject or an empty
// requestedBy (ErrInvalidRequest or chstore.ErrInvalidArgument, naming the
// field) and a subject under legal hold (ErrLegalHold). Process or
// RunPending carry it out.
func (e *Eraser) Request(ctx context.Context, subject, requestedBy string) (chstore.ErasureRequest, error) {
	if err := chstore.CheckSubject(subject); err != nil {
		return chstore.ErasureRequest{}, fmt.Errorf("erasure request: %w", err)
	}
	if strings.TrimSpace(requestedBy) == "" {
		return chstore.ErasureRequest{}, fmt.Errorf("erasure request: %w: requested_by: required (who asks for the erasure)", ErrInvalidRequest)
	}
	if err := checkNotHeld(ctx, e.store, subject); err != nil {
		return chstore.ErasureRequest{}, fmt.Errorf("erasure request: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := chstore.ErasureRequest{
		ID: "erasure-" + now.Format("20060102T150405Z") + "-" + randomHex(4), Seq: 1,
		Subject: subject, SubjectHash: subjectHash(subject), RequestedBy: requestedBy, Status: chstore.ErasurePending,
		Requested: now, Updated: now,
	}
	if err := e.store.AppendErasureStatus(ctx, r); err != nil {
		return chstore.ErasureRequest{}, fmt.Errorf("erasure request: %w", err)
	}
	e.logger.InfoContext(ctx, "erasure requested", slog.String("request", r.ID), slog.String("subject", r.SubjectHash))
	return r, nil
}

// Process carries out request id: it marks it running, erases the subject
// (Erase), deletes its messages from the NATS streams and asks the
// detectors to forget it (the ForgetFunc), then marks it done with the
// rows and messages deleted, or failed with the error, and returns its
// final state. Once done, the pseudonym is cleared from every status
// change of the request, and of the subject's earlier failed requests,
// which keep only its hash (see chstore.ClearErasureSubject). A request
// already done is returned as it is; a failed one is tried again, unless a
// later request erased its subject (ErrInvalidRequest). A subject put under legal hold after
// the request was filed fails it with ErrLegalHold. When ctx ends first,
// the request stays running and the error wraps ctx's: RunPending resumes
// it later.
func (e *Eraser) Process(ctx context.Context, id string) (chstore.ErasureRequest, error) {
	r, ok, err := e.store.ErasureRequest(ctx, id)
	if err != nil {
		return chstore.ErasureRequest{}, fmt.Errorf("process erasure request: %w", err)
	}
	if !ok {
		return chstore.ErasureRequest{}, fmt.Errorf("process erasure request %s: %w", id, ErrNotFound)
	}
	if r.Status == chstore.ErasureDone {
		return r, nil
	}
	if r.Subject == "" {
		return r, fmt.Errorf("process erasure request %s: %w: a later request erased its subject (%s) and keeps the proof; "+
			"its pseudonym is no longer stored, file a new request to erase the subject again", r.ID, ErrInvalidRequest, r.SubjectHash)
	}
	start := time.Now()
	subject := r.Subject
	if r, err = e.advance(ctx, r, chstore.ErasureRunning, nil, nil, nil); err != nil {
		return r, err
	}
	// Before the alerts are deleted: the status changes of the subject's
	// alerts in the alerts stream are found by these ids.
	alertIDs, runErr := e.store.AlertIDsOfSubjects(ctx, []string{subject})
	var (
		rows   chstore.SubjectRows
		purged chstore.StreamMessages
	)
	if runErr == nil {
		rows, runErr = erase(ctx, e.store, subject, e.timeout, e.progress, e.heartbeat)
	}
	if runErr == nil && e.forget != nil {
		var err error
		_, err = progress.Track(e.progress, "NATS streams and detector state", "messages", 0, "waiting for NATS and the detectors",
			e.heartbeat, func() (int64, error) {
				var err error
				purged, err = e.forget(ctx, subject, alertIDs)
				for _, name := range slices.Sorted(maps.Keys(purged)) {
					e.progress.Report(progress.Event{Kind: progress.Advanced, Step: "NATS stream " + name,
						Done: int64(purged[name]), Unit: "messages deleted"})
				}
				return int64(purged.Total()), err
			})
		if err != nil {
			runErr = fmt.Errorf("erase subject: NATS streams and detector state not purged: %w", err)
		}
	}
	if runErr != nil && ctx.Err() != nil {
		// Shutting down: leave it running for RunPending to resume.
		return r, fmt.Errorf("process erasure request %s: %w", r.ID, runErr)
	}
	status := chstore.ErasureDone
	if runErr != nil {
		status = chstore.ErasureFailed
	}
	r, err = e.advance(ctx, r, status, rows, purged, runErr)
	if err != nil {
		return r, errors.Join(runErr, err)
	}
	if runErr != nil {
		return r, fmt.Errorf("process erasure request %s: %w", r.ID, runErr)
	}
	e.clearSubject(ctx, subject)
	e.logger.InfoContext(ctx, "erasure done", slog.String("request", r.ID), slog.String("subject", r.SubjectHash),
		slog.Uint64("rows_deleted", rows.Total()), slog.Uint64("messages_deleted", purged.Total()),
		slog.Duration("duration", time.Since(start)))
	return r, nil
}

// clearSubject removes the pseudonym subject, now erased, from its
// finished erasure requests, which keep its hash. A failure is logged, not
// returned: the erasure itself is done, and RunPending clears it again.
func (e *Eraser) clearSubject(ctx context.Context, subject string) {
	_, err := progress.Track(e.progress, "erasure requests: clear the pseudonym", "requests", 0, waitNote, e.heartbeat, func() (int64, error) {
		n, err := e.store.ClearErasureSubject(ctx, subject, mutationPoll, e.timeout)
		return int64(n), err
	})
	if err != nil {
		e.logger.WarnContext(ctx, "erasure requests keep the pseudonym until the next run", slog.String("subject", subjectHash(subject)),
			slog.Any("error", err))
	}
}

// advance appends the next status change of r and returns the new state.
// The change to done names the subject by its hash only.
func (e *Eraser) advance(ctx context.Context, r chstore.ErasureRequest, status string, rows chstore.SubjectRows,
	streams chstore.StreamMessages, cause error) (chstore.ErasureRequest, error) {
	next := r
	next.Seq++
	next.Status, next.Rows, next.Streams, next.Error = status, rows, streams, ""
	if cause != nil {
		next.Error = cause.Error()
	}
	if status == chstore.ErasureDone {
		next.Subject = ""
	}
	next.Updated = time.Now().UTC().Truncate(time.Millisecond)
	if !next.Updated.After(r.Updated) {
		next.Updated = r.Updated.Add(time.Millisecond)
	}
	if err := e.store.AppendErasureStatus(ctx, next); err != nil {
		return r, fmt.Errorf("erasure request %s: mark %s: %w", r.ID, status, err)
	}
	return next, nil
}

// RunPending clears the pseudonyms of erased subjects that requests still
// name, then processes every request left pending or running, oldest
// first, and returns how many it finished (done or failed). It goes on
// after a request fails; the error joins the failures, and ends early when
// ctx ends. Each failure is also recorded in its request.
func (e *Eraser) RunPending(ctx context.Context) (int, error) {
	// Requests done before their pseudonym was cleared (by an older
	// version, or when clearing failed) keep only their hash from now on.
	erased, err := e.store.ErasedSubjectsStillNamed(ctx)
	if err != nil {
		return 0, fmt.Errorf("run pending erasure requests: %w", err)
	}
	for _, subject := range erased {
		e.clearSubject(ctx, subject)
	}
	reqs, err := e.store.UnfinishedErasureRequests(ctx)
	if err != nil {
		return 0, fmt.Errorf("run pending erasure requests: %w", err)
	}
	var (
		n    int
		errs []error
	)
	for _, r := range reqs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if r.Status == chstore.ErasureRunning {
			e.logger.InfoContext(ctx, "erasure resumed", slog.String("request", r.ID))
		}
		done, err := e.Process(ctx, r.ID)
		if done.Finished() {
			n++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// Requests returns the current state of up to limit requests, newest
// first.
func (e *Eraser) Requests(ctx context.Context, limit int) ([]chstore.ErasureRequest, error) {
	return e.store.ErasureRequests(ctx, limit)
}
