package progress_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ev   progress.Event
		want string
	}{
		{name: "started/with total", ev: progress.Event{Kind: progress.Started, Step: "events", Total: 12, Unit: "rows"},
			want: "events: started, 12 rows"},
		{name: "started/unknown total", ev: progress.Event{Kind: progress.Started, Step: "events", Unit: "rows"},
			want: "events: started"},
		{name: "waiting/note", ev: progress.Event{Kind: progress.Waiting, Step: "events", Note: "waiting for the ClickHouse mutation", Elapsed: 20*time.Second + 31*time.Millisecond},
			want: "events: waiting for the ClickHouse mutation, 20s"},
		{name: "waiting/no note", ev: progress.Event{Kind: progress.Waiting, Step: "x", Elapsed: 90*time.Minute + 400*time.Millisecond},
			want: "x: still running, 1h30m0s"},
		{name: "advanced/no step", ev: progress.Event{Kind: progress.Advanced, Done: 5000, Unit: "lines read", Note: "300 lines/s"},
			want: "5000 lines read, 300 lines/s"},
		{name: "advanced/of total", ev: progress.Event{Kind: progress.Advanced, Step: "s", Done: 5, Total: 10, Unit: "rows"},
			want: "s: 5 rows of 10"},
		{name: "finished/ok", ev: progress.Event{Kind: progress.Finished, Step: "events", Done: 3, Unit: "rows", Elapsed: 1234567 * time.Microsecond},
			want: "events: done, 3 rows in 1.2s"},
		{name: "finished/no unit", ev: progress.Event{Kind: progress.Finished, Step: "events", Elapsed: 1500 * time.Microsecond},
			want: "events: done in 2ms"},
		{name: "finished/failed", ev: progress.Event{Kind: progress.Finished, Step: "events", Done: 3, Unit: "rows", Elapsed: 2 * time.Second, Err: errors.New("boom")},
			want: "events: failed after 2s: boom"},
		{name: "skipped", ev: progress.Event{Kind: progress.Skipped, Step: "audit_log", Note: "table not created yet"},
			want: "audit_log: skipped, table not created yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, progress.Format(tc.ev))
		})
	}
}

func TestPrinterLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := progress.NewPrinter(&buf, "retention run", false, 0)
	p.Report(progress.Event{Kind: progress.Started, Step: "events", Total: 2, Unit: "rows"})
	p.Report(progress.Event{Kind: progress.Finished, Step: "events", Done: 2, Unit: "rows", Elapsed: time.Second})
	p.Done("retention run: 1 steps")
	require.Equal(t, "retention run: events: started, 2 rows\nretention run: events: done, 2 rows in 1s\nretention run: 1 steps\n", buf.String())
	require.NotContains(t, buf.String(), "\r", "no carriage returns in logs")
}

func TestPrinterTerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := progress.NewPrinter(&buf, "erase", true, 40)
	p.Report(progress.Event{Kind: progress.Started, Step: "events", Total: 2, Unit: "rows"})
	p.Report(progress.Event{Kind: progress.Waiting, Step: "events", Note: "waiting for the ClickHouse mutation", Elapsed: 10 * time.Second})
	p.Report(progress.Event{Kind: progress.Finished, Step: "alerts", Elapsed: time.Second, Err: errors.New("timeout")})
	p.Report(progress.Event{Kind: progress.Finished, Step: "events", Done: 2, Unit: "rows", Elapsed: time.Second})
	p.Done("erase: done")
	require.Equal(t,
		"\r\x1b[Kerase: events: started, 2 rows"+
			"\r\x1b[Kerase: events: waiting for the ClickHo…"+ // cut to 39 columns
			"\r\x1b[Kerase: alerts: failed after 1s: timeout\n"+ // a failure stays
			"\r\x1b[Kerase: events: done, 2 rows in 1s"+
			"\r\x1b[Kerase: done\n", buf.String())

	// Nothing shown: Done writes the summary alone; an empty one, nothing.
	buf.Reset()
	p.Done("")
	require.Empty(t, buf.String())
}

func TestForWriterNotTerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := progress.ForWriter(&buf, "export")
	p.Report(progress.Event{Kind: progress.Started, Step: "read from ClickHouse"})
	require.Equal(t, "export: read from ClickHouse: started\n", buf.String())
}

// recorder keeps the events it hears.
type recorder struct {
	mu  sync.Mutex
	evs []progress.Event
}

func (r *recorder) Report(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) events() []progress.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]progress.Event(nil), r.evs...)
}

func TestTrackHeartbeats(t *testing.T) {
	t.Parallel()
	var r recorder
	release := make(chan struct{})
	var got int64
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		got, err = progress.Track(&r, "events", "rows", 7, "waiting for the ClickHouse mutation", 10*time.Millisecond, func() (int64, error) {
			<-release
			return 7, nil
		})
	}()
	// Heartbeats come while the step runs, however long it takes.
	poll.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := countKind(r.events(), progress.Waiting); n < 3 {
			return fmt.Errorf("%d heartbeats", n)
		}
		return nil
	})
	close(release)
	<-done
	require.NoError(t, err)
	require.Equal(t, int64(7), got)
	evs := r.events()
	require.Equal(t, progress.Started, evs[0].Kind)
	require.Equal(t, int64(7), evs[0].Total)
	last := evs[len(evs)-1]
	require.Equal(t, progress.Finished, last.Kind, "nothing follows Finished: the heartbeat stopped")
	require.Equal(t, int64(7), last.Done)
	require.Positive(t, last.Elapsed)
	for _, e := range evs[1 : len(evs)-1] {
		require.Equal(t, progress.Waiting, e.Kind)
		require.Equal(t, "waiting for the ClickHouse mutation", e.Note)
		require.Positive(t, e.Elapsed)
	}
}

func TestTrackFailureAndNilReporter(t *testing.T) {
	t.Parallel()
	var r recorder
	boom := errors.New("boom")
	_, err := progress.Track(&r, "alerts", "rows", 1, "", time.Hour, func() (int64, error) { return 0, boom })
	require.ErrorIs(t, err, boom)
	evs := r.events()
	require.Len(t, evs, 2)
	require.ErrorIs(t, evs[1].Err, boom)

	n, err := progress.Track(nil, "alerts", "rows", 1, "", time.Hour, func() (int64, error) { return 1, nil })
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func countKind(evs []progress.Event, k progress.Kind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func TestCutKeepsUTF8(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := progress.NewPrinter(&buf, "x", true, 12)
	p.Report(progress.Event{Kind: progress.Started, Step: "äöüäöüäöü"})
	line := strings.TrimPrefix(buf.String(), "\r\x1b[K")
	require.True(t, strings.HasSuffix(line, "…"))
	require.Equal(t, "x: äöüäöüä…", line, "11 characters")
}
