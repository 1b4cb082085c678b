package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

// Erasure of detector state is a scatter-gather over NATS: every detect
// process (serve, or each `sessionmon detect` of a partitioned deployment)
// subscribes to forgetSubject without a queue group, so each one gets the
// request. A responder answers twice on the request's reply inbox: at once
// with "accepted", then with "forgotten" or "error" once its engines have
// dropped the subject (which waits for a replay at start). The requester
// counts the processes that accepted until forgetQuietPeriod passes without
// a new one, then waits for the final answer of each of them until
// forgetTimeout; a process that accepted and did not finish fails the
// request, as does one that answered with an error. A responder answers
// one request at a time, so a process still busy with an earlier request
// accepts late and may be missed; erasures run one at a time under the
// erasure lock, which makes that rare.

// forgetSubject is the NATS subject on which `sessionmon erase` and the
// erasure worker ask the running detectors to drop a data subject's state
// (the payload is the pseudonym; answers are forgetReply JSON).
const forgetSubject = "sessionmon.control.forget"

const (
	// forgetQuietPeriod is how long the requester waits for another
	// process to accept after the last one did. Accepting takes no work,
	// so this covers the network and a busy process's scheduling.
	forgetQuietPeriod = 500 * time.Millisecond
	// forgetTimeout bounds a whole request: every process that accepted
	// must have answered by then.
	forgetTimeout = 15 * time.Second
	// forgetHandleTimeout bounds one responder's forgetting; shorter than
	// forgetTimeout so that its error reaches the requester.
	forgetHandleTimeout = 10 * time.Second
)

// Statuses of a forgetReply.
const (
	forgetAccepted  = "accepted"
	forgetForgotten = "forgotten"
	forgetFailed    = "error"
)

// forgetReply is one answer of a detect process.
type forgetReply struct {
	// Process names the process: connection name, host and pid.
	Process string `json:"process"`
	// Partitions are the events stream partitions it owns ("all", "0-7").
	Partitions string `json:"partitions"`
	// Sources reports whether it runs the detectors keyed by source
	// rather than subject (credential stuffing, ...).
	Sources bool   `json:"sources"`
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
}

func (r forgetReply) label() string {
	l := r.Process + " (partitions " + r.Partitions
	if r.Sources {
		l += ", source detectors"
	}
	return l + ")"
}

// forgetResponder answers forget requests for one process.
type forgetResponder struct {
	process    string
	partitions string
	sources    bool
	forget     func(ctx context.Context, subject string) error
}

// detectService is the live detection service with what a forget reply
// says about the process it runs in.
type detectService struct {
	*detect.Service
	partitions string
	sources    bool
}

func newDetectService(svc *detect.Service, cfg *config.Config) *detectService {
	sources := cfg.Detect.Partitions == nil
	if cfg.Detect.SourceDetectors != nil {
		sources = *cfg.Detect.SourceDetectors
	}
	return &detectService{Service: svc, partitions: cfg.Detect.OwnedPartitions(), sources: sources}
}

// serveForget answers erasure requests for svc's in-memory state on nc,
// naming the process by nc's connection name. The subscription ends with
// the connection.
func serveForget(nc *nats.Conn, svc *detectService, logger *slog.Logger) error {
	return respondForget(nc, forgetResponder{process: processName(nc.Opts.Name), partitions: svc.partitions,
		sources: svc.sources, forget: svc.Forget}, logger)
}

// processName names this process in forget replies: no two running
// processes share it.
func processName(conn string) string {
	if conn == "" {
		conn = "sessionmon"
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return conn + "@" + host + ":" + strconv.Itoa(os.Getpid())
}

// respondForget subscribes r to forget requests on nc.
func respondForget(nc *nats.Conn, r forgetResponder, logger *slog.Logger) error {
	respond := func(m *nats.Msg, status string, cause error) {
		rep := forgetReply{Process: r.process, Partitions: r.partitions, Sources: r.sources, Status: status}
		if cause != nil {
			rep.Error = cause.Error()
		}
		b, _ := json.Marshal(rep)
		if err := m.Respond(b); err != nil {
			logger.Warn("forget reply not sent", slog.String("status", status), slog.Any("error", err))
		}
	}
	_, err := nc.Subscribe(forgetSubject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		respond(m, forgetAccepted, nil)
		ctx, cancel := context.WithTimeout(context.Background(), forgetHandleTimeout)
		defer cancel()
		if err := r.forget(ctx, string(m.Data)); err != nil {
			// The error names no subject: Forget's errors carry none.
			logger.Warn("forget subject failed", slog.Any("error", err))
			respond(m, forgetFailed, err)
			return
		}
		respond(m, forgetForgotten, nil)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", forgetSubject, err)
	}
	// Once the server has the subscription, an erasure cannot miss this
	// process.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", forgetSubject, err)
	}
	return nil
}

// forgetResult is what the detect processes answered to one request, and
// what the erasure deleted from the NATS streams.
type forgetResult struct {
	// Done are the processes that forgot the subject.
	Done []forgetReply
	// Failed are the processes that answered with an error, or accepted
	// and did not answer in time (Status accepted).
	Failed []forgetReply
	// Purged are the subject's messages deleted per stream.
	Purged chstore.StreamMessages
}

