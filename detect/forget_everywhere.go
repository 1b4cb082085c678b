package detect

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// ForgetResult is what the detect processes answered to one erasure, and
// what it deleted from the NATS streams.
type ForgetResult struct {
	ForgetAnswers
	// Purged are the subject's messages deleted per stream.
	Purged chstore.StreamMessages
}

// ForgetVia returns the function a retention.Eraser forgets a subject
// with (a retention.ForgetFunc): it erases the subject from the NATS
// streams and the detectors' state over nc (ForgetEverywhere).
func ForgetVia(nc *nats.Conn) func(ctx context.Context, subject string, alertIDs []string) (chstore.StreamMessages, error) {
	return func(ctx context.Context, subject string, alertIDs []string) (chstore.StreamMessages, error) {
		res, err := ForgetEverywhere(ctx, nc, subject, alertIDs)
		return res.Purged, err
	}
}

// ForgetEverywhere erases subject from what NATS keeps and from the
// detectors' state: first the subject's events in the events stream,
// which a replay would read again, and the erasure mark that keeps older
// state snapshots from being restored (PrepareForget); then from
// every running detect process (AskToForget), each of which writes
// a fresh snapshot before it answers; then the snapshots of engines that
// are not running (CompleteForget); then, since no detector can
// raise a new alert about the subject any more, its alerts and their
// status changes in the alerts stream (PurgeSubjectAlerts, with
// alertIDs, the ids of its alerts ClickHouse had); and its dead letters
// (natsconn.PurgeSubjectDeadLetters). A step that fails does not stop the
// next ones; the error joins them, and Purged counts what was deleted.
func ForgetEverywhere(ctx context.Context, nc *nats.Conn, subject string, alertIDs []string) (ForgetResult, error) {
	res := ForgetResult{Purged: chstore.StreamMessages{}}
	js, err := jetstream.New(nc)
	if err != nil {
		return res, fmt.Errorf("forget subject: %w", err)
	}
	var errs []error
	n, err := PrepareForget(ctx, js, subject)
	res.Purged[schemas.EventStream] = n
	if err != nil {
		errs = append(errs, err)
	} else {
		asked, err := AskToForget(ctx, nc, subject)
		res.ForgetAnswers = asked
		if err == nil {
			err = CompleteForget(ctx, js)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	n, err = PurgeSubjectAlerts(ctx, js, subject, alertIDs)
	res.Purged[schemas.AlertStream] = n
	if err != nil {
		errs = append(errs, err)
	}
	n, err = natsconn.PurgeSubjectDeadLetters(ctx, js, subject)
	res.Purged[schemas.DLQStream] = n
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}
