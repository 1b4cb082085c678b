package detect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/geo"
	"github.com/sessionmon/sessionmon/internal/testutil/geotest"
	"github.com/sessionmon/sessionmon/schemas"
)

// offLine returns the NDJSON line of e.
func offLine(t testing.TB, e *schemas.Event) string {
	t.Helper()
	b, err := schemas.Encode(e)
	require.NoError(t, err)
	return string(b) + "\n"
}

// offFailures returns n login.failed lines for one subject, 10 s apart.
func offFailures(t testing.TB, n int) []string {
	t.Helper()
	var lines []string
	for i := range n {
		lines = append(lines, offLine(t, engEv("f"+string(rune('a'+i)), time.Duration(i)*10*time.Second, engType(schemas.LoginFailed), func(e *schemas.Event) {
			e.Session = ""
		})))
	}
	return lines
}

func TestRunOfflineWritesOneAlertALine(t *testing.T) {
	t.Parallel()
	in := strings.Join(offFailures(t, 10), "")
	var out bytes.Buffer
	stats, err := RunOffline(t.Context(), strings.NewReader(in), &out, DefaultConfig(), engClock)
	require.NoError(t, err)
	require.Equal(t, int64(10), stats.Lines)
	require.Equal(t, int64(10), stats.Events)
	require.Equal(t, int64(1), stats.Engine.Alerts)
	require.Positive(t, stats.EventsPerSecond)
	require.Positive(t, stats.Duration)

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 1)
	var a map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a))
	require.Equal(t, "brute_force", a["detector"])
	require.Equal(t, "medium", a["severity"])
	require.Equal(t, "2026-12-01T00:00:00.000Z", a["detected_at"])
	require.Equal(t, "2026-11-20T09:01:30.000Z", a["time"])
	require.Len(t, a["evidence"], 10)
	require.Regexp(t, `^[0-9a-f]{32}$`, a["id"])
}

func TestRunOfflineReportsInvalidLines(t *testing.T) {
	t.Parallel()
	good := offFailures(t, 3)
	in := good[0] +
		"\n" + // blank: skipped, not invalid
		`{"id":"x"}` + "\n" +
		good[1] +
		"not json\n" +
		strings.Repeat("x", maxLineBytes+10) + "\n" +
		strings.Replace(good[2], "2026-11-20T09:00:20.000Z", "2026-12-03T00:00:00.000Z", 1) // more than 24h ahead of the clock
	var out bytes.Buffer
	stats, err := RunOffline(t.Context(), strings.NewReader(in), &out, DefaultConfig(), engClock)
	require.NoError(t, err)
	require.Equal(t, int64(7), stats.Lines)
	require.Equal(t, int64(2), stats.Events)
	require.Equal(t, int64(4), stats.Invalid)
	var lines []int64
	for _, il := range stats.InvalidLines {
		lines = append(lines, il.Line)
		require.NotEmpty(t, il.Error)
	}
	require.Equal(t, []int64{3, 5, 6, 7}, lines)
	require.Contains(t, stats.InvalidLines[0].Error, "schema_version")
	require.Contains(t, stats.InvalidLines[2].Error, "longer than")
	require.Contains(t, stats.InvalidLines[3].Error, "future")
	require.Empty(t, out.String())
}

func TestRunOfflineCapsInvalidLineList(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("{}\n", MaxReportedInvalid+50)
	stats, err := RunOffline(t.Context(), strings.NewReader(in), io.Discard, DefaultConfig(), engClock)
	require.NoError(t, err)
	require.Equal(t, int64(MaxReportedInvalid+50), stats.Invalid)
	require.Len(t, stats.InvalidLines, MaxReportedInvalid)
}

func TestRunOfflineWarnsAboutExpiredNetworks(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte("networks:\n  - {asn: 64500, kind: vpn, expires: 2026-06-01}\n"))
	require.NoError(t, err)
	stats, err := RunOffline(t.Context(), strings.NewReader(""), io.Discard, cfg, engClock)
	require.NoError(t, err)
	require.Len(t, stats.Warnings, 1)
	require.Contains(t, stats.Warnings[0], "networks[0] (AS64500 vpn): expired on 2026-06-01")
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRunOfflineErrors(t *testing.T) {
	t.Parallel()
	in := strings.Join(offFailures(t, 10), "")
	t.Run("offline/write error is returned", func(t *testing.T) {
		t.Parallel()
		_, err := RunOffline(t.Context(), strings.NewReader(in), failingWriter{}, DefaultConfig(), engClock)
		require.ErrorContains(t, err, "write alerts: disk full")
	})
	t.Run("offline/read error is returned", func(t *testing.T) {
		t.Parallel()
		r := io.MultiReader(strings.NewReader(in), iotestErrReader{})
		_, err := RunOffline(t.Context(), r, io.Discard, DefaultConfig(), engClock)
		require.ErrorContains(t, err, "read events (line 11): boom")
	})
	t.Run("offline/cancelled context stops the run", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := RunOffline(ctx, strings.NewReader(strings.Repeat(in, 200)), io.Discard, DefaultConfig(), engClock)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("offline/invalid config is refused", func(t *testing.T) {
		t.Parallel()
		cfg := DefaultConfig()
		cfg.MaxPending = 0
		_, err := RunOffline(t.Context(), strings.NewReader(in), io.Discard, cfg, engClock)
		require.ErrorContains(t, err, "max_pending")
	})
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

// BenchmarkOffline runs RunOffline, decoding included, over the NDJSON of
// 10000 subjects' mixed traffic (about 280000 events) and reports events
// per second. Run it with -cpu 1 for the one-core figure. app-location: the
// events carry their location; geoip: they carry only the ip_prefix, as the
// SDK sends them, and the engine enriches them from GeoIP databases holding
// the removed values (WithGeo), the cost of the enrichment.
func BenchmarkOffline(b *testing.B) {
	events := benchEvents(10_000, 30*time.Minute, false)
	var in bytes.Buffer
	w := bufio.NewWriter(&in)
	for _, e := range events {
		_, _ = w.WriteString(offLine(b, e))
	}
	require.NoError(b, w.Flush())
	located := in.Bytes()
	events = nil
	stripped, nets, _ := geotest.StripLocation(b, located)
	paths := geotest.WriteDatabases(b, nets)
	r, err := geo.Open(geo.Config{CityPaths: []string{paths.City}, ASNPaths: []string{paths.ASN}})
	require.NoError(b, err)
	b.Cleanup(func() { r.Close() })
	for _, bc := range []struct {
		name string
		data []byte
		opts []Option
	}{
		{name: "app-location", data: located},
		{name: "geoip", data: stripped, opts: []Option{WithGeo(r)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			var n int64
			cpu := cpuTime()
			for b.Loop() {
				stats, err := RunOffline(b.Context(), bytes.NewReader(bc.data), io.Discard, DefaultConfig(), time.Now, bc.opts...)
				require.NoError(b, err)
				require.Zero(b, stats.Invalid)
				n += stats.Events
			}
			reportThroughput(b, n, cpuTime()-cpu)
		})
	}
}
