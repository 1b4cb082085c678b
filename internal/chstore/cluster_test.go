package chstore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMutationTargets pins the SQL names that retention and erasure
// use: unchanged on a single node, the shards' local tables on a cluster.
func TestMutationTargets(t *testing.T) {
	t.Parallel()
	single := &Store{db: "sm"}
	cluster := &Store{db: "sm", cluster: "c1"}
	tests := []struct {
		name                         string
		s                            *Store
		table                        string
		target, storage, parts, muts string
	}{
		{name: "single/events", s: single, table: TableEvents,
			target: "sm.events", storage: "events", parts: "system.parts", muts: "system.mutations"},
		{name: "single/audit_log", s: single, table: TableAuditLog,
			target: "sm.audit_log", storage: "audit_log", parts: "system.parts", muts: "system.mutations"},
		{name: "cluster/events", s: cluster, table: TableEvents,
			target: "sm.events_local ON CLUSTER c1", storage: "events_local",
			parts: "cluster(c1, system, parts)", muts: "cluster(c1, system, mutations)"},
		{name: "cluster/alerts", s: cluster, table: TableAlerts,
			target: "sm.alerts_local ON CLUSTER c1", storage: "alerts_local",
			parts: "cluster(c1, system, parts)", muts: "cluster(c1, system, mutations)"},
		{name: "cluster/alert_status", s: cluster, table: TableAlertStatus,
			target: "sm.alert_status_local ON CLUSTER c1", storage: "alert_status_local",
			parts: "cluster(c1, system, parts)", muts: "cluster(c1, system, mutations)"},
		{name: "cluster/webhook_deliveries", s: cluster, table: TableWebhookDeliveries,
			target: "sm.webhook_deliveries_local ON CLUSTER c1", storage: "webhook_deliveries_local",
			parts: "cluster(c1, system, parts)", muts: "cluster(c1, system, mutations)"},
		// Replicated on every node: replication carries a mutation to every
		// replica, so it runs once, on the table itself.
		{name: "cluster/audit_log", s: cluster, table: TableAuditLog,
			target: "sm.audit_log", storage: "audit_log", parts: "system.parts", muts: "system.mutations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.target, tt.s.mutationTarget(tt.table))
			require.Equal(t, tt.storage, tt.s.storageTable(tt.table))
			require.Equal(t, tt.parts, tt.s.systemTable(tt.table, "parts"))
			require.Equal(t, tt.muts, tt.s.systemTable(tt.table, "mutations"))
		})
	}
}

// TestEveryTableHasAKind keeps the lists of cluster.go in step with the
// tables retention and erasure know.
func TestEveryTableHasAKind(t *testing.T) {
	t.Parallel()
	for _, table := range append(RetentionTables, "schema_migrations", "deletion_log", "legal_holds", "erasure_requests") {
		_, err := tableKind(table)
		require.NoError(t, err, table)
	}
	for table := range shardKeys {
		require.False(t, replicatedTables[table], "%s is both sharded and replicated everywhere", table)
	}
}

