// Package logging builds sessionmon's one *slog.Logger.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing text or JSON ("json") records at level to w.
// The level can be changed at run time through the returned LevelVar.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), lv
}

// OrDiscard returns l, or a logger that drops everything when l is nil.
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
