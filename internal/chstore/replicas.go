package chstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Replicas. On a cluster, the Distributed tables and cluster() show one
// replica of every shard; a mutation (an erasure, a retention delete) is
// done only when every replica of every shard has applied it. The store
// therefore also talks to each server of its cluster (system.clusters:
// host_name and port, as remote_servers names them), with the user,
// password and TLS settings of its DSN, to wait for and check them one by
// one.

// replicaConns are the store's connections to the servers of its cluster,
// opened when first needed.
type replicaConns struct {
	mu    sync.Mutex
	conns map[string]driver.Conn
}

// clusterNodes returns the address (host:port) of every server of the
// store's cluster, by shard and replica.
func (s *Store) clusterNodes(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", s.cluster)
	if err != nil {
		return nil, fmt.Errorf("servers of cluster %s: %w", s.cluster, err)
	}
	defer rows.Close()
	var addrs []string
	for rows.Next() {
		var (
			host string
			port uint16
		)
		if err := rows.Scan(&host, &port); err != nil {
			return nil, fmt.Errorf("servers of cluster %s: %w", s.cluster, err)
		}
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("servers of cluster %s: %w", s.cluster, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("servers of cluster %s: the server the DSN names has no such cluster in remote_servers", s.cluster)
	}
	return addrs, nil
}

// replica returns a connection to the server at addr.
func (s *Store) replica(ctx context.Context, addr string) (driver.Conn, error) {
	r := &s.replicas
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	o := *s.dialOpts
	o.Addr = []string{addr}
	o.Settings = nil
	c, err := clickhouse.Open(&o)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", addr, err)
	}
	if err := c.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("ping clickhouse %s: %w", addr, err), c.Close())
	}
	if r.conns == nil {
		r.conns = map[string]driver.Conn{}
	}
	r.conns[addr] = c
	return c, nil
}

// dropReplica closes and forgets the connection to addr after an error,
// so that the next use opens a new one.
func (s *Store) dropReplica(addr string) {
	r := &s.replicas
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[addr]; ok {
		_ = c.Close()
		delete(r.conns, addr)
	}
}

// closeReplicas closes every connection to the cluster's servers.
func (s *Store) closeReplicas() error {
	r := &s.replicas
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for addr, c := range r.conns {
		errs = append(errs, c.Close())
		delete(r.conns, addr)
	}
	return errors.Join(errs...)
}

// eachReplica runs fn on every server of the store's cluster in turn, with
// its address and a connection to it; on a single server, once with the
// store's own connection and address "". It returns the errors of every
// server (a server it cannot reach among them), each naming the server.
func (s *Store) eachReplica(ctx context.Context, fn func(addr string, conn driver.Conn) error) error {
	if s.cluster == "" {
		return fn("", s.conn)
	}
	addrs, err := s.clusterNodes(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range addrs {
		conn, err := s.replica(ctx, addr)
		if err == nil {
			if err = fn(addr, conn); err != nil {
				s.dropReplica(addr)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("clickhouse %s: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

// SubjectRowsOnReplicas counts, on every server of the store's cluster,
// the rows of subject in its own copy of the events and alerts tables
// (what the Distributed tables cannot show: one replica of a shard may hold
// rows another no longer does). It returns, per table, the servers that
// hold any and how many; on a single server it returns nothing. A server
// it cannot ask is an error naming it.
func (s *Store) SubjectRowsOnReplicas(ctx context.Context, subject string) (map[string]map[string]uint64, error) {
	if err := CheckSubject(subject); err != nil {
		return nil, fmt.Errorf("subject rows on replicas: %w", err)
	}
	out := map[string]map[string]uint64{}
	if s.cluster == "" {
		return out, nil
	}
	err := s.eachReplica(ctx, func(addr string, conn driver.Conn) error {
		for _, t := range []string{TableEvents, TableAlerts} {
			var n uint64
			q := "SELECT count() FROM " + s.db + "." + s.storageTable(t) + " WHERE subject = ?"
			if err := conn.QueryRow(ctx, q, subject).Scan(&n); err != nil {
				return fmt.Errorf("count subject rows of %s: %w", t, err)
			}
			if n > 0 {
				if out[t] == nil {
					out[t] = map[string]uint64{}
				}
				out[t][addr] = n
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("subject rows on replicas: %w", err)
	}
	return out, nil
}

// PartitionRowsOnReplicas returns the servers of the store's cluster whose
// own copy of table still holds rows of partition id (one of
// RetentionTables), with how many; on a single server, nothing. A server
// it cannot ask is an error naming it.
func (s *Store) PartitionRowsOnReplicas(ctx context.Context, table, id string) (map[string]uint64, error) {
	if err := checkRetentionTable(table); err != nil {
		return nil, fmt.Errorf("partition rows on replicas: %w", err)
	}
	out := map[string]uint64{}
	if s.cluster == "" {
		return out, nil
	}
	err := s.eachReplica(ctx, func(addr string, conn driver.Conn) error {
		var n uint64
		q := "SELECT sum(rows) FROM system.parts WHERE database = ? AND table = ? AND active AND partition = ?"
		if err := conn.QueryRow(ctx, q, s.db, s.storageTable(table), id).Scan(&n); err != nil {
			return fmt.Errorf("rows of partition %s of %s: %w", id, table, err)
		}
		if n > 0 {
			out[addr] = n
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("partition rows on replicas: %w", err)
	}
	return out, nil
}
