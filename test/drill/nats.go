package drill

import (
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds a NATS server's start.
const natsReadyTimeout = 10 * time.Second

// NATS is a JetStream server on a fixed loopback port with a file store,
// which a scenario can restart: clients reconnect to the same URL and the
// stream keeps what it stored.
type NATS struct {
	opts server.Options
	srv  *server.Server
}

// StartNATS starts a JetStream server whose store is in dir.
func StartNATS(dir string) (*NATS, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	n := &NATS{opts: server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
		// Room for a full stream scenario's burst of publishes.
		MaxPayload: 1 << 20,
	}}
	if err := n.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// URL is the client URL, the same across restarts.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// Start starts the server (again).
func (n *NATS) Start() error {
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("nats server on port %d: not ready after %s", n.opts.Port, natsReadyTimeout)
	}
	n.srv = srv
	return nil
}

// Stop shuts the server down; its store stays for the next Start.
func (n *NATS) Stop() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
