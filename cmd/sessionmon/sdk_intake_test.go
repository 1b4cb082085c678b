package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
)

// TestSDKsThroughTheIntake runs `sessionmon serve` (embedded NATS, real
// ClickHouse, the dashboard) and, for the JavaScript and the Python SDK,
// makes an intake token with `sessionmon creds app NAME --http` and runs
// the SDK's own end-to-end test against serve's HTTP intake: a tiny
// Express (or WSGI) app reports a login, a session with a cookie set
// without Secure, activity and a logout through the SDK, and sends bad
// input straight to the intake. Every event the SDK test says was stored
// is then in ClickHouse exactly once, and the insecure_cookie alert raised
// from them is visible through /api/v1/alerts.
func TestSDKsThroughTheIntake(t *testing.T) {
	t.Parallel()
	node, nodeErr := exec.LookPath("node")
	python, pyErr := exec.LookPath("python3")
	if (nodeErr != nil || pyErr != nil) && os.Getenv("CI") == "" {
		t.Skip("needs node and python3 (scripts/test.sh installs them)")
	}
	require.NoError(t, nodeErr, "node")
	require.NoError(t, pyErr, "python3")
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(root, "sdk/js/node_modules/express")); err != nil {
		npm := exec.CommandContext(t.Context(), "npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = filepath.Join(root, "sdk/js")
		out, err := npm.CombinedOutput()
		require.NoError(t, err, "npm ci in sdk/js: %s", out)
	}

	p := startServeWithAdmin(t, "", "ingest", "detect", "dashboard")
	events := eventCounter(t)
	for _, sdk := range []struct {
		name, app string
		cmd       func(ctx context.Context) *exec.Cmd
	}{
		{"javascript", "jsshop", func(ctx context.Context) *exec.Cmd {
			c := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "test/intake.test.mjs")
			c.Dir = filepath.Join(root, "sdk/js")
			return c
		}},
		{"python", "pyshop", func(ctx context.Context) *exec.Cmd {
			c := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "tests.test_intake")
			c.Dir = filepath.Join(root, "sdk/python")
			return c
		}},
	} {
		t.Run(sdk.name, func(t *testing.T) {
			code, token, errOut := runCmd(t, t.Context(), "creds", "app", sdk.app, "--http", "--token-name", "e2e",
				"--data-dir", p.dataDir, "--nats-listen", p.natsAddr)
			require.Equal(t, exitOK, code, errOut)
			token = strings.TrimSpace(token)
			require.True(t, strings.HasPrefix(token, "smi_"), token)

			out := filepath.Join(t.TempDir(), "ids")
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := sdk.cmd(ctx)
			cmd.Env = append(os.Environ(), "SESSIONMON_INTAKE_URL="+p.base, "SESSIONMON_INTAKE_TOKEN="+token,
				"SESSIONMON_APP="+sdk.app, "SESSIONMON_EVENTS_OUT="+out)
			log, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", log)
			require.NotContains(t, string(log), "# skip 1", "the end-to-end test ran")
			t.Logf("%s", log)

			b, err := os.ReadFile(out)
			require.NoError(t, err)
			ids := strings.Fields(string(b))
			require.GreaterOrEqual(t, len(ids), 4, "login, session, activity, logout")
			poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
				counts, err := events(ids)
				if err != nil {
					return err
				}
				for _, id := range ids {
					if counts[id] != 1 {
						return fmt.Errorf("event %s stored %d times", id, counts[id])
					}
				}
				return nil
			})

			poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
				status, body := p.api(http.MethodGet, "/api/v1/alerts?detector=insecure_cookie&app="+sdk.app, nil)
				if status != http.StatusOK {
					return fmt.Errorf("alerts: %d %s", status, body)
				}
				var page struct {
					Alerts []storedAlert `json:"alerts"`
				}
				if err := json.Unmarshal(body, &page); err != nil {
					return err
				}
				if len(page.Alerts) == 0 {
					return fmt.Errorf("no insecure_cookie alert of %s yet", sdk.app)
				}
				return nil
			})
		})
	}

	// A standalone intake (scale-out) on the same NATS and data-dir takes
	// the same tokens.
	intakeAddr, probeAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan int, 1)
	var intakeOut, intakeLog syncBuffer
	go func() {
		done <- run(ctx, []string{"intake", "--data-dir", p.dataDir, "--nats-listen", p.natsAddr, "--intake-addr", intakeAddr, "--metrics-addr", probeAddr},
			&intakeOut, &intakeLog)
	}()
	defer func() {
		cancel()
		require.Equal(t, exitOK, <-done, "intake's exit code: %s", intakeLog.String())
	}()
	code, token, errOut := runCmd(t, t.Context(), "creds", "app", "scaled", "--http", "--data-dir", p.dataDir, "--nats-listen", p.natsAddr)
	require.Equal(t, exitOK, code, errOut)
	at := time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05.000Z")
	id := "01JSCALED0000000000000000A"
	var accepted struct {
		Accepted int `json:"accepted"`
	}
	poll.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+intakeAddr+"/v1/events",
			strings.NewReader(`{"id":"`+id+`","schema_version":1,"type":"login.failed","time":"`+at+`","app":"scaled","subject":"k1:AAAAAAAAAAAAAAAAAAAAAA","reason":"bad_password"}`))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			return fmt.Errorf("standalone intake: %d", res.StatusCode)
		}
		return json.NewDecoder(res.Body).Decode(&accepted)
	})
	require.Equal(t, 1, accepted.Accepted)
	poll.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		counts, err := events([]string{id})
		if err != nil {
			return err
		}
		if counts[id] != 1 {
			return fmt.Errorf("event stored %d times", counts[id])
		}
		return nil
	})

	// The tokens are listed (never themselves), and a revoked one is
	// refused.
	code, revoked, errOut := runCmd(t, t.Context(), "creds", "app", "old", "--http", "--data-dir", p.dataDir, "--nats-listen", p.natsAddr)
	require.Equal(t, exitOK, code, errOut)
	revoked = strings.TrimSpace(revoked)
	code, list, errOut := runCmd(t, t.Context(), "creds", "http-tokens", "--data-dir", p.dataDir, "--nats-listen", p.natsAddr)
	require.Equal(t, exitOK, code, errOut)
	require.NotContains(t, list, "smi_")
	var oldID string
	for line := range strings.Lines(list) {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "old" {
			oldID = f[0]
		}
	}
	require.Contains(t, list, "jsshop")
	require.Contains(t, list, "pyshop")
	require.NotEmpty(t, oldID, list)
	// -o json: the same rows, one JSON array, never a token.
	code, list, errOut = runCmd(t, t.Context(), "creds", "http-tokens", "-o", "json", "--data-dir", p.dataDir, "--nats-listen", p.natsAddr)
	require.Equal(t, exitOK, code, errOut)
	require.NotContains(t, list, "smi_")
	var tokens []intakeTokenJSON
	require.NoError(t, json.Unmarshal([]byte(list), &tokens), list)
	require.True(t, slices.ContainsFunc(tokens, func(tok intakeTokenJSON) bool {
		return tok.ID == oldID && tok.App == "old" && !tok.Expired && tok.Expires.After(tok.Created)
	}), list)
	code, _, errOut = runCmd(t, t.Context(), "creds", "revoke-http", oldID, "--data-dir", p.dataDir, "--nats-listen", p.natsAddr)
	require.Equal(t, exitOK, code, errOut)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.base+"/v1/events", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+revoked)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

// eventCounter returns a function that counts, in the test's ClickHouse
// database, the rows of each of ids as queries see them (FINAL).
func eventCounter(t *testing.T) func(ids []string) (map[string]uint64, error) {
	t.Helper()
	db := chtest.New(t).Database()
	opts, err := clickhouse.ParseDSN(chtest.DSN(t))
	require.NoError(t, err)
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	eventID := regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)
	return func(ids []string) (map[string]uint64, error) {
		quoted := make([]string, len(ids))
		for i, id := range ids {
			if !eventID.MatchString(id) {
				return nil, fmt.Errorf("not an event id: %q", id)
			}
			quoted[i] = "'" + id + "'"
		}
		rows, err := conn.Query(context.Background(), "SELECT id, count() FROM "+db+".events FINAL WHERE id IN ("+strings.Join(quoted, ",")+") GROUP BY id")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		counts := map[string]uint64{}
		for rows.Next() {
			var id string
			var n uint64
			if err := rows.Scan(&id, &n); err != nil {
				return nil, err
			}
			counts[id] = n
		}
		return counts, rows.Err()
	}
}
