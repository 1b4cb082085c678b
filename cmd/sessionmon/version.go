package main

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3". Unset,
// the version Go stamps in the binary is reported: the module's version
// with `go install github.com/sessionmon/sessionmon/cmd/sessionmon@v1.2.3`,
// the tag or a pseudo-version when built in a git checkout.
var version = ""

// revision, when set at build time (-ldflags "-X main.revision=abc123"),
// is the commit reported instead of the VCS information Go embeds, which
// builds without the .git directory (container images) do not have.
var revision = ""

func versionCommand() *command {
	return &command{
		name:    "version",
		short:   "print the version",
		usage:   "sessionmon version (or sessionmon --version)",
		summary: "Print the version, the commit it was built from, the Go version and the platform.",
		run: func(_ context.Context, e *env) error {
			v, c, goVersion := buildInfo()
			fmt.Fprintf(e.stdout, "sessionmon %s (commit %s, %s, %s/%s)\n", v, c, goVersion, runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// pseudoRevision matches the commit at the end of a pseudo-version
// (v0.0.0-20261207142428-abcdef123456).
var pseudoRevision = regexp.MustCompile(`[-.]\d{14}-([0-9a-f]{12})(\+incompatible)?(\+dirty)?$`)

// buildInfo returns what the binary was built from: the version ("dev" when
// unknown), the commit ("unknown" when unknown, "+dirty" when built from a
// modified tree) and the Go version.
func buildInfo() (version, commit, goVersion string) {
	return buildVersion(), buildCommit(), runtime.Version()
}

// buildVersion is the -ldflags version, else the main module's version.
func buildVersion() string {
	if version != "" && version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// buildCommit is the -ldflags revision, else the VCS revision Go embeds,
// else the commit of a pseudo-version.
func buildCommit() string {
	if revision != "" {
		return revision
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
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
	if rev == "" {
		return pseudoCommit(buildVersion())
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// pseudoCommit returns the commit of a pseudo-version, with "+dirty" when
// it has it, and "unknown" for other versions.
func pseudoCommit(v string) string {
	m := pseudoRevision.FindStringSubmatch(v)
	if m == nil {
		return "unknown"
	}
	if strings.HasSuffix(v, "+dirty") {
		return m[1] + "+dirty"
	}
	return m[1]
}
