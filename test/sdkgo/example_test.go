package sdkgo_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// sdkDir is the SDK module in this tree.
func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "sdk"))
	require.NoError(t, err)
	return dir
}

// TestExampleHTTPApp builds sdk/examples/httpapp, runs it against
// sessionmon's embedded NATS server with the per-app credentials `sessionmon
// creds app` writes, signs in and out through HTTP, and reads what reached
// the events stream: the events of the login, the throttled activity and the
// logout, the rotated session linked to the one it replaced, and no raw
// identifier anywhere.
func TestExampleHTTPApp(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "httpapp")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./examples/httpapp")
	build.Dir = sdkDir(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	srv, stream, _, creds := securedServer(t)

	keyFile := filepath.Join(t.TempDir(), "pseudonym.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(hex.EncodeToString(testKey)+"\n"), 0o600))

	app := exec.Command(bin, "-addr", "127.0.0.1:0", "-nats", srv.ClientURL(), "-app", testApp,
		"-creds", creds, "-key-file", keyFile, "-key-id", "k1")
	app.Env = append(os.Environ(), "SESSIONMON_INBOX_PREFIX="+natsauth.AppInbox(testApp))
	stderr, err := app.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, app.Start())
	// One goroutine reads the app's log: the address it listens on, then
	// the rest until it exits.
	addrs, exited := make(chan string, 1), make(chan error, 1)
	var rest bytes.Buffer
	go func() {
		logs := bufio.NewScanner(stderr)
		for logs.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(logs.Bytes(), &line) == nil && line.Msg == "listening" {
				addrs <- line.Addr
				break
			}
			rest.Write(logs.Bytes())
		}
		_, _ = io.Copy(&rest, stderr)
		exited <- app.Wait()
	}()
	t.Cleanup(func() {
		_ = app.Process.Kill()
		<-exited
	})
	var addr string
	select {
	case addr = <-addrs:
	case err := <-exited:
		exited <- err
		t.Fatalf("the app exited (%v): %s", err, rest.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the app did not say where it listens")
	}

	base := "http://" + addr
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	u, err := url.Parse(base)
	require.NoError(t, err)
	const oldSID = "pre-login-session-0001"
	jar.SetCookies(u, []*http.Cookie{{Name: "sid", Value: oldSID}})
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	do := func(method, path string, form url.Values) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "sdkgo-test/1.0")
		resp, err := hc.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	cookie := func(name string) string {
		for _, c := range jar.Cookies(u) {
			if c.Name == name {
				return c.Value
			}
		}
		return ""
	}

	require.Equal(t, http.StatusUnauthorized, do(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusUnauthorized, do(http.MethodPost, "/login", url.Values{"user": {"alice"}, "password": {"wrong"}}))
	require.Equal(t, http.StatusNoContent, do(http.MethodPost, "/login", url.Values{"user": {"alice"}, "password": {"correct horse"}}))
	newSID, device := cookie("sid"), cookie("device")
	require.NotEmpty(t, newSID)
	require.NotEqual(t, oldSID, newSID, "the login rotates the session")
	require.NotEmpty(t, device)
	for range 3 {
		require.Equal(t, http.StatusOK, do(http.MethodGet, "/", nil))
	}
	require.Equal(t, http.StatusNoContent, do(http.MethodPost, "/logout", nil))

	// SIGTERM: the app drains its buffer before it exits.
	require.NoError(t, app.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err
		require.NoError(t, err, "app: %s", rest.String())
	case <-time.After(15 * time.Second):
		t.Fatal("the app did not stop on SIGTERM")
	}

	p, err := sdk.NewPseudonymizer("k1", testKey)
	require.NoError(t, err)
	cons, err := stream.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	batch, err := cons.FetchNoWait(100)
	require.NoError(t, err)
	var events []*schemas.Event
	for m := range batch.Messages() {
		for _, raw := range []string{"alice", oldSID, newSID, device, "127.0.0.1", "correct horse"} {
			require.False(t, bytes.Contains(m.Data(), []byte(raw)), "%q was sent", raw)
		}
		ev, err := schemas.Decode(m.Data(), time.Now())
		require.NoError(t, err, "%s", m.Data())
		events = append(events, ev)
	}
	require.NoError(t, batch.Error())
	var types []schemas.Type
	for _, ev := range events {
		types = append(types, ev.Type)
		require.Equal(t, testApp, ev.App)
		require.Equal(t, "127.0.0.0/24", ev.Client.IPPrefix)
		require.Equal(t, p.Device(device).String(), ev.Client.Device)
		require.Equal(t, "sdkgo-test/1.0", ev.Client.UserAgent)
	}
	require.Equal(t, []schemas.Type{schemas.LoginFailed, schemas.LoginSucceeded, schemas.SessionStarted, schemas.SessionActivity, schemas.SessionEnded}, types,
		"three requests of one session within a minute report one activity")
	alice, session := p.Subject("alice").String(), p.Session(newSID).String()
	require.Equal(t, alice, events[0].Subject)
	require.Equal(t, "bad_credentials", events[0].Reason)
	for _, ev := range events[1:] {
		require.Equal(t, alice, ev.Subject)
		require.Equal(t, session, ev.Session)
	}
	require.Equal(t, p.Session(oldSID).String(), events[2].PreviousSession)
	require.Equal(t, "password", events[1].Auth.Method)
	require.Equal(t, int64(1800), events[2].Policy.IdleTimeoutS)
	require.Equal(t, "logout", events[4].Reason)
}
