package config

import (
	"fmt"
	"strings"
)

// Warning is a setting of the config file that works but should be written
// another way: a deprecated key. The value applies.
type Warning struct {
	// File is the config file.
	File string
	// Line is the key's line in File.
	Line int
	// Key is the key path as written, e.g. stream.partitions.
	Key string
	// Use is the key to write instead, at the top level of the file, e.g.
	// event_partitions.
	Use string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: warning: %s is a deprecated key: write %s at the top level of the file instead", w.File, w.Line, w.Key, w.Use)
}

// optionByKey returns the option whose config file key is key, and whether
// key is its deprecated key (LegacyYAML).
func optionByKey(key string) (o Option, legacy, ok bool) {
	for _, o := range Options {
		switch key {
		case o.YAML():
			return o, false, true
		case o.LegacyYAML:
			return o, true, true
		}
	}
	return Option{}, false, false
}

// isDashboardOptionKey reports whether key, in the dashboard: section, is
// the deprecated key of an option (addr for dashboard-addr) rather than part
// of DashboardYAML; so is the key of such an option (dashboard_addr), which
// is misplaced there and reported as such.
func isDashboardOptionKey(key string) bool {
	for _, o := range Options {
		if strings.HasPrefix(o.LegacyYAML, DashboardSection+".") && (o.LegacyYAML == DashboardSection+"."+key || o.YAML() == key) {
			return true
		}
	}
	return false
}

// suggest names the option key closest to an unknown key, if one is close;
// a key close to a deprecated key gets the key that replaces it, and an
// option's key nested in a mapping (nats.nats_url) gets the key at the top
// level.
func suggest(key string) string {
	if i := strings.LastIndex(key, "."); i >= 0 {
		if o, legacy, ok := optionByKey(key[i+1:]); ok && !legacy {
			return fmt.Sprintf(" (did you mean %s, at the top level?)", o.YAML())
		}
	}
	best, bestD := "", 3
	for _, o := range Options {
		if o.FlagOnly {
			continue
		}
		for _, k := range []string{o.YAML(), o.LegacyYAML} {
			if k == "" {
				continue
			}
			if d := editDistance(key, k); d < bestD {
				best, bestD = o.YAML(), d
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// sectionNames are the top-level keys of the config file that are
// sections, not options; no option may have one as its key.
var sectionNames = []string{DetectSection, NotifySection, RetentionSection, DashboardSection}

// keyProblems returns what is wrong with the options' config file keys: a
// key that is a section's name, or two options with the same key. Options
// are checked by a test, so a new option can't shadow a section.
func keyProblems() []string {
	var out []string
	seen := map[string]string{}
	for _, o := range Options {
		for _, k := range []string{o.YAML(), o.LegacyYAML} {
			if k == "" {
				continue
			}
			if prev, ok := seen[k]; ok && prev != o.Name {
				out = append(out, fmt.Sprintf("%s and %s both have the key %s", prev, o.Name, k))
			}
			seen[k] = o.Name
		}
		for _, s := range sectionNames {
			if o.YAML() == s {
				out = append(out, fmt.Sprintf("%s: its key %s is the name of a section", o.Name, o.YAML()))
			}
			// Only the dashboard: section had option keys, and is split.
			if s != DashboardSection && strings.HasPrefix(o.LegacyYAML, s+".") {
				out = append(out, fmt.Sprintf("%s: its deprecated key %s is in the %s: section", o.Name, o.LegacyYAML, s))
			}
		}
	}
	return out
}
