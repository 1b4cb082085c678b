package natsconn

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsauth"
)

// readyTimeout bounds how long the embedded server may take to accept
// connections (JetStream recovers its store first).
const readyTimeout = 60 * time.Second

// StartEmbedded starts a nats-server with JetStream in this process,
// storing streams under dataDir/jetstream and accepting clients on
// cfg.Listen (host:port; port 0 picks a free one), with TLS when
// cfg.ListenTLSCert and cfg.ListenTLSKey are set. Clients must
// authenticate: on first start the keys and the admin, sessionmon and app
// credentials files are made in natsauth.Dir(dataDir); later starts reuse
// them. A listen address that is not loopback needs TLS. The caller shuts
// the server down with Shutdown and WaitForShutdown.
func StartEmbedded(cfg config.NATS, dataDir string, logger *slog.Logger) (*server.Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats-listen (%s) %q: %w", config.EnvName("nats-listen"), cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats-listen (%s) port %q: %w", config.EnvName("nats-listen"), portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	withTLS := cfg.ListenTLSCert != "" || cfg.ListenTLSKey != ""
	if !withTLS && !isLoopback(host) {
		return nil, fmt.Errorf("nats-listen (%s) %q is not a loopback address: the embedded NATS server accepts clients from other hosts only over TLS; "+
			"set nats-listen-tls-cert and nats-listen-tls-key (%s, %s), or listen on 127.0.0.1",
			config.EnvName("nats-listen"), cfg.Listen, config.EnvName("nats-listen-tls-cert"), config.EnvName("nats-listen-tls-key"))
	}
	if err := ensurePrivateDir(dataDir, logger); err != nil {
		return nil, err
	}
	authDir := natsauth.Dir(dataDir)
	auth, err := natsauth.LoadOrCreate(authDir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if err := auth.EnsureCreds(authDir); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	storeDir := filepath.Join(dataDir, "jetstream")
	if err := adoptAnonymousStore(storeDir, auth.AccountKey()); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	opts := &server.Options{
		ServerName: "sessionmon-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	if err := auth.Configure(opts); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if withTLS {
		if cfg.ListenTLSCert == "" || cfg.ListenTLSKey == "" {
			return nil, fmt.Errorf("nats-listen-tls-cert and nats-listen-tls-key (%s, %s): set both or neither",
				config.EnvName("nats-listen-tls-cert"), config.EnvName("nats-listen-tls-key"))
		}
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.ListenTLSCert, KeyFile: cfg.ListenTLSKey})
		if err != nil {
			return nil, fmt.Errorf("nats-listen-tls-cert (%s): load %s and key %s: %w",
				config.EnvName("nats-listen-tls-cert"), cfg.ListenTLSCert, cfg.ListenTLSKey, err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSTimeout = tc, true, 2
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s.SetLoggerV2(newServerLogger(logger), false, false, false)
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s: not ready after %s (is the port in use?)", cfg.Listen, readyTimeout)
	}
	return s, nil
}

// isLoopback reports whether host (of a listen address) only accepts
// connections from this machine. An empty host is every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adoptAnonymousStore moves the JetStream data of a server that ran
// without authentication (account $G) to the sessionmon account, so that
// the streams of an existing data directory are kept.
func adoptAnonymousStore(storeDir, account string) error {
	// nats-server keeps each account's streams in StoreDir/jetstream/<account>.
	storeDir = filepath.Join(storeDir, server.JetStreamStoreDir)
	old := filepath.Join(storeDir, server.DEFAULT_GLOBAL_ACCOUNT)
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	dst := filepath.Join(storeDir, account)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.Rename(old, dst); err != nil {
		return fmt.Errorf("move the JetStream store of %s to the account %s: %w", old, account, err)
	}
	return nil
}

// ensurePrivateDir creates dataDir with mode 0700 (the streams' store, the
// NATS keys and the dashboard's keys live there). An existing directory
// that group or others may enter is logged as a warning, not changed: the
// files sessionmon writes in it are private on their own, but the event
// store is only as private as its directory.
func ensurePrivateDir(dataDir string, logger *slog.Logger) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data-dir (%s): %w", config.EnvName("data-dir"), err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("data-dir (%s): %w", config.EnvName("data-dir"), err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("data directory is open to other users: the event store is only as private as its directory; run chmod 700 on it",
			slog.String("data_dir", dataDir), slog.String("mode", fi.Mode().Perm().String()))
	}
	return nil
}

// serverLogger sends nats-server's log lines to slog: the server's text is
// the message, at the server's level (its fatal errors at error level:
// sessionmon decides whether to stop), and the logger carries
// component=nats-server. Trace lines are dropped.
type serverLogger struct{ l *slog.Logger }

func newServerLogger(logger *slog.Logger) *serverLogger {
	return &serverLogger{logger.With(slog.String("component", "nats-server"))}
}

func (s *serverLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.Log(ctx, level, fmt.Sprintf(format, v...))
}

func (s *serverLogger) Noticef(format string, v ...any) { s.log(slog.LevelInfo, format, v) }
func (s *serverLogger) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s *serverLogger) Fatalf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s *serverLogger) Errorf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s *serverLogger) Debugf(format string, v ...any)  { s.log(slog.LevelDebug, format, v) }
func (s *serverLogger) Tracef(format string, v ...any)  {}
