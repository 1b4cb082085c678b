package config

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var errTest = errors.New("invalid test config")

type testHook struct {
	Name      string        `yaml:"name"`
	Timeout   time.Duration `yaml:"timeout"`
	Detectors []string      `yaml:"detectors"`
	Limit     *int          `yaml:"limit"`
}

type testSection struct {
	Every  time.Duration            `yaml:"every"`
	Hooks  []testHook               `yaml:"hooks"`
	Apps   map[string]time.Duration `yaml:"apps"`
	Nested struct {
		On bool `yaml:"on"`
	} `yaml:"nested"`
}

func parseTestSection(n *yaml.Node) (testSection, error) {
	s := testSection{Every: time.Hour, Apps: map[string]time.Duration{"shop": time.Minute}}
	if err := DecodeNode(n, &s, ""); err != nil {
		return testSection{}, Mark(err, errTest)
	}
	var errs []error
	for i, h := range s.Hooks {
		if h.Name == "" {
			errs = append(errs, Problem(errTest, "hooks["+string(rune('0'+i))+"].name", "must not be empty"))
		}
	}
	return s, errors.Join(errs...)
}

func TestDecodeNodeDurationsEverywhere(t *testing.T) {
	t.Parallel()
	n, err := ParseNode([]byte("every: 2w\nhooks:\n  - {name: a, timeout: 1d, limit: 3}\napps: {kiosk: 30d}\nnested: {on: true}\n"))
	require.NoError(t, err)
	s, err := parseTestSection(n)
	require.NoError(t, err)
	require.Equal(t, 14*24*time.Hour, s.Every)
	require.Equal(t, 24*time.Hour, s.Hooks[0].Timeout)
	require.Equal(t, 3, *s.Hooks[0].Limit)
	require.Equal(t, map[string]time.Duration{"shop": time.Minute, "kiosk": 30 * 24 * time.Hour}, s.Apps, "a map gains the entries given")
	require.True(t, s.Nested.On)

	var withMerge testHook
	require.NoError(t, DecodeNode(mustNode(t, "x: &b {name: a, timeout: 2w}\ny: {<<: *b, limit: 1}\n").Content[3], &withMerge, ""))
	require.Equal(t, "a", withMerge.Name, "merge keys")
	require.Equal(t, 14*24*time.Hour, withMerge.Timeout)

	s, err = parseTestSection(nil)
	require.NoError(t, err)
	require.Equal(t, time.Hour, s.Every, "no section: the defaults")
}

// TestSectionErrorsNameTheFileLine: a section's problems, from decoding or
// from its package's checks, name the line in the file (not in a
// re-encoded copy of the section) and the full key path.
func TestSectionErrorsNameTheFileLine(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `# comment
log:
  level: warn

detect:
  every: 1h
  hooks:
    - name: ok
      timeout: soon
    - name: ""
      detecotrs: [x]
  nested: {on: maybe}
`)
	c, err := load(t, nil, []string{"--config", file}, nil)
	require.NoError(t, err)
	_, err = ParseSection(c, DetectSection, parseTestSection)
	require.ErrorIs(t, err, errTest)
	var got []string
	for _, p := range Problems(err) {
		got = append(got, p.Error())
	}
	require.Equal(t, []string{
		file + `:9: detect.hooks[0].timeout: must be a duration like 90s, 15m, 12h, 30d or 2w (got "soon")`,
		file + ":11: detect.hooks[1].detecotrs: unknown key (known: detectors, limit, name, timeout)",
		file + `:12: detect.nested.on: must be true or false (got "maybe")`,
	}, got)

	// A check after decoding finds its line by its path.
	c, err = load(t, nil, []string{"--config", writeFile(t, "log:\n  level: warn\ndetect:\n  hooks:\n    - {timeout: 1m}\n")}, nil)
	require.NoError(t, err)
	_, err = ParseSection(c, DetectSection, parseTestSection)
	require.ErrorContains(t, err, "sessionmon.yaml:5: detect.hooks[0].name: must not be empty")
}

func TestOptionErrorsInFile(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "log:\n  level: warn\nstream:\n  max_age: 1d\n  duplicates: 2d\n")
	l := &Loader{Getenv: func(string) (string, bool) { return "", false }}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.Register(fs)
	require.NoError(t, fs.Parse([]string{"--config", file}))
	c, err := l.Check(fs)
	require.NotNil(t, c, "Check returns what it read")
	problems := c.InFile(err)
	require.Len(t, problems, 1)
	require.Equal(t, file+":5: stream.duplicates: stream-duplicates (SESSIONMON_STREAM_DUPLICATES): must not be longer than stream-max-age", problems[0].Error())
}

func TestLineOf(t *testing.T) {
	t.Parallel()
	n, err := ParseNode([]byte("a:\n  b:\n    - x\n    - {c: 1,\n       d: 2}\n"))
	require.NoError(t, err)
	for path, want := range map[string]int{"": 1, "a": 1, "a.b": 2, "a.b[1]": 4, "a.b[1].d": 5, "a.b[7]": 2, "a.zz": 1} {
		require.Equal(t, want, LineOf(n, path), path)
	}
	require.Equal(t, []string{"w", "[0]", "d", "[1]"}, splitPath("w[0].d[1]"))
	require.False(t, strings.Contains((&FieldError{Path: "x", Msg: "m"}).Error(), "line"))
}

func mustNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	n, err := ParseNode([]byte(text))
	require.NoError(t, err)
	return n
}
