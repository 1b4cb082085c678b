package natsconn

import (
	"time"

	"github.com/nats-io/nats.go"
)

// drainPoll is how often Drain looks whether the connection has closed.
const drainPoll = 10 * time.Millisecond

// Drain drains nc (its subscriptions finish what they hold, then
// publishes are flushed) and waits up to timeout for it to close; a
// connection that cannot drain is closed at once.
func Drain(nc *nats.Conn, timeout time.Duration) {
	if err := nc.Drain(); err != nil {
		nc.Close()
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
}
