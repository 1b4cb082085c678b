package natsconn_test

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsservertest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/tlstest"
)

// runTLSServer starts an embedded nats-server that requires TLS with the
// test PKI's server certificate and, with verifyClients, a client
// certificate signed by the test CA. auth sets its credentials.
func runTLSServer(t *testing.T, p tlstest.PKI, verifyClients bool, auth func(*server.Options)) *server.Server {
	t.Helper()
	opts := natsservertest.DefaultTestOptions
	opts.Host = "127.0.0.1"
	opts.Port = -1
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: p.ServerCert, KeyFile: p.ServerKey, CaFile: p.CAFile, Verify: verifyClients, Timeout: 2,
	})
	require.NoError(t, err)
	opts.TLS = true
	opts.TLSConfig = tc
	opts.TLSVerify = verifyClients
	opts.TLSTimeout = 2
	auth(&opts)
	s := natsservertest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s
}

func tlsURL(s *server.Server) string {
	return fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
}

// roundTrip proves the connection works: a request answered by a
// subscriber on the same connection.
func roundTrip(t *testing.T, cfg config.NATS, url string) {
	t.Helper()
	nc, err := natsconn.Connect(url, cfg, "tls-test", nil)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	state, err := nc.TLSConnectionState()
	require.NoError(t, err, "the connection must be TLS")
	require.True(t, state.HandshakeComplete)
	sub, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	reply, err := nc.Request("echo", []byte("ping"), 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "ping", string(reply.Data))
}

func TestConnectTLSUserPassword(t *testing.T) {
	t.Parallel()
	p := tlstest.New(t)
	const password = "s3cret-Passw0rd"
	s := runTLSServer(t, p, false, func(o *server.Options) {
		o.Username = "sessionmon"
		o.Password = password
	})
	url := tlsURL(s)

	t.Run("right CA and credentials", func(t *testing.T) {
		roundTrip(t, config.NATS{User: "sessionmon", Password: password, CAFile: p.CAFile}, url)
	})

	failures := []struct {
		name string
		cfg  config.NATS
		want []string
	}{
		{name: "no CA", cfg: config.NATS{User: "sessionmon", Password: password},
			want: []string{"server certificate not trusted", "SESSIONMON_NATS_TLS_CA"}},
		{name: "another CA", cfg: config.NATS{User: "sessionmon", Password: password, CAFile: p.OtherCAFile},
			want: []string{"not signed by the CA of nats-tls-ca", "SESSIONMON_NATS_TLS_CA"}},
		{name: "wrong password", cfg: config.NATS{User: "sessionmon", Password: "not-" + password, CAFile: p.CAFile},
			want: []string{"authorization failed", "SESSIONMON_NATS_USER", "SESSIONMON_NATS_PASSWORD"}},
		{name: "no credentials", cfg: config.NATS{CAFile: p.CAFile},
			want: []string{"authorization failed", "none is set"}},
		{name: "missing CA file", cfg: config.NATS{User: "sessionmon", Password: password, CAFile: filepath.Join(t.TempDir(), "nope.pem")},
			want: []string{"nats-tls-ca (SESSIONMON_NATS_TLS_CA)", "read CA file"}},
		{name: "CA file is a key", cfg: config.NATS{User: "sessionmon", Password: password, CAFile: p.ClientKey},
			want: []string{"nats-tls-ca (SESSIONMON_NATS_TLS_CA)", "no PEM certificate"}},
		{name: "certificate without key", cfg: config.NATS{User: "sessionmon", Password: password, CAFile: p.CAFile, CertFile: p.ClientCert},
			want: []string{"nats-tls-key (SESSIONMON_NATS_TLS_KEY)"}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := natsconn.Connect(url, tc.cfg, "tls-test", nil)
			if nc != nil {
				nc.Close()
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), password, "errors must not carry the password")
		})
	}
}

func TestConnectMutualTLSToken(t *testing.T) {
	t.Parallel()
	p := tlstest.New(t)
	const token = "tok-9f8e7d6c5b4a"
	s := runTLSServer(t, p, true, func(o *server.Options) { o.Authorization = token })
	url := tlsURL(s)

	t.Run("client certificate and token", func(t *testing.T) {
		roundTrip(t, config.NATS{Token: token, CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}, url)
	})

	failures := []struct {
		name string
		cfg  config.NATS
		want []string
	}{
		{name: "no client certificate", cfg: config.NATS{Token: token, CAFile: p.CAFile},
			want: []string{"client certificate", "SESSIONMON_NATS_TLS_CERT"}},
		{name: "wrong token", cfg: config.NATS{Token: "x" + token, CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey},
			want: []string{"authorization failed", "SESSIONMON_NATS_TOKEN"}},
		{name: "key does not match certificate", cfg: config.NATS{Token: token, CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ServerKey},
			want: []string{"nats-tls-cert (SESSIONMON_NATS_TLS_CERT)", "load client certificate"}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := natsconn.Connect(url, tc.cfg, "tls-test", nil)
			if nc != nil {
				nc.Close()
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), token, "errors must not carry the token")
		})
	}
}
