package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/internal/simulate"
)

func detectCommand() *command {
	return &command{
		name:  "detect",
		short: "run the detectors live, or offline over a file (--input)",
		usage: "sessionmon detect [--input EVENTS.ndjson [--output ALERTS.ndjson] [--labels LABELS.json]] [options]",
		summary: `Without --input: run the detectors alone, live, on the SESSIONMON_EVENTS
stream (as 'sessionmon serve' does), publishing alerts to SESSIONMON_ALERTS
(which 'sessionmon ingest' writes to ClickHouse), with /metrics, /healthz
and /readyz on --metrics-addr. It saves
its state to the SESSIONMON_DETECT_STATE object store every
--detect-snapshot-interval and at shutdown; at start it restores the last
snapshot and replays the events stored after it (without a usable snapshot,
the last 24 hours). By default one process
detects on every partition of the events stream; to spread the work, give
each process a set with --detect-partitions (e.g. 0-7 and 8-15 of
--event-partitions 16) and the source detectors to exactly one
(--detect-source-detectors true, the others false). A process holds a
lease (bucket SESSIONMON_DETECT_LEASES) on each partition it owns, and on
the source role: a second process started for an owned partition waits
(its /readyz says for what, and who holds it) and takes over once the
holder stops or, if it dies, --detect-lease-ttl after its last renewal.

With --input: run the detectors over a file of schema v1 events, offline: no
NATS, no ClickHouse. Only the --input flag switches detect offline:
SESSIONMON_INPUT in the environment is ignored, and the config file has no
such key. Alerts are written one JSON object a line (to standard output
unless --output is given); invalid lines are reported with their line number
and skipped; every second the events and alerts so far, and at the end a summary
with the throughput, go to standard error. Use it to
test rules on history and in CI. With --labels (the labels.json of
'sessionmon simulate'), a detection-quality table follows the summary on
standard error: per detector the labelled attacks, those detected (an alert
of the detector on a victim, or for credential_stuffing on an attacking
network or ASN, from the attack's first event to a day after its last for
impossible_travel, brute_force and credential_stuffing, an hour for the
others), the recall, the subjects alerted
that no attack of the detector names (FP subjects, and their share of the
simulated users), the alerts that match no attack (FP alerts) and all
alerts.

Both modes enrich events from the GeoIP databases given with --geo-city-db,
--geo-asn-db and --geo-anonymous-db exactly as ingest does (location,
network, anonymous-network classes for events that carry only an
ip_prefix): give the same databases to every command, or impossible_travel
and session_hijack cannot judge what the SDK sends. Detector settings come from the detect:
section of the config file (--config). The run trades memory for speed (the
garbage collector runs at GOGC=800, the heap stays under 2 GiB); GOGC and
GOMEMLIMIT in the environment override that.`,
		options: join(sharedOptions, natsOptions, streamOptions, []string{"metrics-addr", "http-addr", "input", "output", "labels",
			"detect-partitions", "detect-source-detectors", "detect-snapshot-interval", "detect-lease-ttl"}, geoOptions, secretOptions),
		run: runDetect,
	}
}

// loadDetectConfig parses the detect: section of the config file.
func loadDetectConfig(cfg *config.Config, logger *slog.Logger) (detect.Config, error) {
	dc, err := parseDetect(cfg)
	if err != nil {
		return detect.Config{}, err
	}
	for _, w := range dc.Warnings(time.Now()) {
		logger.Warn("detect configuration", slog.String("warning", w))
	}
	return dc, nil
}

func runDetect(ctx context.Context, e *env) error {
	if e.cfg.Detect.Input == "" {
		return runDetectLive(ctx, e)
	}
	return runDetectOffline(ctx, e)
}

