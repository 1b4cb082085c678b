package main

import (
	"context"
	"fmt"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

func migrateCommand() *command {
	return &command{
		name:  "migrate",
		short: "create or upgrade the ClickHouse schema",
		usage: "sessionmon migrate [options]",
		summary: `Create or upgrade sessionmon's ClickHouse database: apply the embedded
migrations (schemas/clickhouse) not applied yet, record them in
schema_migrations, and print the server version and what was applied. Safe to
run again; serve and ingest also run it at start.`,
		options: join([]string{"log-format", "log-level"}, clickhouseOptions, secretOptions),
		run: func(ctx context.Context, e *env) error {
			// The TTL backstop of events and alerts is their retention period.
			opts, err := storeOptions(e.cfg)
			if err != nil {
				return err
			}
			store, err := chstore.Connect(ctx, e.cfg.ClickHouseURL(), e.logger, chstore.ConnectConfig{}, opts...)
			if err != nil {
				return err
			}
			defer store.Close()
			v, err := store.ServerVersion(ctx)
			if err != nil {
				return err
			}
			applied, err := store.Migrate(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "clickhouse %s, database %s\n", v, store.Database())
			if len(applied) == 0 {
				fmt.Fprintln(e.stdout, "schema is up to date")
			}
			for _, m := range applied {
				fmt.Fprintf(e.stdout, "applied %s\n", m)
			}
			return nil
		},
	}
}
