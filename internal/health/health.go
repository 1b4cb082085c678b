// Package health serves /healthz (the process is alive) and /readyz (every
// dependency is ready, or why not).
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// checkTimeout bounds one readiness check.
const checkTimeout = 2 * time.Second

// Check reports why a component is not ready, or nil. It must be safe for
// concurrent use and return within its context's deadline.
type Check func(ctx context.Context) error

// Registry holds the readiness checks. It is safe for concurrent use.
type Registry struct {
	mu     sync.Mutex
	checks map[string]Check
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{checks: map[string]Check{}}
}

// Add registers (or replaces) the check called name.
func (r *Registry) Add(name string, c Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = c
}

// Status runs every check and returns each one's result ("ok" or the
// reason) and whether all passed.
func (r *Registry) Status(ctx context.Context) (map[string]string, bool) {
	r.mu.Lock()
	names := make([]string, 0, len(r.checks))
	for n := range r.checks {
		names = append(names, n)
	}
	checks := make(map[string]Check, len(r.checks))
	for n, c := range r.checks {
		checks[n] = c
	}
	r.mu.Unlock()
	sort.Strings(names)

	out := make(map[string]string, len(names))
	ready := true
	for _, n := range names {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := checks[n](cctx)
		cancel()
		if err != nil {
			out[n] = err.Error()
			ready = false
			continue
		}
		out[n] = "ok"
	}
	return out, ready
}

// Register adds /healthz and /readyz to mux.
func (r *Registry) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		checks, ready := r.Status(req.Context())
		code := http.StatusOK
		status := "ready"
		if !ready {
			code = http.StatusServiceUnavailable
			status = "not ready"
		}
		writeJSON(w, code, map[string]any{"status": status, "checks": checks})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