// Err returns nil when every process that accepted forgot the subject,
// else an error naming each process that did not.
func (r forgetResult) Err() error {
	if len(r.Failed) == 0 {
		return nil
	}
	var errs []error
	for _, f := range r.Failed {
		if f.Status == forgetAccepted {
			errs = append(errs, fmt.Errorf("%s: no answer within %s", f.label(), forgetTimeout))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", f.label(), f.Error))
		}
	}
	return fmt.Errorf("%d of %d detect processes could not forget the subject: %w",
		len(r.Failed), len(r.Failed)+len(r.Done), errors.Join(errs...))
}

// String says what happened, for `sessionmon erase`.
func (r forgetResult) String() string {
	n := len(r.Done) + len(r.Failed)
	if n == 0 {
		return "no detector is running, nothing to purge"
	}
	var names []string
	for _, d := range r.Done {
		names = append(names, d.label())
	}
	slices.Sort(names)
	return fmt.Sprintf("forgotten by %d of %d detect processes: %s", len(r.Done), n, strings.Join(names, ", "))
}

// forgetVia returns the forget func of a retention.Eraser: it erases the
// subject from the NATS streams and the detectors' state over nc
// (forgetEverywhere).
func forgetVia(nc *nats.Conn) retention.ForgetFunc {
	return func(ctx context.Context, subject string, alertIDs []string) (chstore.StreamMessages, error) {
		res, err := forgetEverywhere(ctx, nc, subject, alertIDs)
		return res.Purged, err
	}
}

// forgetEverywhere erases subject from what NATS keeps and from the
// detectors' state: first the subject's events in the events stream,
// which a replay would read again, and the erasure mark that keeps older
// state snapshots from being restored (detect.PrepareForget); then from
// every running detect process (askToForget), each of which writes a
// fresh snapshot before it answers; then the snapshots of engines that are
// not running (detect.CompleteForget); then, since no detector can raise a
// new alert about the subject any more, its alerts and their status
// changes in the alerts stream (detect.PurgeSubjectAlerts, with alertIDs,
// the ids of its alerts ClickHouse had); and its dead letters
// (ingest.PurgeSubjectDeadLetters). A step that fails does not stop the
// next ones; the error joins them, and Purged counts what was deleted.
func forgetEverywhere(ctx context.Context, nc *nats.Conn, subject string, alertIDs []string) (forgetResult, error) {
	res := forgetResult{Purged: chstore.StreamMessages{}}
	js, err := jetstream.New(nc)
	if err != nil {
		return res, fmt.Errorf("forget subject: %w", err)
	}
	var errs []error
	n, err := detect.PrepareForget(ctx, js, subject)
	res.Purged[schemas.EventStream] = n
	if err != nil {
		errs = append(errs, err)
	} else {
		asked, err := askToForget(ctx, nc, subject)
		res.Done, res.Failed = asked.Done, asked.Failed
		if err == nil {
			err = detect.CompleteForget(ctx, js)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	n, err = detect.PurgeSubjectAlerts(ctx, js, subject, alertIDs)
	res.Purged[detect.AlertStream] = n
	if err != nil {
		errs = append(errs, err)
	}
	n, err = ingest.PurgeSubjectDeadLetters(ctx, js, subject)
	res.Purged[ingest.DLQStream] = n
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// askToForget asks every running detect process to forget subject and
// gathers their answers (see the top of this file). It fails when a
// process answered with an error or did not finish in time; no answer at
// all means no detector is running, which is no error.
func askToForget(ctx context.Context, nc *nats.Conn, subject string) (forgetResult, error) {
	ctx, cancel := context.WithTimeout(ctx, forgetTimeout)
	defer cancel()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return forgetResult{}, fmt.Errorf("ask detectors to forget the subject: subscribe reply inbox: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(forgetSubject, inbox, []byte(subject)); err != nil {
		return forgetResult{}, fmt.Errorf("ask detectors to forget the subject: publish %s: %w", forgetSubject, err)
	}
	// pending are the processes that accepted and have not answered yet,
	// by label.
	pending := map[string]forgetReply{}
	var res forgetResult
	var quiet time.Time // forgetQuietPeriod after the last acceptance
	for {
		wait, stop := ctx, context.CancelFunc(func() {})
		if len(pending) == 0 && !quiet.IsZero() {
			// Every process known has answered: wait only for latecomers.
			wait, stop = context.WithDeadline(ctx, quiet)
		}
		m, err := sub.NextMsgWithContext(wait)
		stop()
		switch {
		case err == nil:
		case errors.Is(err, nats.ErrNoResponders):
			return forgetResult{}, nil
		case ctx.Err() == nil && wait.Err() != nil:
			return res, res.Err()
		case errors.Is(ctx.Err(), context.DeadlineExceeded) && !quiet.IsZero():
			for _, p := range pending {
				res.Failed = append(res.Failed, p)
			}
			return res, res.Err()
		default:
			return res, fmt.Errorf("ask detectors to forget the subject: %w", err)
		}
		var rep forgetReply
		if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Process == "" {
			return res, fmt.Errorf("ask detectors to forget the subject: unreadable answer on %s (%d bytes)", inbox, len(m.Data))
		}
		switch rep.Status {
		case forgetAccepted:
			pending[rep.label()] = rep
			quiet = time.Now().Add(forgetQuietPeriod)
		case forgetForgotten:
			delete(pending, rep.label())
			res.Done = append(res.Done, rep)
		default:
			delete(pending, rep.label())
			res.Failed = append(res.Failed, rep)
		}
	}
}
