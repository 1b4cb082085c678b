package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

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
