package natsconn

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long the embedded server may take to accept
// connections (JetStream recovers its store first).
const readyTimeout = 60 * time.Second

// StartEmbedded starts a nats-server with JetStream in this process,
// storing streams under dataDir/jetstream and accepting clients on listen
// (host:port; port 0 picks a free one). The caller shuts it down with Shutdown and WaitForShutdown.
func StartEmbedded(listen, dataDir string, logger *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "sessionmon-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "jetstream"),
		NoSigs:     true,
		MaxPayload: 1 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s.SetLoggerV2(&serverLogger{logger.With("component", "nats-server")}, false, false, false)
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s: not ready after %s (is the port in use?)", listen, readyTimeout)
	}
	return s, nil
}

// serverLogger sends nats-server's log lines to slog.
type serverLogger struct{ l *slog.Logger }

func (s *serverLogger) Noticef(format string, v ...any) {
	s.l.Info("nats-server", slog.String("message", fmt.Sprintf(format, v...)))
}
func (s *serverLogger) Warnf(format string, v ...any) {
	s.l.Warn("nats-server", slog.String("message", fmt.Sprintf(format, v...)))
}
func (s *serverLogger) Fatalf(format string, v ...any) {
	s.l.Error("nats-server", slog.String("message", fmt.Sprintf(format, v...)))
}
func (s *serverLogger) Errorf(format string, v ...any) {
	s.l.Error("nats-server", slog.String("message", fmt.Sprintf(format, v...)))
}
func (s *serverLogger) Debugf(format string, v ...any) {
	s.l.Debug("nats-server", slog.String("message", fmt.Sprintf(format, v...)))
}
func (s *serverLogger) Tracef(format string, v ...any) {}
