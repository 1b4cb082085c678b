package chstore

// Cluster mode (WithCluster). Single-node mode, the default, keeps one
// MergeTree-family table per data set. With a cluster, migrations create:
//
//   - for the sharded tables (shardKeys): a local table <table>_local ON
//     CLUSTER, with the Replicated variant of its engine under
//     /clickhouse/tables/{shard}/<database>/<table>, and a Distributed table
//     <table> ON CLUSTER over it, sharded by shardKeys[table]. Every read
//     and insert names <table>, so it goes through the Distributed table;
//     mutations and partition drops name <table>_local ON CLUSTER.
//   - for the other tables (schema_migrations, deletion_log, legal_holds,
//     erasure_requests, audit_log: small, written by few processes, and
//     read in full): one table <table> ON CLUSTER with the Replicated variant
//     of its engine under /clickhouse/tables/all/<database>/<table>, which
//     every node of the cluster replicates. Reads, inserts and mutations use
//     it as in single-node mode; replication carries them to every node.
//
// The database is spliced into the ZooKeeper path rather than written as
// the {database} macro, which ClickHouse 18.16 does not expand. The
// fully replicated tables name their replica '{shard}-{replica}', unique
// across the cluster even where replica macros repeat from shard to shard.
//
// Exactly once as seen by queries still holds: the copies of an event
// (a redelivery after a crash between insert and ack) have the same id,
// hence the same subject, hence the same shard, where ReplacingMergeTree
// collapses them as in single-node mode; SELECT ... FINAL on a Distributed
// table runs FINAL on each shard, and no row has a copy on another shard.
// The same holds for alerts (by subject) and for alert status changes and
// webhook deliveries (by alert id, which every copy shares).

import (
	"fmt"
	"regexp"
	"strings"
)

// clusterName keeps the cluster name safe to splice into SQL unquoted.
var clusterName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// shardKeys maps each sharded table to the expression its Distributed
// table shards by. A table of a migration that is neither here nor in
// replicatedTables is a programmer error (the template fails to render).
var shardKeys = map[string]string{
	TableEvents:            "cityHash64(subject)",
	TableAlerts:            "cityHash64(subject)",
	TableAlertStatus:       "cityHash64(alert_id)",
	TableWebhookDeliveries: "cityHash64(alert_id)",
}

// replicatedTables are replicated on every node of a cluster and not
// sharded.
var replicatedTables = map[string]bool{
	"schema_migrations": true,
	"deletion_log":      true,
	"legal_holds":       true,
	"erasure_requests":  true,
	TableAuditLog:       true,
}

// localSuffix names the shard-local table under a Distributed table.
const localSuffix = "_local"

// WithCluster makes Migrate create the schema on the ClickHouse cluster
// name (a cluster of the servers' remote_servers, whose nodes define the
// {shard} and {replica} macros): replicated tables, and Distributed tables
// over the shards, sharded by subject. Retention and erasure then mutate the
// shards' local tables on the whole cluster. "" (the default) is
// single-node mode. A database is created in one mode and must be used in it.
func WithCluster(name string) Option {
	return func(s *Store) { s.cluster = name }
}

// checkCluster validates a cluster name given to WithCluster.
func checkCluster(name string) error {
	if name != "" && !clusterName.MatchString(name) {
		return fmt.Errorf("%w: cluster name %q: want letters, digits and _ (at most 64)", ErrInvalidArgument, name)
	}
	return nil
}

// Cluster returns the cluster the store targets, "" in single-node mode.
func (s *Store) Cluster() string { return s.cluster }

// mutationTarget returns what ALTER TABLE (DELETE, DROP PARTITION) names
// to change the rows of table: the table itself in single-node mode and
// for tables replicated everywhere, and the shards' local tables on the
// whole cluster for sharded tables.
func (s *Store) mutationTarget(table string) string {
	if s.cluster == "" || shardKeys[table] == "" {
		return s.db + "." + table
	}
	return s.db + "." + table + localSuffix + " ON CLUSTER " + s.cluster
}

// storageTable returns the name under which table's parts and mutations
// appear in system.parts and system.mutations.
func (s *Store) storageTable(table string) string {
	if s.cluster == "" || shardKeys[table] == "" {
		return table
	}
	return table + localSuffix
}

// systemTable returns what a query names to read system.<name> of every
// shard that holds table: the local system table in single-node mode and
// for tables replicated everywhere, else the cluster() table function
// (one replica of each shard; ClickHouse 18.16 has it too).
func (s *Store) systemTable(table, name string) string {
	if s.cluster == "" || shardKeys[table] == "" {
		return "system." + name
	}
	return "cluster(" + s.cluster + ", system, " + name + ")"
}

// bootstrap returns the statements Migrate runs before any migration: the
// database and the schema_migrations table.
func (d templateData) bootstrap() ([]string, error) {
	create, err := d.Create("schema_migrations")
	if err != nil {
		return nil, err
	}
	engine, err := d.Engine("schema_migrations", "ReplacingMergeTree()")
	if err != nil {
		return nil, err
	}
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + d.Database + d.OnCluster(),
		`CREATE TABLE IF NOT EXISTS ` + create + `
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime('UTC')
)
ENGINE = ` + engine + `
ORDER BY version`,
	}, nil
}