// runDetectLive runs the detection service alone.
func runDetectLive(ctx context.Context, e *env) error {
	cfg := *e.cfg
	cfg.NATS.URL = cfg.NATS.ClientURL()
	st, err := startNATS(ctx, &cfg, "sessionmon-detect", false, e.logger)
	if err != nil {
		return err
	}
	defer st.close()
	if err := ensureAlertStream(ctx, st.js, false); err != nil {
		return err
	}
	checks, reg := st.probes()
	resolver, err := openGeo(e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer resolver.Close()
	svc, err := newDetect(e.cfg, st.js, e.logger, reg, resolver)
	if err != nil {
		return err
	}
	checks.Add("detect", svc.Ready)
	if err := detect.ServeForget(st.nc, svc, e.logger); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := serveHTTP(gctx, g, metricsAddr(e.cfg, e.logger), checks, reg, e.logger); err != nil {
		return err
	}
	g.Go(func() error { return svc.Run(gctx) })
	return g.Wait()
}

func runDetectOffline(ctx context.Context, e *env) error {
	dc, err := loadDetectConfig(e.cfg, e.logger)
	if err != nil {
		return err
	}
	resolver, err := openGeo(e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer resolver.Close()
	tuneGCForBatch()
	var in io.Reader = os.Stdin
	if e.cfg.Detect.Input != "-" {
		f, err := os.Open(e.cfg.Detect.Input)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		in = f
	}
	var labels simulate.Labels
	if e.cfg.Detect.Labels != "" {
		if labels, err = readLabels(e.cfg.Detect.Labels); err != nil {
			return err
		}
	}
	out := e.stdout
	var file *os.File
	if e.cfg.Output != "" && e.cfg.Output != "-" {
		if file, err = os.Create(e.cfg.Output); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		out = file
	}
	// With labels, the alerts are also kept to score them at the end.
	var alerts bytes.Buffer
	if e.cfg.Detect.Labels != "" {
		out = io.MultiWriter(out, &alerts)
	}
	// Progress goes to stderr, stdout keeps the alerts alone.
	var (
		counts detect.OfflineCounters
		read   atomic.Int64
	)
	pr := progress.ForWriter(e.stderr, "detect")
	stopProgress := reportDetectProgress(pr, &counts, &read, inputSize(in), detectProgressEvery)
	w := bufio.NewWriterSize(out, 1<<16)
	st, runErr := detect.RunOffline(ctx, countingReader{r: in, n: &read}, w, dc, time.Now, detect.WithGeo(resolver),
		detect.WithOfflineCounters(&counts))
	if err := w.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write alerts: %w", err)
	}
	stopProgress()
	pr.Done("")
	if file != nil {
		if err := file.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("close output: %w", err)
		}
	}
	for _, l := range st.InvalidLines {
		fmt.Fprintf(e.stderr, "line %d: %s\n", l.Line, l.Error)
	}
	if st.Invalid > int64(len(st.InvalidLines)) {
		fmt.Fprintf(e.stderr, "... and %d more invalid lines\n", st.Invalid-int64(len(st.InvalidLines)))
	}
	fmt.Fprintf(e.stderr, "detect: %d events, %d invalid lines, %d alerts (%d duplicates suppressed, %d late events) in %s: %.0f events/s\n",
		st.Events, st.Invalid, st.Engine.Alerts, st.Engine.Duplicates, st.Engine.Late, st.Duration.Round(time.Millisecond), st.EventsPerSecond)
	if runErr == nil && e.cfg.Detect.Labels != "" {
		runErr = printQuality(e.stderr, alerts.Bytes(), labels)
	}
	return runErr
}

// batchMemoryLimit is the heap the offline mode may grow to before the
// garbage collector works harder.
const batchMemoryLimit = 2 << 30

// tuneGCForBatch trades memory for speed in a batch run: the collector runs
// when the heap grows to 9 times the live data (GOGC=800) rather than 2
// times, but never lets it pass batchMemoryLimit. A GOGC or GOMEMLIMIT set
// in the environment wins.
func tuneGCForBatch() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(batchMemoryLimit)
	}
}
