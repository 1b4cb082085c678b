package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/schemas"
)

// Subject lookups of familiar networks over NATS (see familiar_view.go).

// Timings of a lookup.
const (
	// FamiliarTimeout is how long AskFamiliar waits for an answer.
	FamiliarTimeout = 2 * time.Second
	// familiarServeWait bounds how long a responder waits for its engine
	// loop (busy replaying at start, say); shorter than FamiliarTimeout
	// so that the requester gets the reason.
	familiarServeWait = 1500 * time.Millisecond
)

// ErrNoFamiliarAnswer is returned by AskFamiliar when no detect process
// owning the subject's partition answered in time.
var ErrNoFamiliarAnswer = errors.New("no detect process answered")

// familiarRequest asks a unit's engine loop for a subject's familiar
// networks.
type familiarRequest struct {
	app, subject string
	// done receives the answer (buffered).
	done chan FamiliarSubject
}

// owner returns the unit whose engine holds subject's impossible_travel
// state, or nil when another process owns its partition.
func (s *Service) owner(subject string) *unit {
	for _, u := range s.units {
		switch {
		case u.name == "":
			return u
		case u.partition >= 0 && s.cfg.Partitions.Count > 0 &&
			schemas.EventPartition(subject, s.cfg.Partitions.Count) == u.partition:
			return u
		}
	}
	return nil
}

// Familiar returns subject's familiar networks, ASNs and devices from the
// engine that owns it, resolving networks to app's when app is given.
// owned is false when this service does not own the subject's partition.
// It waits for the engine loop, so it blocks during the replay at start
// until ctx ends.
func (s *Service) Familiar(ctx context.Context, app, subject string) (f FamiliarSubject, owned bool, err error) {
	u := s.owner(subject)
	if u == nil {
		return emptyFamiliar(), false, nil
	}
	req := familiarRequest{app: app, subject: subject, done: make(chan FamiliarSubject, 1)}
	select {
	case u.familiar <- req:
	case <-ctx.Done():
		return emptyFamiliar(), true, fmt.Errorf("%s is not detecting live yet (rebuilding its state?): %w", u.label(), ctx.Err())
	}
	select {
	case f := <-req.done:
		return f, true, nil
	case <-ctx.Done():
		return emptyFamiliar(), true, fmt.Errorf("%s did not answer: %w", u.label(), ctx.Err())
	}
}

// FamiliarRequest is the body of a request on
// schemas.DetectFamiliarSubject.
type FamiliarRequest struct {
	// App, optional, is the app the lookup is about: of two tracked
	// networks the subject's entry may stand for, the one seen in it is
	// shown.
	App     string `json:"app,omitempty"`
	Subject string `json:"subject"`
}

// FamiliarReply is a detect process's answer.
type FamiliarReply struct {
	// Process names the process and Unit its engine that answered.
	Process  string          `json:"process,omitempty"`
	Unit     string          `json:"unit,omitempty"`
	Familiar FamiliarSubject `json:"familiar"`
	// Error says why the process could not answer.
	Error string `json:"error,omitempty"`
}

// serveFamiliar subscribes the service to familiarity requests on nc; the
// caller unsubscribes. The NATS client runs the handler, one request at
// a time, each waiting at most familiarServeWait.
func (s *Service) serveFamiliar(nc *nats.Conn) (*nats.Subscription, error) {
	process := ProcessName(nc.Opts.Name)
	sub, err := nc.Subscribe(schemas.DetectFamiliarSubject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		respond := func(r FamiliarReply) {
			r.Process = process
			b, _ := json.Marshal(r)
			if err := m.Respond(b); err != nil {
				s.logger.Warn("familiar reply not sent", slog.Any("error", err))
			}
		}
		var req FamiliarRequest
		dec := json.NewDecoder(bytes.NewReader(m.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			respond(FamiliarReply{Error: "request: must be JSON {app, subject}"})
			return
		}
		if !schemas.ValidPseudonym(req.Subject) {
			respond(FamiliarReply{Error: "subject: must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -"})
			return
		}
		if req.App != "" && !schemas.ValidApp(req.App) {
			respond(FamiliarReply{Error: "app: must be 1-64 characters of A-Z a-z 0-9 _ -"})
			return
		}
		u := s.owner(req.Subject)
		if u == nil {
			return // another process owns the subject's partition
		}
		ctx, cancel := context.WithTimeout(context.Background(), familiarServeWait)
		defer cancel()
		f, _, err := s.Familiar(ctx, req.App, req.Subject)
		if err != nil {
			respond(FamiliarReply{Unit: u.unitName(), Familiar: f, Error: err.Error()})
			return
		}
		respond(FamiliarReply{Unit: u.unitName(), Familiar: f})
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", schemas.DetectFamiliarSubject, err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", schemas.DetectFamiliarSubject, err)
	}
	return sub, nil
}

// AskFamiliar asks the detect process owning subject's partition for the
// subject's familiar networks, ASNs and devices, waiting at most
// FamiliarTimeout. It returns ErrNoFamiliarAnswer when none answers, and
// an error with the process's reason when it could not answer.
func AskFamiliar(ctx context.Context, nc *nats.Conn, app, subject string) (FamiliarReply, error) {
	b, err := json.Marshal(FamiliarRequest{App: app, Subject: subject})
	if err != nil {
		return FamiliarReply{}, fmt.Errorf("familiar request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, FamiliarTimeout)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, schemas.DetectFamiliarSubject, b)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return FamiliarReply{}, fmt.Errorf("%w: no detect process is running", ErrNoFamiliarAnswer)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return FamiliarReply{}, fmt.Errorf("%w within %s: is the detect process owning the subject's partition running?", ErrNoFamiliarAnswer, FamiliarTimeout)
	case err != nil:
		return FamiliarReply{}, fmt.Errorf("familiar request %s: %w", schemas.DetectFamiliarSubject, err)
	}
	var rep FamiliarReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return FamiliarReply{}, fmt.Errorf("familiar reply: unreadable (%d bytes): %w", len(m.Data), err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("detect %s: %s", rep.Process, rep.Error)
	}
	return rep, nil
}
