package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthTimeout bounds one health probe; container healthchecks run it
// every few seconds and give it little longer than that.
const healthTimeout = 5 * time.Second

// healthBodyLimit caps how much of the answer is read and printed.
const healthBodyLimit = 64 << 10

// errUnhealthy is returned when the endpoint answers but not with 200.
var errUnhealthy = errors.New("not healthy")

func healthCommand() *command {
	return &command{
		name:  "health",
		short: "probe a running sessionmon's /readyz (or /healthz): for container healthchecks",
		usage: "sessionmon health [ready|live] [--metrics-addr host:port]",
		summary: `Ask a running sessionmon process on --metrics-addr (the same setting it listens
on, so SESSIONMON_METRICS_ADDR serves both) whether it is ready (/readyz, the
default) or alive (/healthz, with 'live'), print the answer and exit 0 when it
is, 1 when it is not. A wildcard listen address (0.0.0.0, [::]) is probed on
the loopback address. Container images need no shell or curl for it.`,
		options: []string{"metrics-addr", "http-addr", "log-format", "log-level"},
		words:   true,
		run:     runHealth,
	}
}

func runHealth(ctx context.Context, e *env) error {
	path := "/readyz"
	if len(e.args) > 0 {
		if err := wantWord(e.args, "ready", "live"); err != nil {
			return err
		}
		if e.args[0] == "live" {
			path = "/healthz"
		}
	}
	url, err := probeURL(e.cfg.MetricsAddr, path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: request %s: %w", url, err)
	}
	client := &http.Client{
		// The probe talks to the local process only: no proxy, no redirect.
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: GET %s (metrics-addr): %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, healthBodyLimit))
	if err != nil {
		return fmt.Errorf("health: read answer of %s: %w", url, err)
	}
	fmt.Fprintf(e.stdout, "%s\n", body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: GET %s: status %d: %w", url, resp.StatusCode, errUnhealthy)
	}
	return nil
}

// probeURL turns a listen address into the URL to probe it at: a wildcard
// or empty host becomes the loopback address of its family.
func probeURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("health: metrics-addr %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
