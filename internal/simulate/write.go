package simulate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sessionmon/sessionmon/internal/geo/geowrite"
	"github.com/sessionmon/sessionmon/schemas"
)

// Files WriteDir writes.
const (
	EventsFile = "events.ndjson"
	LabelsFile = "labels.json"
	GeoDir     = "geo"
)

// WriteDir writes the dataset into dir (created if missing): EventsFile
// (one schema v1 event a line, in event-time order), LabelsFile and, under
// GeoDir, the GeoIP databases of its networks (geowrite's City, ASN and
// Anonymous-IP files). It returns the databases' paths.
func (d *Dataset) WriteDir(dir string) (geowrite.Paths, error) {
	geoDir := filepath.Join(dir, GeoDir)
	if err := os.MkdirAll(geoDir, 0o755); err != nil {
		return geowrite.Paths{}, fmt.Errorf("create %s: %w", geoDir, err)
	}
	if err := writeFile(filepath.Join(dir, EventsFile), func(w io.Writer) error { return WriteEvents(w, d.Events) }); err != nil {
		return geowrite.Paths{}, err
	}
	err := writeFile(filepath.Join(dir, LabelsFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d.Labels)
	})
	if err != nil {
		return geowrite.Paths{}, err
	}
	return geowrite.Write(geoDir, d.Networks)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	if err := write(w); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// WriteEvents writes events to w, one JSON object a line.
func WriteEvents(w io.Writer, events []*schemas.Event) error {
	enc := json.NewEncoder(w)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("encode event %s: %w", e.ID, err)
		}
	}
	return nil
}

// ArrivalOrder returns events in the order a live consumer could receive
// them: each is delayed by a random time in [0, maxDelay) (seeded), as
// network paths and publisher retries do, so events up to maxDelay apart
// arrive out of order.
func ArrivalOrder(events []*schemas.Event, seed int64, maxDelay time.Duration) []*schemas.Event {
	rnd := rand.New(rand.NewPCG(uint64(seed), 0xa1417a1))
	type arrival struct {
		at time.Time
		e  *schemas.Event
	}
	out := make([]arrival, len(events))
	for i, e := range events {
		var delay time.Duration
		if maxDelay > 0 {
			delay = time.Duration(rnd.Int64N(int64(maxDelay)))
		}
		out[i] = arrival{at: e.Time.Add(delay), e: e}
	}
	slices.SortStableFunc(out, func(a, b arrival) int { return a.at.Compare(b.at) })
	res := make([]*schemas.Event, len(out))
	for i, a := range out {
		res[i] = a.e
	}
	return res
}
