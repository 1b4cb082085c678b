package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/natsauth"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/internal/testutil/tlstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// waitNATSReady waits until serve's readiness reports the events stream.
func waitNATSReady(t *testing.T, httpAddr string) {
	t.Helper()
	poll.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		if !strings.Contains(string(buf[:n]), `"events_stream":"ok"`) {
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, buf[:n])
		}
		return nil
	})
}

// appConn connects with a credentials file and an inbox prefix.
func appConn(t *testing.T, url, creds, prefix string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserCredentials(creds), nats.CustomInboxPrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func publishEvent(ctx context.Context, js jetstream.JetStream, app, id, subject string) error {
	line := strings.Replace(event(id, subject), `"app":"shop"`, `"app":"`+app+`"`, 1)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := js.Publish(ctx, schemas.EventSubject(app, subject), []byte(line), jetstream.WithMsgID(id))
	return err
}

// TestServeAuthenticatesNATSClients runs serve with its embedded NATS
// server: clients need the credentials serve wrote; app.creds publishes
// events ingest stores; per-app credentials minted by `sessionmon creds
// app` publish their own app's events only; commands find the admin
// credentials of their data-dir; a restart keeps every file valid.
func TestServeAuthenticatesNATSClients(t *testing.T) {
	t.Parallel()
	natsAddr, httpAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	store := chtest.New(t)
	dsn := chtest.DSN(t)
	srv := startServe(t, "--data-dir", dataDir, "--nats-listen", natsAddr, "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr,
		"--clickhouse-dsn", dsn, "--ingest-batch-age", "100ms")
	dumpLogOnFailure(t, srv.errOut)
	waitNATSReady(t, httpAddr)
	url := "nats://" + natsAddr
	nd := natsauth.Dir(dataDir)

	_, err := nats.Connect(url)
	require.ErrorIs(t, err, nats.ErrAuthorization, "a client without credentials is refused")

	app := appConn(t, url, natsauth.CredsFile(nd, natsauth.AppUser), natsauth.AppInboxPrefix)
	require.NoError(t, publishEvent(t.Context(), app, "shop", "ev-app-1", "k1:AAAAAAAAAAAAAAAAAAAAAA"), "app.creds publishes events")
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		n, err := store.CountEvents(t.Context())
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%d events in clickhouse", n)
		}
		return nil
	})

	// Per-app credentials.
	shopCreds := filepath.Join(t.TempDir(), "shop.creds")
	code, out, errOut := runCmd(t, t.Context(), "creds", "app", "shop", "--data-dir", dataDir, "--output", shopCreds)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	fi, err := os.Stat(shopCreds)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	shop := appConn(t, url, shopCreds, natsauth.AppInbox("shop"))
	require.NoError(t, publishEvent(t.Context(), shop, "shop", "ev-shop-1", "k1:BBBBBBBBBBBBBBBBBBBBBB"))
	require.Error(t, publishEvent(t.Context(), shop, "other", "ev-other-1", "k1:CCCCCCCCCCCCCCCCCCCCCC"), "per-app credentials publish only their app's events")
	code, out, _ = runCmd(t, t.Context(), "creds", "app", "billing", "--data-dir", dataDir)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "BEGIN NATS USER JWT", "without --output the credentials go to standard output")
	code, _, errOut = runCmd(t, t.Context(), "creds", "app", "shop", "--data-dir", dataDir, "--output", shopCreds)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "exists", "an existing file is not replaced")
	code, _, errOut = runCmd(t, t.Context(), "creds", "app", "a.b", "--data-dir", dataDir)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "A-Z a-z 0-9 _ -")
	code, _, errOut = runCmd(t, t.Context(), "creds", "app", "shop", "--data-dir", t.TempDir())
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "sessionmon serve")

	// Commands find the admin credentials of their data-dir...
	code, out, errOut = runCmd(t, t.Context(), "dlq", "list", "--data-dir", dataDir, "--nats-listen", natsAddr)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	require.Contains(t, out, "no dead letters")
	file := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(file, []byte(event("ev-cli-1", "k1:DDDDDDDDDDDDDDDDDDDDDD")+"\n"), 0o600))
	code, out, errOut = runCmd(t, t.Context(), "publish", "--file", file, "--data-dir", dataDir, "--nats-listen", natsAddr)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	// ... take --nats-creds, an app's too (its inbox prefix is read from it) ...
	for i, creds := range []string{natsauth.CredsFile(nd, natsauth.AppUser), shopCreds} {
		require.NoError(t, os.WriteFile(file, []byte(event(fmt.Sprintf("ev-cli-app-%d", i), "k1:DDDDDDDDDDDDDDDDDDDDDD")+"\n"), 0o600))
		code, out, errOut = runCmd(t, t.Context(), "publish", "--file", file, "--nats-url", url, "--nats-creds", creds)
		require.Equal(t, exitOK, code, "%s: %s%s", creds, out, errOut)
		require.Contains(t, out, "published 1,")
	}
	code, out, errOut = runCmd(t, t.Context(), "dlq", "list", "--nats-creds", natsauth.CredsFile(nd, natsauth.AdminUser), "--data-dir", t.TempDir(), "--nats-listen", natsAddr)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	// ... and say what is missing.
	code, _, errOut = runCmd(t, t.Context(), "dlq", "list", "--data-dir", t.TempDir(), "--nats-listen", natsAddr)
	require.Equal(t, exitError, code)
	require.Contains(t, errOut, "admin.creds")
	require.Contains(t, errOut, "sessionmon serve")

	// A restart reuses the keys: every file made before still works.
	logs := srv.stop(t)
	for _, f := range []string{natsauth.CredsFile(nd, natsauth.AdminUser), natsauth.CredsFile(nd, natsauth.ServiceUser), filepath.Join(nd, "keys", "account.nk")} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "SU") || strings.HasPrefix(line, "SA") {
				require.NotContains(t, logs, line, "a seed in serve's log")
			}
		}
	}
	httpAddr = freeAddr(t)
	srv = startServe(t, "--data-dir", dataDir, "--nats-listen", natsAddr, "--metrics-addr", httpAddr, "--dashboard-addr", httpAddr, "--clickhouse-dsn", dsn)
	dumpLogOnFailure(t, srv.errOut)
	waitNATSReady(t, httpAddr)
	for i, c := range []struct{ creds, prefix string }{
		{natsauth.CredsFile(nd, natsauth.AppUser), natsauth.AppInboxPrefix},
		{shopCreds, natsauth.AppInbox("shop")},
	} {
		js := appConn(t, url, c.creds, c.prefix)
		require.NoError(t, publishEvent(t.Context(), js, "shop", fmt.Sprintf("ev-restart-%d", i), "k1:EEEEEEEEEEEEEEEEEEEEEE"), c.creds)
	}
	code, out, errOut = runCmd(t, t.Context(), "dlq", "list", "--data-dir", dataDir, "--nats-listen", natsAddr)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
}

