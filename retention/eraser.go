package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
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
	forget  func(ctx context.Context, subject string) error
	logger  *slog.Logger
	timeout time.Duration
}

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

// NewEraser returns an Eraser on store. forget, if not nil, is called after
// the subject's rows are deleted, to drop what running detectors hold in
// memory about it; it returns nil when there is nothing to drop. A nil
// logger discards.
func NewEraser(store *chstore.Store, forget func(ctx context.Context, subject string) error, logger *slog.Logger, opts ...EraserOption) *Eraser {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Eraser{store: store, forget: forget, logger: logger.With("component", "erasure"), timeout: DefaultMutationTimeout}
	for _, opt := range opts {
		opt(e)
	}
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
		Subject: subject, RequestedBy: requestedBy, Status: chstore.ErasurePending,
		Requested: now, Updated: now,
	}
	if err := e.store.AppendErasureStatus(ctx, r); err != nil {
		return chstore.ErasureRequest{}, fmt.Errorf("erasure request: %w", err)
	}
	e.logger.InfoContext(ctx, "erasure requested", slog.String("request", r.ID), slog.String("subject", subjectHash(subject)))
	return r, nil
}

// Process carries out request id: it marks it running, erases the subject
// (Erase) and asks the detectors to forget it, then marks it done with the
// rows deleted, or failed with the error, and returns its final state. A
// request already done is returned as it is; a failed one is tried again.
// A subject put under legal hold after the request was filed fails it
// with ErrLegalHold. When ctx ends first, the request stays running and
// the error wraps ctx's: RunPending resumes it later.
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
	start := time.Now()
	if r, err = e.advance(ctx, r, chstore.ErasureRunning, nil, nil); err != nil {
		return r, err
	}
	rows, runErr := erase(ctx, e.store, r.Subject, e.timeout)
	if runErr == nil && e.forget != nil {
		if err := e.forget(ctx, r.Subject); err != nil {
			runErr = fmt.Errorf("erase subject: detector state not purged: %w", err)
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
	r, err = e.advance(ctx, r, status, rows, runErr)
	if err != nil {
		return r, errors.Join(runErr, err)
	}
	if runErr != nil {
		return r, fmt.Errorf("process erasure request %s: %w", r.ID, runErr)
	}
	e.logger.InfoContext(ctx, "erasure done", slog.String("request", r.ID), slog.String("subject", subjectHash(r.Subject)),
		slog.Uint64("rows_deleted", rows.Total()), slog.Duration("duration", time.Since(start)))
	return r, nil
}

// advance appends the next status change of r and returns the new state.
func (e *Eraser) advance(ctx context.Context, r chstore.ErasureRequest, status string, rows chstore.SubjectRows, cause error) (chstore.ErasureRequest, error) {
	next := r
	next.Seq++
	next.Status, next.Rows, next.Error = status, rows, ""
	if cause != nil {
		next.Error = cause.Error()
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

// RunPending processes every request left pending or running, oldest
// first, and returns how many it finished (done or failed). It goes on
// after a request fails; the error joins the failures, and ends early when
// ctx ends. Each failure is also recorded in its request.
func (e *Eraser) RunPending(ctx context.Context) (int, error) {
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
