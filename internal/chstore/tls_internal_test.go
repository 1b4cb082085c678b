package chstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/testutil/tlstest"
)

func TestParseDSNTLS(t *testing.T) {
	t.Parallel()
	p := tlstest.New(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))

	serverCert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(serverCert.Certificate[0])
	require.NoError(t, err)

	tests := []struct {
		name string
		dsn  string
		// trusts: the parsed TLS config verifies the test server certificate.
		trusts  bool
		tls     bool
		wantErr []string
	}{
		{name: "plain", dsn: "clickhouse://127.0.0.1:9000/sessionmon"},
		{name: "secure, system CAs", dsn: "clickhouse://127.0.0.1:9440/sessionmon?secure=true", tls: true},
		{name: "secure with CA file", dsn: "clickhouse://127.0.0.1:9440/sessionmon?secure=true&tls_ca_file=" + p.CAFile, tls: true, trusts: true},
		{name: "CA file without secure", dsn: "clickhouse://127.0.0.1:9440/sessionmon?tls_ca_file=" + p.CAFile,
			wantErr: []string{"tls_ca_file", "needs secure=true"}},
		{name: "empty CA file name", dsn: "clickhouse://127.0.0.1:9440/sessionmon?secure=true&tls_ca_file=",
			wantErr: []string{"tls_ca_file", "must name a CA certificate file"}},
		{name: "missing CA file", dsn: "clickhouse://127.0.0.1:9440/sessionmon?secure=true&tls_ca_file=/nonexistent/ca.pem",
			wantErr: []string{"tls_ca_file", "read CA file"}},
		{name: "CA file not PEM", dsn: "clickhouse://127.0.0.1:9440/sessionmon?secure=true&tls_ca_file=" + notPEM,
			wantErr: []string{"tls_ca_file", "no PEM certificate"}},
		{name: "not a URL, password not quoted", dsn: "clickhouse://u:hunter2@[::1:9000/x",
			wantErr: []string{"not a URL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseDSN(tc.dsn)
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					require.Contains(t, err.Error(), w)
				}
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			_, hasSetting := o.Settings[TLSCAParam]
			require.False(t, hasSetting, "tls_ca_file must not reach the server as a setting")
			if !tc.tls {
				require.Nil(t, o.TLS)
				return
			}
			require.NotNil(t, o.TLS)
			_, verr := leaf.Verify(x509.VerifyOptions{Roots: o.TLS.RootCAs, DNSName: "127.0.0.1"})
			if tc.trusts {
				require.NoError(t, verr)
			} else {
				require.Nil(t, o.TLS.RootCAs, "without tls_ca_file the system CAs apply")
			}
		})
	}
}

// TestClickHouseURLTLSCA checks that the clickhouse-tls-ca option reaches
// chstore: config builds the DSN, chstore reads it.
func TestClickHouseURLTLSCA(t *testing.T) {
	t.Parallel()
	p := tlstest.New(t)
	cfg := config.Default()
	cfg.ClickHouseDSN = "clickhouse://ingest@db.example:9440/sessionmon?dial_timeout=2s"
	cfg.ClickHousePassword = "pa55"
	cfg.ClickHouseTLSCA = p.CAFile
	o, err := parseDSN(cfg.ClickHouseURL())
	require.NoError(t, err)
	require.NotNil(t, o.TLS)
	require.NotNil(t, o.TLS.RootCAs)
	require.Equal(t, "ingest", o.Auth.Username)
	require.Equal(t, "pa55", o.Auth.Password)
	require.Equal(t, "sessionmon", o.Auth.Database)
	require.Equal(t, 2*time.Second, o.DialTimeout)
	require.Equal(t, []string{"db.example:9440"}, o.Addr)
}

// TestOpenTLSVerifiesWithCA dials a TLS listener that is not ClickHouse:
// with the right CA the handshake completes (and Open fails later, at the
// ClickHouse handshake); with another CA it fails on the certificate.
func TestOpenTLSVerifiesWithCA(t *testing.T) {
	t.Parallel()
	p := tlstest.New(t)
	for _, tc := range []struct {
		name          string
		ca            string
		handshakeOK   bool
		wantInOpenErr string
	}{
		{name: "right CA", ca: p.CAFile, handshakeOK: true},
		{name: "other CA", ca: p.OtherCAFile, wantInOpenErr: "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			port, handshakes := tlsListener(t, p)
			dsn := fmt.Sprintf("clickhouse://127.0.0.1:%d/sessionmon?dial_timeout=2s&secure=true&tls_ca_file=%s", port, tc.ca)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, dsn, nil)
			if s != nil {
				_ = s.Close()
			}
			require.Error(t, err, "the listener is not ClickHouse")
			require.False(t, errors.Is(err, ErrInvalidDSN), "the DSN is valid: %v", err)
			if tc.wantInOpenErr != "" {
				require.Contains(t, err.Error(), tc.wantInOpenErr)
			}
			select {
			case herr := <-handshakes:
				if tc.handshakeOK {
					require.NoError(t, herr, "the client must trust the server through tls_ca_file")
				} else {
					require.Error(t, herr)
				}
			case <-ctx.Done():
				require.Fail(t, "no TLS handshake reached the listener")
			}
		})
	}
}

// tlsListener accepts TLS connections with the PKI's server certificate
// on a loopback port, completes the handshake, closes the connection and
// reports the handshake's result (the first 16; later ones are dropped).
func tlsListener(t *testing.T, p tlstest.PKI) (int, <-chan error) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	handshakes := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			err = c.(*tls.Conn).HandshakeContext(t.Context())
			_ = c.Close()
			select {
			case handshakes <- err:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port, handshakes
}
