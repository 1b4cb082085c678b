package chstore

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TLSCAParam is the DSN parameter that names a PEM file of CA certificates
// to verify the server with, for servers whose certificate a private CA
// signed: clickhouse://host:9440/sessionmon?secure=true&tls_ca_file=/etc/sessionmon/ch-ca.pem.
// It needs secure=true. clickhouse-go's own parameters (secure,
// skip_verify, tls_server_name) apply as documented there; without
// tls_ca_file a secure connection trusts the system's CAs.
const TLSCAParam = "tls_ca_file"

// parseDSN parses dsn with clickhouse-go, after taking out the parameters
// that sessionmon handles itself (clickhouse-go would send an unknown
// parameter to the server as a setting). Errors never quote the DSN: it may
// hold a password.
func parseDSN(dsn string) (*clickhouse.Options, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("not a URL (clickhouse://[user@]host:port/database)")
	}
	q := u.Query()
	caFile, hasCA := q.Get(TLSCAParam), q.Has(TLSCAParam)
	if hasCA {
		q.Del(TLSCAParam)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	o, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if !hasCA {
		return o, nil
	}
	if caFile == "" {
		return nil, fmt.Errorf("%s: must name a CA certificate file", TLSCAParam)
	}
	if o.TLS == nil {
		return nil, fmt.Errorf("%s: needs secure=true (TLS) in the DSN", TLSCAParam)
	}
	pool, err := loadCAPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", TLSCAParam, err)
	}
	o.TLS.RootCAs = pool
	return o, nil
}

// loadCAPool reads a PEM file of one or more CA certificates.
func loadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}
