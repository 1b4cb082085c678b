package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadyz(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	ready := errors.New("waiting for clickhouse: connection refused")
	r.Add("nats", func(context.Context) error { return nil })
	r.Add("ingest", func(context.Context) error { return ready })
	mux := http.NewServeMux()
	r.Register(mux)

	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return rec.Code, body
	}

	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body["status"])

	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, map[string]any{"nats": "ok", "ingest": ready.Error()}, body["checks"])

	ready = nil
	r.Add("ingest", func(context.Context) error { return nil })
	code, body = get("/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready", body["status"])
}

func TestState(t *testing.T) {
	t.Parallel()
	var s State
	require.NoError(t, s.Check(t.Context()), "the zero value is ready")
	s.Set("waiting for clickhouse")
	require.EqualError(t, s.Check(t.Context()), "waiting for clickhouse")
	r, ok := s.Reason()
	require.True(t, ok)
	require.Equal(t, "waiting for clickhouse", r)
	s.SetReady()
	require.NoError(t, s.Check(t.Context()))
	require.EqualError(t, NotReady("starting").Check(t.Context()), "starting")
}

func TestWait(t *testing.T) {
	t.Parallel()
	s := NotReady("starting")
	calls := 0
	require.NoError(t, Wait(t.Context(), func(ctx context.Context) error {
		if calls++; calls == 3 {
			s.SetReady()
		}
		return s.Check(ctx)
	}, time.Millisecond))
	require.Equal(t, 3, calls, "polled until it passed")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, Wait(ctx, NotReady("never").Check, time.Hour), context.Canceled)
}