func TestClusterTemplateHelpers(t *testing.T) {
	t.Parallel()
	single := templateData{Database: "sm"}
	cluster := templateData{Database: "sm", Cluster: "c1"}
	tests := []struct {
		name    string
		src     string
		data    templateData
		want    []string
		wantErr string
	}{
		{name: "single/sharded table renders as before", data: single,
			src:  "CREATE TABLE IF NOT EXISTS {{.Create \"events\"}} (x UInt8)\nENGINE = {{.Engine \"events\" \"ReplacingMergeTree(x)\"}}\nORDER BY x;\n{{- .Distribute \"events\"}}\n",
			want: []string{"CREATE TABLE IF NOT EXISTS sm.events (x UInt8)\nENGINE = ReplacingMergeTree(x)\nORDER BY x"}},
		{name: "cluster/sharded table: local and distributed", data: cluster,
			src: "CREATE TABLE IF NOT EXISTS {{.Create \"events\"}} (x UInt8)\nENGINE = {{.Engine \"events\" \"ReplacingMergeTree(x)\"}}\nORDER BY x;\n{{- .Distribute \"events\"}}\n",
			want: []string{
				"CREATE TABLE IF NOT EXISTS sm.events_local ON CLUSTER c1 (x UInt8)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/sm/events', '{replica}', x)\nORDER BY x",
				"CREATE TABLE IF NOT EXISTS sm.events ON CLUSTER c1 AS sm.events_local\nENGINE = Distributed(c1, sm, events_local, cityHash64(subject))",
			}},
		{name: "cluster/replicated everywhere: no distributed table", data: cluster,
			src:  "CREATE TABLE IF NOT EXISTS {{.Create \"legal_holds\"}} (x UInt8) ENGINE = {{.Engine \"legal_holds\" \"MergeTree()\"}} ORDER BY x;{{.Distribute \"legal_holds\"}}",
			want: []string{"CREATE TABLE IF NOT EXISTS sm.legal_holds ON CLUSTER c1 (x UInt8) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/sm/legal_holds', '{shard}-{replica}') ORDER BY x"}},
		{name: "cluster/alter of a sharded table", data: cluster, src: "ALTER TABLE {{.Alter \"alerts\"}} MODIFY TTL time + INTERVAL 1 DAY",
			want: []string{"ALTER TABLE sm.alerts_local ON CLUSTER c1 MODIFY TTL time + INTERVAL 1 DAY"}},
		// ClickHouse 18.16 refuses ALTER ... ON CLUSTER on a Distributed table
		// over replicated shards: it is created again instead.
		{name: "cluster/add column to a sharded table", data: cluster, src: "{{.AddColumn \"alerts\" \"y String AFTER x\"}}",
			want: []string{
				"ALTER TABLE sm.alerts_local ON CLUSTER c1 ADD COLUMN y String AFTER x",
				"DROP TABLE IF EXISTS sm.alerts ON CLUSTER c1",
				"CREATE TABLE IF NOT EXISTS sm.alerts ON CLUSTER c1 AS sm.alerts_local\nENGINE = Distributed(c1, sm, alerts_local, cityHash64(subject))",
			}},
		{name: "cluster/add column to a table replicated everywhere", data: cluster, src: "{{.AddColumn \"erasure_requests\" \"y String AFTER x\"}}",
			want: []string{"ALTER TABLE sm.erasure_requests ON CLUSTER c1 ADD COLUMN y String AFTER x"}},
		{name: "single/add column", data: single, src: "{{.AddColumn \"alerts\" \"y String AFTER x\"}}",
			want: []string{"ALTER TABLE sm.alerts ADD COLUMN y String AFTER x"}},
		{name: "single/alter", data: single, src: "ALTER TABLE {{.Alter \"alerts\"}} REMOVE TTL", want: []string{"ALTER TABLE sm.alerts REMOVE TTL"}},
		{name: "unknown table fails in single mode too", data: single, src: "CREATE TABLE {{.Create \"sessions\"}} (x UInt8) ENGINE = Memory",
			wantErr: `table "sessions": add it to shardKeys or replicatedTables`},
		{name: "cluster/engine without parentheses", data: cluster, src: "ENGINE = {{.Engine \"events\" \"MergeTree\"}}",
			wantErr: `engine "MergeTree" of table "events": want a MergeTree-family engine`},
		{name: "cluster/engine not of the MergeTree family", data: cluster, src: "ENGINE = {{.Engine \"events\" \"Memory()\"}}",
			wantErr: `engine "Memory()" of table "events"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := parseMigration(1, "001_x", tt.src)
			require.NoError(t, err)
			got, _, err := m.render(tt.data)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidMigration)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestModeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cluster, engine string
		wantErr               string
	}{
		{name: "single/new database", engine: ""},
		{name: "single/single-node database", engine: "ReplacingMergeTree"},
		{name: "single/cluster database", engine: "Distributed",
			wantErr: "clickhouse-cluster: database sm was created on a cluster (sm.events is Distributed): set the cluster (SESSIONMON_CLICKHOUSE_CLUSTER)"},
		{name: "cluster/new database", cluster: "c1"},
		{name: "cluster/cluster database", cluster: "c1", engine: "Distributed"},
		{name: "cluster/single-node database", cluster: "c1", engine: "ReplacingMergeTree",
			wantErr: "clickhouse-cluster c1: database sm was created on a single node (sm.events is ReplacingMergeTree, not Distributed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := modeError("sm", tt.cluster, tt.engine)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidArgument)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestCheckCluster(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "c1", "prod_cluster", "_x"} {
		require.NoError(t, checkCluster(ok), ok)
	}
	for _, bad := range []string{"1c", "my-cluster", "c1 ON CLUSTER x", "c'1", strings.Repeat("c", 65)} {
		err := checkCluster(bad)
		require.ErrorIs(t, err, ErrInvalidArgument, bad)
		require.ErrorContains(t, err, "cluster name")
	}
}

// TestNoDistributedAlter: no cluster migration ALTERs a Distributed table
// ON CLUSTER, which ClickHouse 18.16 refuses when the shards have
// internal_replication (code 371).
func TestNoDistributedAlter(t *testing.T) {
	t.Parallel()
	for _, v := range ddlVariants {
		ddl := renderDDL(t, "c1", v)
		for table := range shardKeys {
			require.NotContains(t, ddl, "ALTER TABLE sessionmon."+table+" ON CLUSTER", v.file)
		}
	}
}

// TestCurrentStatusQueryOnCluster: on a cluster the ids of alerts (sharded
// by subject) reach alert_status (sharded by alert id) through GLOBAL IN,
// which servers accept without distributed_product_mode; on a single node
// the query is a plain IN.
func TestCurrentStatusQueryOnCluster(t *testing.T) {
	t.Parallel()
	single := &Store{db: "sm"}
	cluster := &Store{db: "sm", cluster: "c1"}
	require.Contains(t, single.currentStatusQuery("SELECT id FROM sm.alerts"), "WHERE alert_id IN (SELECT id FROM sm.alerts) GROUP BY alert_id")
	require.NotContains(t, single.currentStatusQuery("SELECT id FROM sm.alerts"), "GLOBAL")
	require.Contains(t, cluster.currentStatusQuery("SELECT id FROM sm.alerts"), "WHERE alert_id GLOBAL IN (SELECT id FROM sm.alerts) GROUP BY alert_id")
}
