package natsconn

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/progress"
)

// KeepInProgress tells JetStream every period, until stop is called, that
// msgs are still being worked on, so that a long write or wait does not make
// them redeliver to another worker meanwhile. stop returns once the
// goroutine it started has ended.
func KeepInProgress(every time.Duration, msgs ...jetstream.Msg) (stop func()) {
	return progress.Every(every, func() {
		for _, m := range msgs {
			_ = m.InProgress()
		}
	})
}