// OnCluster renders " ON CLUSTER <name>" in cluster mode, "" otherwise.
func (d templateData) OnCluster() string {
	if d.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + d.Cluster
}

// tableKind fails on a table that is neither sharded nor replicated
// everywhere, so that a new table cannot skip the choice.
func tableKind(table string) (sharded bool, err error) {
	if shardKeys[table] != "" {
		return true, nil
	}
	if replicatedTables[table] {
		return false, nil
	}
	return false, fmt.Errorf("table %q: add it to shardKeys or replicatedTables (internal/chstore/cluster.go)", table)
}

// Create renders the table a CREATE TABLE statement creates: database.table
// in single-node mode; with a cluster, the local table of a sharded table
// or the table replicated everywhere, ON CLUSTER.
func (d templateData) Create(table string) (string, error) {
	sharded, err := tableKind(table)
	if err != nil || d.Cluster == "" {
		return d.Database + "." + table, err
	}
	if sharded {
		table += localSuffix
	}
	return d.Database + "." + table + d.OnCluster(), nil
}

// Alter renders the table an ALTER TABLE statement of a migration (a TTL)
// changes: database.table in single-node mode; with a cluster, the local
// table ON CLUSTER of a sharded table, and the table itself of one
// replicated everywhere (replication carries the change to every node).
func (d templateData) Alter(table string) (string, error) {
	sharded, err := tableKind(table)
	if err != nil || d.Cluster == "" || !sharded {
		return d.Database + "." + table, err
	}
	return d.Database + "." + table + localSuffix + d.OnCluster(), nil
}

// AddColumn renders the statements that add a column (def: "name Type
// [AFTER other]") to table, each ending in ";": one ALTER in single-node
// mode; with a cluster, one ALTER ON CLUSTER for a table replicated
// everywhere, and for a sharded table one ALTER ON CLUSTER of its local
// table followed by the re-creation of its Distributed table, which must
// list the column to read it. ClickHouse 18.16 refuses ALTER ... ON
// CLUSTER on a Distributed table over shards with internal_replication
// (code 371), so the Distributed table is dropped and created again ON
// CLUSTER from the local table's new columns, on every release alike: it
// holds no data (inserts through it are synchronous), and reads and
// inserts naming it fail only while the two statements run. ClickHouse
// 18.16 has no ADD COLUMN IF NOT EXISTS: the column existing already (a
// migration applied in part) is tolerated by Migrate.
func (d templateData) AddColumn(table, def string) (string, error) {
	alter, err := d.Alter(table)
	if err != nil {
		return "", err
	}
	if d.Cluster != "" && shardKeys[table] == "" {
		// A table replicated everywhere: the same table on every node.
		alter += d.OnCluster()
	}
	out := "ALTER TABLE " + alter + " ADD COLUMN " + def + ";"
	if d.Cluster != "" && shardKeys[table] != "" {
		create, err := d.Distribute(table)
		if err != nil {
			return "", err
		}
		out += "\nDROP TABLE IF EXISTS " + d.Database + "." + table + d.OnCluster() + ";" + create
	}
	return out, nil
}

// Engine renders a table engine such as "ReplacingMergeTree(ingested_at)":
// as given in single-node mode, and its Replicated variant with a cluster,
// with the ZooKeeper path and replica name before the engine's own
// arguments.
func (d templateData) Engine(table, engine string) (string, error) {
	sharded, err := tableKind(table)
	if err != nil || d.Cluster == "" {
		return engine, err
	}
	name, args, ok := strings.Cut(engine, "(")
	args, closed := strings.CutSuffix(args, ")")
	if !ok || !closed || !strings.HasSuffix(name, "MergeTree") {
		return "", fmt.Errorf("engine %q of table %q: want a MergeTree-family engine with its parentheses, e.g. MergeTree()", engine, table)
	}
	path, replica := "/clickhouse/tables/{shard}/"+d.Database+"/"+table, "{replica}"
	if !sharded {
		path, replica = "/clickhouse/tables/all/"+d.Database+"/"+table, "{shard}-{replica}"
	}
	out := "Replicated" + name + "('" + path + "', '" + replica + "'"
	if args = strings.TrimSpace(args); args != "" {
		out += ", " + args
	}
	return out + ")", nil
}

// Distribute renders, with a cluster, the statement that creates the
// Distributed table over a sharded table's local tables, on a line of its
// own after a newline; it renders "" in single-node mode and for tables
// replicated everywhere. Write it as {{- .Distribute "t"}} right after the
// ';' of the local table's CREATE TABLE, so that single-node output stays
// byte for byte what it was.
func (d templateData) Distribute(table string) (string, error) {
	sharded, err := tableKind(table)
	if err != nil || d.Cluster == "" || !sharded {
		return "", err
	}
	return "\nCREATE TABLE IF NOT EXISTS " + d.Database + "." + table + d.OnCluster() +
		" AS " + d.Database + "." + table + localSuffix +
		"\nENGINE = Distributed(" + d.Cluster + ", " + d.Database + ", " + table + localSuffix + ", " + shardKeys[table] + ");", nil
}
