// Package logging builds sessionmon's one *slog.Logger.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing text or JSON ("json") records at level to w.
// The level can be changed at run time through the returned LevelVar.
// Durations are written as text such as "1.5s" in both formats.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: ReplaceAttr}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), lv
}

// ReplaceAttr is the slog.HandlerOptions.ReplaceAttr of every handler
// sessionmon builds: it writes a duration as its String ("1.5s", "2m0s")
// rather than as a count of nanoseconds, which is how slog's JSON handler
// writes it.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// OrDiscard returns l, or a logger that drops everything when l is nil.
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
