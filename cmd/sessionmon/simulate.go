package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sessionmon/sessionmon/internal/simulate"
	"github.com/sessionmon/sessionmon/schemas"
)

func simulateCommand() *command {
	return &command{
		name:  "simulate",
		short: "write simulated traffic with labelled attacks, to measure detection quality",
		usage: "sessionmon simulate --out DIR [--seed N] [--users N] [--days N]",
		summary: `Generate a realistic, labelled user base and write it to DIR: events.ndjson
(schema v1 events as the SDK sends them: a network prefix, an address hash,
a pseudonymous device and user agent; no location, no ASN), labels.json (the
attacks mixed in: per attack the detector that should report it, the app,
the victims, the attacker's networks and ASNs, and its first and last event
time) and geo/City.mmdb, geo/ASN.mmdb and geo/Anonymous-IP.mmdb (GeoIP
databases describing every network of the simulation, in reserved address
space and private-use ASNs).

Three apps (shop, bank, chat) and --users people over --days days: an office
behind one NAT whose staff mistype passwords, corporate-VPN users whose
shared egress geolocates to another continent, mobile users whose carrier
gateways geolocate to different cities, people on a laptop at home and a
phone on mobile data at once, travellers on real flights, clients retrying
a refresh after a network error, logouts and idle timeouts. Mixed in:
stolen passwords, cookies and tokens used from elsewhere, slow and burst
brute force, distributed and burst credential stuffing, and a few app
policy violations. The same --seed gives the same files.

Then measure the detectors on it:

  sessionmon detect --input DIR/events.ndjson --labels DIR/labels.json \
    --geo-city-db DIR/geo/City.mmdb --geo-asn-db DIR/geo/ASN.mmdb \
    --geo-anonymous-db DIR/geo/Anonymous-IP.mmdb --output alerts.ndjson`,
		options: []string{"log-format", "log-level", "out", "seed", "users", "days"},
		run:     runSimulate,
	}
}

func runSimulate(_ context.Context, e *env) error {
	c := e.cfg.Simulate
	if c.Out == "" {
		return usagef("--out (SESSIONMON_OUT) is required: the directory to write into")
	}
	ds, err := simulate.Generate(simulate.Config{Seed: c.Seed, Users: c.Users, Days: c.Days})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	paths, err := ds.WriteDir(c.Out)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	fmt.Fprintf(e.stderr, "simulate: %d users, %d days (seed %d): %d events, %d labelled attacks, %d networks, written to %s\n",
		c.Users, c.Days, c.Seed, len(ds.Events), len(ds.Labels.Attacks), len(ds.Networks), c.Out)
	fmt.Fprintf(e.stderr, "measure with:\n  sessionmon detect --input %s --labels %s --geo-city-db %s --geo-asn-db %s --geo-anonymous-db %s --output alerts.ndjson\n",
		filepath.Join(c.Out, simulate.EventsFile), filepath.Join(c.Out, simulate.LabelsFile), paths.City, paths.ASN, paths.Anonymous)
	return nil
}

// readLabels opens and decodes a labels file.
func readLabels(path string) (simulate.Labels, error) {
	f, err := os.Open(path)
	if err != nil {
		return simulate.Labels{}, fmt.Errorf("open labels: %w", err)
	}
	defer f.Close()
	return simulate.ReadLabels(bufio.NewReader(f))
}

// printQuality scores the alerts of an offline run (NDJSON) against
// labels and writes the table to w.
func printQuality(w io.Writer, alerts []byte, labels simulate.Labels) error {
	var list []schemas.Alert
	for line := range bytes.Lines(alerts) {
		var a schemas.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			return fmt.Errorf("decode alert: %w", err)
		}
		list = append(list, a)
	}
	fmt.Fprintf(w, "detection quality against %d labelled attacks, %d users:\n", len(labels.Attacks), labels.Users)
	return simulate.PrintTable(w, simulate.Evaluate(list, labels))
}
