package detect

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/natsconn"
)

// alertWriters maps a service a test started to the writer of the alerts
// stream that runs next to it (*Service -> *ingest.Service).
var alertWriters sync.Map

// writerOf returns the alerts writer started with svc.
func writerOf(t testing.TB, svc *Service) *ingest.Service {
	t.Helper()
	w, ok := alertWriters.Load(svc)
	require.True(t, ok, "no alerts writer runs next to this service")
	return w.(*ingest.Service)
}

// startAlertWriter runs the writer of SESSIONMON_ALERTS into the ClickHouse
// server at dsn until the test ends, as serve and the ingest command run it
// next to detect. It retries and stores quickly.
func startAlertWriter(t testing.TB, js jetstream.JetStream, dsn string) *ingest.Service {
	t.Helper()
	_, err := natsconn.EnsureAlertStream(t.Context(), js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)
	cfg := ingest.DefaultAlertConfig()
	cfg.BatchAge = 100 * time.Millisecond
	cfg.AckWait = 5 * time.Second
	cfg.RetryMin, cfg.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	w, err := ingest.NewAlerts(js, dsn, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("alerts writer Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("alerts writer did not stop within 30 s")
		}
	})
	return w
}
