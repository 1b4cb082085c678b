// Package progress reports how long-running work advances: steps that
// start and finish, heartbeats while a step waits (for a ClickHouse
// mutation), and running counts. The work calls a Reporter; a Printer
// renders the events for a person, on a terminal as one line updated in
// place and elsewhere (logs, CI) as one line per event.
//
// Events never carry personal data: a step names a table, a partition or a
// stream, and a subject only as "the subject".
package progress

import (
	"sync"
	"time"
)

// HeartbeatInterval is how often a step that waits says it still does.
const HeartbeatInterval = 10 * time.Second

// Kind says what an Event tells.
type Kind uint8

// The kinds of Event.
const (
	// Started: a step begins; Total is what it covers (0: not known).
	Started Kind = iota + 1
	// Waiting: a step still runs (a heartbeat); Elapsed is since it started.
	Waiting
	// Advanced: a count moved (Done of Total) without ending a step.
	Advanced
	// Finished: a step ended; Done is what it did, Err why it failed.
	Finished
	// Skipped: a step was left out; Note says why.
	Skipped
)

// Event is one report of progress.
type Event struct {
	Kind Kind
	// Step names what is being done, without personal data:
	// "events: drop_partition 20250101".
	Step string
	// Done and Total count Unit ("rows", "messages", "lines"); Total 0 is
	// not known.
	Done, Total int64
	Unit        string
	// Elapsed is how long the step has run (Waiting, Finished).
	Elapsed time.Duration
	// Note adds to the line: a rate, why a step was skipped, what a
	// waiting step waits for.
	Note string
	// Err is why a Finished step failed.
	Err error
}

// Reporter receives progress events. Report is called from the goroutine
// doing the work and, for heartbeats, from another one: it must be safe for
// concurrent use, return quickly and never fail the work.
type Reporter interface {
	Report(Event)
}

// Func adapts a function to a Reporter.
type Func func(Event)

// Report calls f(e).
func (f Func) Report(e Event) { f(e) }

// OrNop returns r, or a Reporter that discards everything when r is nil.
func OrNop(r Reporter) Reporter {
	if r == nil {
		return Func(func(Event) {})
	}
	return r
}

// Heartbeat reports a Waiting event for step, with note, every interval
// until the returned stop is called (see Every). started is when the step
// began.
func Heartbeat(r Reporter, step, note string, started time.Time, every time.Duration) (stop func()) {
	return Every(every, func() {
		r.Report(Event{Kind: Waiting, Step: step, Elapsed: time.Since(started), Note: note})
	})
}

// Every calls fn every interval from its own goroutine until the returned
// stop is called. stop waits for that goroutine to end, so fn is never
// called after it returns; it may be called more than once.
func Every(every time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// Track runs fn as step: it reports Started with total of unit, a Waiting
// heartbeat with note every interval while fn runs, and Finished with the
// count fn returns, the time it took and its error, which it returns.
func Track(r Reporter, step, unit string, total int64, note string, every time.Duration, fn func() (int64, error)) (int64, error) {
	r = OrNop(r)
	start := time.Now()
	r.Report(Event{Kind: Started, Step: step, Total: total, Unit: unit})
	stop := Heartbeat(r, step, note, start, every)
	n, err := fn()
	stop()
	r.Report(Event{Kind: Finished, Step: step, Done: n, Total: total, Unit: unit, Elapsed: time.Since(start), Err: err})
	return n, err
}
