//go:build drill

package drill

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
)

// TestDrillNATSRestart restarts the NATS server (file store) during load.
// SDK publishers retry through the outage; what still failed is published
// again by the app with the same ids. The pipeline reconnects.
func TestDrillNATSRestart(t *testing.T) {
	skipShort(t)
	d := newDrill(t, drillOptions{})
	p := d.publisher(400)
	const rate, run, down = 2000, 25 * time.Second, 3 * time.Second
	chaos := after(8*time.Second, func() error {
		d.nats.Stop()
		time.Sleep(down)
		return d.nats.Start()
	})
	require.NoError(t, p.Run(t.Context(), rate, run))
	require.NoError(t, chaos())
	require.NoError(t, p.Close(t.Context()))
	failed := p.Counts()
	n, err := p.Republish(t.Context(), d.nc)
	require.NoError(t, err)
	c := p.Counts()
	require.Zero(t, c.Failed)
	d.waitReady(time.Minute)
	note := fmt.Sprintf("%d ev/s for %s; the SDK's retries carried every publish through the outage", rate, run)
	if n > 0 {
		note = fmt.Sprintf("%d ev/s for %s; %d publishes failed for good in the SDK (%s) and were published again by the app with the same ids",
			rate, run, n, describeErrors(failed.Errors))
	}
	d.reconcile(fmt.Sprintf("NATS restart (%s down) during load", down), c.Failed,
		expect{published: c.Published, alerts: c.AlertsExpected, receivers: d.receivers()}, 2*time.Minute, note)
	d.checkLogs(p)
}

// TestDrillClickHouseRestart stops a private ClickHouse server for 15 s
// during load and starts it again.
func TestDrillClickHouseRestart(t *testing.T) {
	skipShort(t)
	srv := chtest.StartServer(t)
	d := newDrill(t, drillOptions{dsn: srv.DSN("drill")})
	p := d.publisher(400)
	const rate, run, down = 2000, 30 * time.Second, 15 * time.Second
	chaos := after(6*time.Second, func() error {
		srv.Stop()
		time.Sleep(down)
		srv.Start()
		return nil
	})
	require.NoError(t, p.Run(t.Context(), rate, run))
	require.NoError(t, chaos())
	require.NoError(t, p.Close(t.Context()))
	c := p.Counts()
	require.Zero(t, c.Failed, describeErrors(c.Errors))
	errs, err := d.pipe.Ingest.Metric(t.Context(), "sessionmon_ingest_insert_errors_total")
	require.NoError(t, err)
	require.Positive(t, errs, "ingest saw ClickHouse go away")
	d.waitReady(time.Minute)
	d.reconcile(fmt.Sprintf("ClickHouse restart (%s down) during load", down), c.Failed,
		expect{published: c.Published, alerts: c.AlertsExpected, receivers: d.receivers()}, 2*time.Minute,
		fmt.Sprintf("%d ev/s for %s; %.0f failed inserts retried", rate, run, errs))
	d.checkLogs(p)
}

// TestDrillClickHouseRejectsInserts detaches the events table for 15 s
// during load: the server is up and answers, but every insert fails
// (table does not exist), as with a broken disk or a revoked grant.
func TestDrillClickHouseRejectsInserts(t *testing.T) {
	skipShort(t)
	d := newDrill(t, drillOptions{})
	p := d.publisher(400)
	table := d.store.Database() + ".events"
	const rate, run, down = 2000, 30 * time.Second, 15 * time.Second
	chaos := after(6*time.Second, func() error {
		if err := clickhouseClient(t.Context(), "DETACH TABLE "+table); err != nil {
			return err
		}
		time.Sleep(down)
		return clickhouseClient(t.Context(), "ATTACH TABLE "+table)
	})
	require.NoError(t, p.Run(t.Context(), rate, run))
	require.NoError(t, chaos())
	require.NoError(t, p.Close(t.Context()))
	c := p.Counts()
	require.Zero(t, c.Failed, describeErrors(c.Errors))
	errs, err := d.pipe.Ingest.Metric(t.Context(), "sessionmon_ingest_insert_errors_total")
	require.NoError(t, err)
	require.Positive(t, errs, "ingest saw its inserts refused")
	d.reconcile(fmt.Sprintf("ClickHouse rejects inserts (events table detached %s)", down), c.Failed,
		expect{published: c.Published, alerts: c.AlertsExpected, receivers: d.receivers()}, 2*time.Minute,
		fmt.Sprintf("%d ev/s for %s; %.0f refused inserts retried", rate, run, errs))
	d.checkLogs(p)
}

// clickhouseClient runs one statement on the test server with
// clickhouse-client, as an operator would.
func clickhouseClient(ctx context.Context, query string) error {
	host, port := "127.0.0.1", "9000"
	if u := chtest.ServerDSN(); strings.HasPrefix(u, "clickhouse://") {
		hp := strings.TrimPrefix(u, "clickhouse://")
		hp, _, _ = strings.Cut(hp, "/")
		hp, _, _ = strings.Cut(hp, "?")
		if h, p, ok := strings.Cut(hp, ":"); ok {
			host, port = h, p
		}
	}
	out, err := exec.CommandContext(ctx, "clickhouse-client", "--host", host, "--port", port, "--query", query).CombinedOutput()
	if err != nil {
		return fmt.Errorf("clickhouse-client %q: %w: %s", query, err, out)
	}
	return nil
}

// TestDrillFullStream fills the events stream (max bytes): publishers get
// an error for every event the stream cannot take, never a silent loss;
// what was acknowledged is stored.
func TestDrillFullStream(t *testing.T) {
	skipShort(t)
	const maxBytes = 1 << 20
	d := newDrill(t, drillOptions{streamMaxBytes: maxBytes})
	p := d.publisher(100)
	const rate, run = 2000, 8 * time.Second
	require.NoError(t, p.Run(t.Context(), rate, run))
	require.NoError(t, p.Close(t.Context()))
	c := p.Counts()
	require.Positive(t, c.Failed, "the stream filled up: publishers must see errors")
	require.Positive(t, c.Published)
	for kind := range c.Errors {
		require.Contains(t, kind, "maximum bytes", "every failure says the stream is full, so none of them was stored")
	}
	d.reconcile(fmt.Sprintf("full JetStream (stream max bytes %d KiB)", maxBytes>>10), c.Failed,
		expect{published: c.Published, alerts: c.AlertsExpected, receivers: d.receivers()}, time.Minute,
		fmt.Sprintf("%d of %d events sent at %d ev/s were refused to the SDK: %s", c.Failed, c.Sent, rate, describeErrors(c.Errors)))
	d.checkLogs(p)
}
