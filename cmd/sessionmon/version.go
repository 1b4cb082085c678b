package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// revision, when set at build time (-ldflags "-X main.revision=abc123"),
// is the commit reported instead of the VCS information Go embeds, which
// builds without the .git directory (container images) do not have.
var revision = ""

func versionCommand() *command {
	return &command{
		name:    "version",
		short:   "print the version",
		usage:   "sessionmon version",
		summary: "Print the version, the commit it was built from and the Go version.",
		run: func(_ context.Context, e *env) error {
			fmt.Fprintf(e.stdout, "sessionmon %s (commit %s, %s, %s/%s)\n", version, commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// commit returns the VCS revision the binary was built from.
func commit() string {
	if revision != "" {
		return revision
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
