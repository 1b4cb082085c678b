package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/internal/config"
)

// Connect opens a connection to the NATS server at url with the
// credentials and TLS settings of cfg. It reconnects for ever; connection
// state changes are logged (without credentials).
//
// The TLS and credentials files are checked before connecting, so a
// missing or malformed file fails with the option that names it. They are
// read again on every reconnect, so rotated certificates and credentials
// are picked up without a restart. A failed connection says which option
// most likely needs fixing (the CA, the client certificate, the
// credentials).
//
// With no credentials set, cfg.DefaultCredsFile is used: the file serve
// wrote for the embedded server; its absence is an error that says so.
// Credentials that may receive replies on one inbox prefix only (an app's)
// get it as the connection's inbox prefix. extra options come after
// sessionmon's own (e.g. nats.InProcessServer).
func Connect(url string, cfg config.NATS, name string, logger *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "nats")
	if cfg.Token == "" && cfg.User == "" && cfg.CredsFile == "" && cfg.DefaultCredsFile != "" {
		if _, err := os.Stat(cfg.DefaultCredsFile); err != nil {
			return nil, fmt.Errorf("connect to nats: no credentials for the embedded server: %w "+
				"('sessionmon serve' writes it on its first start with the same data-dir, %s; "+
				"or set nats-creds, %s, or nats-url, %s, for another server)",
				err, config.EnvName("data-dir"), config.EnvName("nats-creds"), config.EnvName("nats-url"))
		}
		cfg.CredsFile = cfg.DefaultCredsFile
	}
	if err := checkFiles(cfg); err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", slog.String("server", nc.ConnectedServerId()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats async error", slog.Any("error", err))
		}),
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		if p := inboxPrefix(cfg.CredsFile); p != "" {
			opts = append(opts, nats.CustomInboxPrefix(p))
		}
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %s%w", hint(err, cfg), err)
	}
	return nc, nil
}

// checkFiles reads every file cfg names, so that a wrong path or a file of
// the wrong kind is reported with its option before any network traffic.
func checkFiles(cfg config.NATS) error {
	var errs []error
	if cfg.CAFile != "" {
		if err := checkCA(cfg.CAFile); err != nil {
			errs = append(errs, optionError("nats-tls-ca", err))
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		switch {
		case cfg.CertFile == "":
			errs = append(errs, optionError("nats-tls-cert", errors.New("a client key needs its certificate")))
		case cfg.KeyFile == "":
			errs = append(errs, optionError("nats-tls-key", errors.New("a client certificate needs its key")))
		default:
			if _, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
				errs = append(errs, optionError("nats-tls-cert", fmt.Errorf("load client certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)))
			}
		}
	}
	if cfg.CredsFile != "" && cfg.Token == "" && cfg.User == "" {
		if _, err := os.Stat(cfg.CredsFile); err != nil {
			errs = append(errs, optionError("nats-creds", fmt.Errorf("credentials file: %w", err)))
		}
	}
	return errors.Join(errs...)
}

// checkCA reports whether file holds at least one PEM certificate.
func checkCA(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read CA file: %w", err)
	}
	found := false
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("CA file %s: parse certificate: %w", file, err)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return nil
}

func optionError(option string, err error) error {
	return fmt.Errorf("%s (%s): %w", option, config.EnvName(option), err)
}

// hint names the options to look at for a failed connection, or returns
// "" when the error says nothing about TLS or credentials.
func hint(err error, cfg config.NATS) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA):
		if cfg.CAFile == "" {
			return "server certificate not trusted: set nats-tls-ca (" + config.EnvName("nats-tls-ca") + ") to the CA that signed it: "
		}
		return "server certificate not signed by the CA of nats-tls-ca (" + config.EnvName("nats-tls-ca") + "): "
	case errors.As(err, &hostname):
		return "server certificate is not valid for the host of nats-url (" + config.EnvName("nats-url") + "): "
	case errors.As(err, &invalid):
		return "server certificate invalid (expired or not for a server): "
	case errors.Is(err, nats.ErrSecureConnRequired):
		return "the server requires TLS: use tls:// in nats-url (" + config.EnvName("nats-url") + ") and set nats-tls-ca if its CA is private: "
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "TLS is configured but the server does not offer it: "
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired):
		return "authorization failed: check " + credentialOptions(cfg) + ": "
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return "the server wants a client certificate it trusts: set nats-tls-cert and nats-tls-key (" +
			config.EnvName("nats-tls-cert") + ", " + config.EnvName("nats-tls-key") + "): "
	case strings.Contains(msg, "closed by remote after TLS handshake"):
		// With TLS 1.3 the server checks the client certificate after the
		// client's handshake ended; its refusal may arrive as a closed
		// connection instead of an alert.
		if cfg.CertFile == "" {
			return "the server closed the connection after the TLS handshake: it may want a client certificate: set nats-tls-cert and nats-tls-key (" +
				config.EnvName("nats-tls-cert") + ", " + config.EnvName("nats-tls-key") + "): "
		}
		return "the server closed the connection after the TLS handshake: it may not trust the client certificate of nats-tls-cert (" +
			config.EnvName("nats-tls-cert") + "): "
	}
	return ""
}

// credentialOptions names the credentials options in use, or all of them.
func credentialOptions(cfg config.NATS) string {
	switch {
	case cfg.Token != "":
		return config.EnvName("nats-token")
	case cfg.User != "":
		return "nats-user and its password (" + config.EnvName("nats-user") + ", " + config.EnvName("nats-password") + ")"
	case cfg.CredsFile != "":
		return "nats-creds (" + config.EnvName("nats-creds") + ")"
	}
	return "the credentials: none is set (" + config.EnvName("nats-user") + " + " + config.EnvName("nats-password") +
		", " + config.EnvName("nats-token") + " or " + config.EnvName("nats-creds") + ")"
}
