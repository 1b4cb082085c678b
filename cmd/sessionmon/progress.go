package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/progress"
)

// detectProgressEvery is how often offline detect reports how far it is.
const detectProgressEvery = time.Second

// countingReader counts the bytes read through it; safe to read the count
// while another goroutine reads.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// inputSize is the size of in when it is a regular file, else 0.
func inputSize(in io.Reader) int64 {
	f, ok := in.(*os.File)
	if !ok {
		return 0
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

// reportDetectProgress reports to pr, every interval until the returned
// stop is called, the events run through the detectors so far (c), the
// share of the input read (read of size bytes, when size > 0), the events
// per second since the last report and the alerts so far.
func reportDetectProgress(pr progress.Reporter, c *detect.OfflineCounters, read *atomic.Int64, size int64, every time.Duration) (stop func()) {
	start := time.Now()
	last, lastAt := int64(0), start
	return progress.Every(every, func() {
		now := time.Now()
		events := c.Events.Load()
		rate := float64(events-last) / now.Sub(lastAt).Seconds()
		last, lastAt = events, now
		note := ""
		if size > 0 {
			note = fmt.Sprintf("%d%% of the input, ", min(100, read.Load()*100/size))
		}
		note += fmt.Sprintf("%.0f events/s, %d alerts, %s", rate, c.Alerts.Load(), progress.Round(now.Sub(start)))
		pr.Report(progress.Event{Kind: progress.Advanced, Done: events, Unit: "events", Note: note})
	})
}
