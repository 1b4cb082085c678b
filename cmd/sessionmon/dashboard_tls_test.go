package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/health"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool trusting it.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sessionmon test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeDashboardTLS runs serve's HTTP with the dashboard's
// tls_cert_file and tls_key_file: the dashboard answers over HTTPS only,
// on an address shared with metrics-addr and on an address of its own (the
// health checks then stay plain HTTP). The dashboard itself waits for ClickHouse, so it
// answers 503 here: what is tested is the transport.
func TestServeDashboardTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, pool := writeTestCert(t, dir)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	plainClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	get := func(c *http.Client, url string) (int, string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	notReady := func(context.Context) error { return errors.New("clickhouse not up in this test") }
	run := func(t *testing.T, cfg *config.Config) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		g, gctx := errgroup.WithContext(ctx)
		require.NoError(t, serveHTTPAndDashboard(gctx, g, cfg, nil, notReady, nil, nil, health.NewRegistry(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
		t.Cleanup(func() {
			cancel()
			require.NoError(t, g.Wait())
		})
	}
	tlsYAML := fmt.Appendf(nil, "tls_cert_file: %s\ntls_key_file: %s\n", certFile, keyFile)

	t.Run("shared with metrics-addr", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = freeAddr(t)
		cfg.Dashboard.Addr = cfg.MetricsAddr
		cfg.DashboardYAML = tlsYAML
		run(t, &cfg)
		code, body, err := get(tlsClient, "https://"+cfg.MetricsAddr+"/login")
		require.NoError(t, err, "the dashboard speaks TLS")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "dashboard starting")
		code, _, err = get(tlsClient, "https://"+cfg.MetricsAddr+"/healthz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		code, body, err = get(plainClient, "http://"+cfg.MetricsAddr+"/login")
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, code, "no plain HTTP: %s", body)
		require.NotContains(t, body, "dashboard starting")
	})

	t.Run("own dashboard-addr", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = freeAddr(t)
		cfg.Dashboard.Addr = freeAddr(t)
		cfg.DashboardYAML = tlsYAML
		run(t, &cfg)
		code, _, err := get(tlsClient, "https://"+cfg.Dashboard.Addr+"/login")
		require.NoError(t, err, "the dashboard speaks TLS")
		require.Equal(t, http.StatusServiceUnavailable, code)
		code, body, err := get(plainClient, "http://"+cfg.Dashboard.Addr+"/login")
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, code, "no plain HTTP: %s", body)
		code, _, err = get(plainClient, "http://"+cfg.MetricsAddr+"/healthz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "health checks stay plain HTTP on metrics-addr")
	})

	t.Run("missing certificate stops serve", func(t *testing.T) {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.MetricsAddr = freeAddr(t)
		cfg.DashboardYAML = fmt.Appendf(nil, "tls_cert_file: %s\ntls_key_file: %s\n", filepath.Join(dir, "none.pem"), keyFile)
		g, gctx := errgroup.WithContext(t.Context())
		err := serveHTTPAndDashboard(gctx, g, &cfg, nil, notReady, nil, nil, health.NewRegistry(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.ErrorContains(t, err, "dashboard.tls_cert_file")
		require.NoError(t, g.Wait())
	})
}
