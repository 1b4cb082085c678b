package drill

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
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

// FreePort returns a loopback TCP port that was free a moment ago. It is
// drawn from 27000-31999, below the kernel's range for outgoing
// connections (32768 and up on Linux), so that no connection of this or
// another test takes it as its local port before the process that is to
// listen on it has started.
func FreePort() (int, error) {
	for range 200 {
		port := 27000 + rand.IntN(5000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, errors.New("free port: none free in 27000-31999")
}
