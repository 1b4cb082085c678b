package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// clearLine moves to the start of the line and erases it (a carriage
// return and the ANSI "erase in line" sequence).
const clearLine = "\r\x1b[K"

// Printer renders events as text. On a terminal it keeps one status line
// updated in place, and writes a line of its own only for a failed step and
// the final summary (Done); elsewhere it writes one line per event, with no
// carriage returns, for logs and CI. It is safe for concurrent use.
type Printer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	// terminal: w is a terminal, width its columns (0: unknown).
	terminal bool
	width    int
	// shown: a status line is on screen and not ended.
	shown bool
}

var _ Reporter = (*Printer)(nil)

// NewPrinter returns a Printer writing to w, each line starting with
// prefix ("retention run"). terminal selects the single updating line;
// width, when positive, cuts that line so that it never wraps (to width-1
// characters).
func NewPrinter(w io.Writer, prefix string, terminal bool, width int) *Printer {
	return &Printer{w: w, prefix: prefix, terminal: terminal, width: width}
}

// ForWriter returns a Printer on w that updates one line in place when w
// is a terminal, and writes a line per event otherwise.
func ForWriter(w io.Writer, prefix string) *Printer {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return NewPrinter(w, prefix, false, 0)
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 0
	}
	return NewPrinter(w, prefix, true, width)
}

// Report writes e.
func (p *Printer) Report(e Event) {
	line := p.prefix + ": " + Format(e)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		return
	}
	if e.Kind == Finished && e.Err != nil {
		// A failure stays on screen.
		fmt.Fprint(p.w, clearLine+line+"\n")
		p.shown = false
		return
	}
	if p.width > 1 && utf8.RuneCountInString(line) >= p.width {
		line = cut(line, p.width-1)
	}
	fmt.Fprint(p.w, clearLine+line)
	p.shown = true
}

// Done erases the status line, if any, and writes summary as a line of its
// own (nothing when summary is empty).
func (p *Printer) Done(summary string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, clearLine)
		p.shown = false
	}
	if summary != "" {
		fmt.Fprintln(p.w, summary)
	}
}

// Format renders e as one line without the prefix.
func Format(e Event) string {
	var b strings.Builder
	if e.Step != "" {
		b.WriteString(e.Step + ": ")
	}
	switch e.Kind {
	case Started:
		b.WriteString("started")
		if e.Total > 0 {
			fmt.Fprintf(&b, ", %d %s", e.Total, e.Unit)
		}
	case Waiting:
		if e.Note != "" {
			b.WriteString(e.Note)
		} else {
			b.WriteString("still running")
		}
		fmt.Fprintf(&b, ", %s", Round(e.Elapsed))
		return b.String()
	case Advanced:
		fmt.Fprintf(&b, "%d %s", e.Done, e.Unit)
		if e.Total > 0 {
			fmt.Fprintf(&b, " of %d", e.Total)
		}
	case Finished:
		if e.Err != nil {
			fmt.Fprintf(&b, "failed after %s: %s", Round(e.Elapsed), e.Err)
			return b.String()
		}
		b.WriteString("done")
		if e.Unit != "" {
			fmt.Fprintf(&b, ", %d %s", e.Done, e.Unit)
		}
		if e.Elapsed > 0 {
			fmt.Fprintf(&b, " in %s", Round(e.Elapsed))
		}
	case Skipped:
		b.WriteString("skipped")
	}
	if e.Note != "" {
		b.WriteString(", " + e.Note)
	}
	return b.String()
}

// Round shortens d for a person: microseconds under a millisecond,
// milliseconds under a second, tenths of a second under a minute, whole
// seconds above.
func Round(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Second)
	}
}

// cut shortens s to n characters, the last one "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}