// TestServeNATSListenBeyondLoopbackNeedsTLS: serve refuses to accept NATS
// clients from the network in plain text, and does with a certificate.
func TestServeNATSListenBeyondLoopbackNeedsTLS(t *testing.T) {
	t.Parallel()
	port := freeAddr(t)[len("127.0.0.1:"):]
	code, out, errOut := runCmd(t, t.Context(), "serve", "--data-dir", t.TempDir(), "--nats-listen", "0.0.0.0:"+port,
		"--metrics-addr", freeAddr(t), "--dashboard-addr", freeAddr(t), "--clickhouse-dsn", "clickhouse://127.0.0.1:1/x")
	require.Equal(t, exitError, code, "%s%s", out, errOut)
	require.Contains(t, errOut, "not a loopback address")
	require.Contains(t, errOut, "SESSIONMON_NATS_LISTEN_TLS_CERT")

	code, _, errOut = runCmd(t, t.Context(), "serve", "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:"+port,
		"--nats-listen-tls-cert", "cert.pem")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "SESSIONMON_NATS_LISTEN_TLS_KEY")

	p := tlstest.New(t)
	dataDir, httpAddr := t.TempDir(), freeAddr(t)
	srv := startServe(t, "--data-dir", dataDir, "--nats-listen", "0.0.0.0:"+port, "--nats-listen-tls-cert", p.ServerCert, "--nats-listen-tls-key", p.ServerKey,
		"--metrics-addr", httpAddr, "--dashboard-addr", httpAddr, "--clickhouse-dsn", chtest.DSN(t))
	dumpLogOnFailure(t, srv.errOut)
	waitNATSReady(t, httpAddr)
	admin := natsauth.CredsFile(natsauth.Dir(dataDir), natsauth.AdminUser)
	nc, err := nats.Connect("tls://127.0.0.1:"+port, nats.UserCredentials(admin), nats.RootCAs(p.CAFile))
	require.NoError(t, err)
	nc.Close()
	_, err = nats.Connect("nats://127.0.0.1:"+port, nats.UserCredentials(admin))
	require.Error(t, err, "no plain-text clients")
	// The commands connect with TLS too.
	code, out, errOut = runCmd(t, t.Context(), "dlq", "list", "--data-dir", dataDir, "--nats-url", "tls://127.0.0.1:"+port,
		"--nats-creds", admin, "--nats-tls-ca", p.CAFile)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
}

func TestCredsInit(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nats")
	code, out, errOut := runCmd(t, t.Context(), "creds", "init", "--dir", dir)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	for _, f := range []string{"auth.conf", "admin.creds", "sessionmon.creds", "app.creds"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	auth, err := os.ReadFile(filepath.Join(dir, "auth.conf"))
	require.NoError(t, err)
	code, out, errOut = runCmd(t, t.Context(), "creds", "init", "--dir", dir)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	again, err := os.ReadFile(filepath.Join(dir, "auth.conf"))
	require.NoError(t, err)
	sysLine := func(conf []byte) string {
		for line := range strings.SplitSeq(string(conf), "\n") {
			if strings.HasPrefix(line, "system_account:") {
				return line
			}
		}
		return ""
	}
	require.NotEmpty(t, sysLine(auth))
	require.Equal(t, sysLine(auth), sysLine(again), "a second run keeps the keys")
	code, out, errOut = runCmd(t, t.Context(), "creds", "app", "shop", "--dir", dir)
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	require.Contains(t, out, "NKEY SEED")

	code, _, errOut = runCmd(t, t.Context(), "creds", "init")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--dir")
	code, out, _ = runCmd(t, t.Context(), "creds", "--help")
	require.Equal(t, exitOK, code)
	for _, want := range []string{"creds app NAME", "_INBOX_NAME", "creds init --dir DIR", "auth.conf", "WithInboxPrefix"} {
		require.Contains(t, out, want)
	}
}
