package chstore

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sessionmon/sessionmon/internal/backoff"
)

// ConnectConfig says how Connect opens a store. The zero value opens it
// once and applies no migration.
type ConnectConfig struct {
	// Migrate applies the migrations not applied yet (Store.Migrate)
	// once connected.
	Migrate bool
	// Wait, when set, makes Connect wait for a server that is not up yet:
	// a failed attempt is retried after Wait's next delay until one
	// succeeds or ctx ends. An invalid DSN fails at once.
	Wait *backoff.Backoff
	// Waiting, when set, hears of each failed attempt and the delay
	// before the next one, before Connect waits (logs, readiness).
	Waiting func(err error, retryIn time.Duration)
}

// Connect opens the store at dsn (Open) with opts and, with c.Migrate,
// migrates it; with c.Wait it waits for ClickHouse. It is how every
// command and service of sessionmon opens its store.
func Connect(ctx context.Context, dsn string, logger *slog.Logger, c ConnectConfig, opts ...Option) (*Store, error) {
	attempt := func(ctx context.Context) (*Store, error) {
		store, err := Open(ctx, dsn, logger, opts...)
		if err != nil {
			return nil, err
		}
		if c.Migrate {
			if _, err := store.Migrate(ctx); err != nil {
				return nil, errors.Join(err, store.Close())
			}
		}
		return store, nil
	}
	if c.Wait == nil {
		return attempt(ctx)
	}
	var store *Store
	err := backoff.Retry(ctx, c.Wait, func(ctx context.Context) error {
		s, err := attempt(ctx)
		if errors.Is(err, ErrInvalidDSN) {
			// Waiting won't fix a configuration error.
			return backoff.Permanent(err)
		}
		store = s
		return err
	}, func(_ int, err error, retryIn time.Duration) {
		if c.Waiting != nil {
			c.Waiting(err, retryIn)
		}
	}, nil)
	if err != nil {
		return nil, err
	}
	return store, nil
}
