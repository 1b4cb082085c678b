// Command vulnallow reads govulncheck's JSON output (-json) on standard
// input and fails when the code calls a vulnerable function that the
// allowlist does not explain. scripts/security.sh runs it.
//
// The allowlist has one finding per line: its id, then why it does not
// apply or what fixes it. Lines starting with # are comments. An entry no
// longer found is reported, so the list does not outlive its reasons.
//
//	go run ./internal/vulnallow -allow docs/security/govulncheck-allow.txt < govulncheck.json
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// message is one object of govulncheck's JSON stream; only findings
// matter here.
type message struct {
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

func main() {
	allowPath := flag.String("allow", "docs/security/govulncheck-allow.txt", "allowlist file")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *allowPath); err != nil {
		fmt.Fprintln(os.Stderr, "vulnallow:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, allowPath string) error {
	allow, err := readAllow(allowPath)
	if err != nil {
		return err
	}
	called := map[string]string{} // id -> module@version
	dec := json.NewDecoder(in)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("read govulncheck output: %w", err)
		}
		f := m.Finding
		// A finding whose trace starts at a function is one the code
		// calls; the others only sit in imported packages or modules.
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue
		}
		// The trace runs from the vulnerable function to our caller.
		vuln := f.Trace[0]
		called[f.OSV] = fmt.Sprintf("%s@%s (fixed in %s)", vuln.Module, vuln.Version, orNone(f.FixedVersion))
	}
	ids := make([]string, 0, len(called))
	for id := range called {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var unexplained []string
	for _, id := range ids {
		if why, ok := allow[id]; ok {
			fmt.Fprintf(out, "allowed  %s %s: %s\n", id, called[id], why)
			continue
		}
		fmt.Fprintf(out, "FOUND    %s %s: not in %s\n", id, called[id], allowPath)
		unexplained = append(unexplained, id)
	}
	for id := range allow {
		if _, ok := called[id]; !ok {
			fmt.Fprintf(out, "stale    %s: no longer found; remove it from %s\n", id, allowPath)
		}
	}
	if len(unexplained) > 0 {
		return fmt.Errorf("%d vulnerable call path(s) not explained: %s", len(unexplained), strings.Join(unexplained, ", "))
	}
	fmt.Fprintf(out, "govulncheck: %d finding(s) called, all explained\n", len(ids))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no release"
	}
	return s
}

// readAllow reads the allowlist: "ID reason..." per line.
func readAllow(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allowlist: %w", err)
	}
	defer f.Close()
	allow := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, why, _ := strings.Cut(line, " ")
		if why = strings.TrimSpace(why); why == "" {
			return nil, fmt.Errorf("allowlist %s:%d: %s needs a reason", path, n, id)
		}
		allow[id] = why
	}
	return allow, sc.Err()
}
