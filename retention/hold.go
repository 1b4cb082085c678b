package retention

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// SetLegalHold puts subject under legal hold for reason, set by actor:
// until it is lifted, Erase and erasure requests refuse the subject, and
// Run keeps its rows. Setting it again replaces the reason. It then
// re-applies the schema so that the TTL backstop, which knows nothing of
// holds, is suspended (see chstore.Store.Migrate); pass a store opened
// with the retention days so that lifting the last hold restores it.
func SetLegalHold(ctx context.Context, store *chstore.Store, subject, reason, actor string) (chstore.LegalHold, error) {
	if err := chstore.CheckSubject(subject); err != nil {
		return chstore.LegalHold{}, fmt.Errorf("set legal hold: %w", err)
	}
	if strings.TrimSpace(reason) == "" {
		return chstore.LegalHold{}, fmt.Errorf("set legal hold: %w: reason: required (why the data must be kept)", ErrInvalidRequest)
	}
	if strings.TrimSpace(actor) == "" {
		return chstore.LegalHold{}, fmt.Errorf("set legal hold: %w: actor: required", ErrInvalidRequest)
	}
	at, err := nextHoldTime(ctx, store, subject)
	if err != nil {
		return chstore.LegalHold{}, err
	}
	if err := store.SetLegalHold(ctx, subject, reason, actor, at); err != nil {
		return chstore.LegalHold{}, err
	}
	if _, err := store.Migrate(ctx); err != nil {
		return chstore.LegalHold{}, fmt.Errorf("set legal hold: suspend the TTL backstop: %w", err)
	}
	return chstore.LegalHold{Subject: subject, Active: true, Reason: reason, Actor: actor, Time: at}, nil
}

// LiftLegalHold lifts the legal hold of subject; lifting a subject that is
// not held is not an error. It then re-applies the schema, which puts the
// TTL backstop back once no hold is left.
func LiftLegalHold(ctx context.Context, store *chstore.Store, subject, actor string) error {
	if err := chstore.CheckSubject(subject); err != nil {
		return fmt.Errorf("lift legal hold: %w", err)
	}
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("lift legal hold: %w: actor: required", ErrInvalidRequest)
	}
	at, err := nextHoldTime(ctx, store, subject)
	if err != nil {
		return err
	}
	if err := store.LiftLegalHold(ctx, subject, actor, at); err != nil {
		return err
	}
	if _, err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("lift legal hold: restore the TTL backstop: %w", err)
	}
	return nil
}

// nextHoldTime returns now, or just after the subject's last hold change
// if that is not earlier: the latest change must win.
func nextHoldTime(ctx context.Context, store *chstore.Store, subject string) (time.Time, error) {
	at := time.Now().UTC().Truncate(time.Millisecond)
	prev, ok, err := store.LegalHold(ctx, subject)
	if err != nil {
		return time.Time{}, err
	}
	if ok && !at.After(prev.Time) {
		at = prev.Time.Add(time.Millisecond)
	}
	return at, nil
}

// checkNotHeld returns an error wrapping ErrLegalHold when subject is under
// legal hold. The message does not name the subject: it may be logged.
func checkNotHeld(ctx context.Context, store *chstore.Store, subject string) error {
	h, ok, err := store.LegalHold(ctx, subject)
	if err != nil {
		return err
	}
	if ok && h.Active {
		return fmt.Errorf("%w since %s (reason: %s); lift it with `sessionmon hold lift --subject PSEUDONYM`",
			ErrLegalHold, h.Time.Format(time.RFC3339), h.Reason)
	}
	return nil
}
