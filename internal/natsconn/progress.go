package natsconn

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KeepInProgress tells JetStream every period, until stop is called, that
// msgs are still being worked on, so that a long write or wait does not make
// them redeliver to another worker meanwhile. stop returns once the
// goroutine it started has ended.
func KeepInProgress(every time.Duration, msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
