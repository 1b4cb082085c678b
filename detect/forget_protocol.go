package detect

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

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/logging"
	"github.com/sessionmon/sessionmon/schemas"
)

// Erasure of detector state is a scatter-gather over NATS: every detect
// process (serve, or each `sessionmon detect` of a partitioned deployment)
// subscribes to schemas.ForgetSubject without a queue group, so each one gets the
// request. A responder answers twice on the request's reply inbox: at once
// with "accepted", then with "forgotten" or "error" once its engines have
// dropped the subject (which waits for a replay at start). The requester
// counts the processes that accepted until ForgetQuietPeriod passes without
// a new one, then waits for the final answer of each of them until
// ForgetTimeout; a process that accepted and did not finish fails the
// request, as does one that answered with an error. A responder answers
// one request at a time, so a process still busy with an earlier request
// accepts late and may be missed; erasures run one at a time under the
// erasure lock, which makes that rare.

const (
	// ForgetQuietPeriod is how long the requester waits for another
	// process to accept after the last one did. Accepting takes no work,
	// so this covers the network and a busy process's scheduling.
	ForgetQuietPeriod = 500 * time.Millisecond
	// ForgetTimeout bounds a whole request: every process that accepted
	// must have answered by then.
	ForgetTimeout = 15 * time.Second
	// forgetHandleTimeout bounds one responder's forgetting; shorter than
	// ForgetTimeout so that its error reaches the requester.
	forgetHandleTimeout = 10 * time.Second
)

// Statuses of a ForgetReply.
const (
	ForgetAccepted  = "accepted"
	ForgetForgotten = "forgotten"
	ForgetFailed    = "error"
)

// ForgetReply is one answer of a detect process.
type ForgetReply struct {
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

// Label names the process of r with what it detects on.
func (r ForgetReply) Label() string {
	l := r.Process + " (partitions " + r.Partitions
	if r.Sources {
		l += ", source detectors"
	}
	return l + ")"
}

// ForgetResponder answers forget requests for one process.
type ForgetResponder struct {
	Process    string
	Partitions string
	Sources    bool
	// Forget drops the subject's state (Service.Forget).
	Forget func(ctx context.Context, subject string) error
}

// ServeForget answers erasure requests for svc's in-memory state on nc,
// naming the process by nc's connection name. The subscription ends with
// the connection.
func ServeForget(nc *nats.Conn, svc *Service, logger *slog.Logger) error {
	p := svc.cfg.Partitions
	return RespondForget(nc, ForgetResponder{
		Process:    ProcessName(nc.Opts.Name),
		Partitions: config.Detect{Partitions: p.Owned}.OwnedPartitions(),
		Sources:    p.sources(),
		Forget:     svc.Forget,
	}, logger)
}

// ProcessName names this process in forget replies: no two running
// processes share it.
func ProcessName(conn string) string {
	if conn == "" {
		conn = "sessionmon"
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return conn + "@" + host + ":" + strconv.Itoa(os.Getpid())
}

// RespondForget subscribes r to forget requests on nc. The subscription
// ends with the connection; the NATS client runs the handler, one request
// at a time.
func RespondForget(nc *nats.Conn, r ForgetResponder, logger *slog.Logger) error {
	logger = logging.OrDiscard(logger)
	respond := func(m *nats.Msg, status string, cause error) {
		rep := ForgetReply{Process: r.Process, Partitions: r.Partitions, Sources: r.Sources, Status: status}
		if cause != nil {
			rep.Error = cause.Error()
		}
		b, _ := json.Marshal(rep)
		if err := m.Respond(b); err != nil {
			logger.Warn("forget reply not sent", slog.String("status", status), slog.Any("error", err))
		}
	}
	_, err := nc.Subscribe(schemas.ForgetSubject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		respond(m, ForgetAccepted, nil)
		ctx, cancel := context.WithTimeout(context.Background(), forgetHandleTimeout)
		defer cancel()
		if err := r.Forget(ctx, string(m.Data)); err != nil {
			// The error names no subject: Forget's errors carry none.
			logger.Warn("forget subject failed", slog.Any("error", err))
			respond(m, ForgetFailed, err)
			return
		}
		respond(m, ForgetForgotten, nil)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", schemas.ForgetSubject, err)
	}
	// Once the server has the subscription, an erasure cannot miss this
	// process.
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", schemas.ForgetSubject, err)
	}
	return nil
}

// ForgetAnswers is what the detect processes answered to one request.
type ForgetAnswers struct {
	// Done are the processes that forgot the subject.
	Done []ForgetReply
	// Failed are the processes that answered with an error, or accepted
	// and did not answer in time (Status ForgetAccepted).
	Failed []ForgetReply
}

// Err returns nil when every process that accepted forgot the subject,
// else an error naming each process that did not.
func (a ForgetAnswers) Err() error {
	if len(a.Failed) == 0 {
		return nil
	}
	var errs []error
	for _, f := range a.Failed {
		if f.Status == ForgetAccepted {
			errs = append(errs, fmt.Errorf("%s: no answer within %s", f.Label(), ForgetTimeout))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", f.Label(), f.Error))
		}
	}
	return fmt.Errorf("%d of %d detect processes could not forget the subject: %w",
		len(a.Failed), len(a.Failed)+len(a.Done), errors.Join(errs...))
}

// String says what happened, for `sessionmon erase`.
func (a ForgetAnswers) String() string {
	n := len(a.Done) + len(a.Failed)
	if n == 0 {
		return "no detector is running, nothing to purge"
	}
	var names []string
	for _, d := range a.Done {
		names = append(names, d.Label())
	}
	slices.Sort(names)
	return fmt.Sprintf("forgotten by %d of %d detect processes: %s", len(a.Done), n, strings.Join(names, ", "))
}

// AskToForget asks every running detect process to forget subject and
// gathers their answers (see the top of this file). It fails when a
// process answered with an error or did not finish in time; no answer at
// all means no detector is running, which is no error.
func AskToForget(ctx context.Context, nc *nats.Conn, subject string) (ForgetAnswers, error) {
	ctx, cancel := context.WithTimeout(ctx, ForgetTimeout)
	defer cancel()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return ForgetAnswers{}, fmt.Errorf("ask detectors to forget the subject: subscribe reply inbox: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(schemas.ForgetSubject, inbox, []byte(subject)); err != nil {
		return ForgetAnswers{}, fmt.Errorf("ask detectors to forget the subject: publish %s: %w", schemas.ForgetSubject, err)
	}
	// pending are the processes that accepted and have not answered yet,
	// by label.
	pending := map[string]ForgetReply{}
	var res ForgetAnswers
	var quiet time.Time // ForgetQuietPeriod after the last acceptance
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
			return ForgetAnswers{}, nil
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
		var rep ForgetReply
		if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Process == "" {
			return res, fmt.Errorf("ask detectors to forget the subject: unreadable answer on %s (%d bytes)", inbox, len(m.Data))
		}
		switch rep.Status {
		case ForgetAccepted:
			pending[rep.Label()] = rep
			quiet = time.Now().Add(ForgetQuietPeriod)
		case ForgetForgotten:
			delete(pending, rep.Label())
			res.Done = append(res.Done, rep)
		default:
			delete(pending, rep.Label())
			res.Failed = append(res.Failed, rep)
		}
	}
}
