// Package natstest starts a real, embedded nats-server with JetStream for
// tests. Each call gets its own server on a random port and its own store
// directory, shut down by t.Cleanup.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	natsservertest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RunServer starts an embedded JetStream server on a random loopback port.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	opts := natsservertest.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	s := natsservertest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects to s and returns the connection and a JetStream context;
// the connection is closed by t.Cleanup.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	js := ConnectURL(t, s.ClientURL())
	return js.Conn(), js
}

// ConnectURL connects to the server at url, e.g. one a test started through
// sessionmon's own code, with opts (e.g. nats.UserCredentials for
// sessionmon's embedded server), and returns a JetStream context.
func ConnectURL(t testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}
