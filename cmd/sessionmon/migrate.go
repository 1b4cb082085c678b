package main

import (
	"context"
	"fmt"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/retention"
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
			rc, err := retention.ParseConfig(e.cfg.RetentionYAML)
			if err != nil {
				return err
			}
			// The TTL backstop of events and alerts is their retention period.
			store, err := chstore.Open(ctx, e.cfg.ClickHouseURL(), e.logger, append(ttlOptions(rc), clusterOption(e.cfg))...)
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

// clusterOption passes --clickhouse-cluster to a store that migrates or
// mutates (retention, erasure): with a cluster, the schema is replicated
// and sharded, and mutations go to the shards' local tables.
func clusterOption(cfg *config.Config) chstore.Option {
	return chstore.WithCluster(cfg.ClickHouseCluster)
}
