package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one row of the drill's results table: what one scenario
// published, stored and delivered.
type Result struct {
	// Scenario names the fault, e.g. "kill -9 during load".
	Scenario string `json:"scenario"`
	// Published counts events JetStream acknowledged to the publisher.
	Published int `json:"published"`
	// Refused counts publishes the publisher saw fail for good (an error
	// returned or reported by the SDK); they are not in Published.
	Refused int `json:"refused"`
	// Stored counts events in ClickHouse, each once (FINAL).
	Stored int `json:"stored"`
	// DeadLettered counts messages in the dead-letter stream.
	DeadLettered int `json:"dead_lettered"`
	// AlertsExpected counts the alerts the published events must raise.
	AlertsExpected int `json:"alerts_expected"`
	// AlertsDelivered counts distinct alerts a webhook receiver got with a
	// valid signature (plus those recorded undeliverable, see Note).
	AlertsDelivered int `json:"alerts_delivered"`
	// Duration is how long the scenario ran.
	Duration time.Duration `json:"duration"`
	// Outcome is "pass" or "FAIL: <why>".
	Outcome string `json:"outcome"`
	// Note says what else was measured (redeliveries, undeliverable, ...).
	Note string `json:"note,omitempty"`
}

// EnvResults names the environment variable of the file each scenario
// appends its Result to, one JSON object a line (used by scripts/drill.sh).
const EnvResults = "DRILL_RESULTS"

// Record appends r to the file named by EnvResults, if any.
func Record(r Result) error {
	path := os.Getenv(EnvResults)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s (%s): %w", EnvResults, path, err)
	}
	defer f.Close()
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s (%s): %w", EnvResults, path, err)
	}
	return nil
}

// ReadResults reads the results a run appended to path.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	dec := json.NewDecoder(r)
	for dec.More() {
		var res Result
		if err := dec.Decode(&res); err != nil {
			return nil, fmt.Errorf("decode result %d: %w", len(out)+1, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// Table writes results as a Markdown table.
func Table(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| scenario | published | refused | stored | dead-lettered | alerts expected | alerts delivered | time | outcome | notes |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n",
			r.Scenario, r.Published, r.Refused, r.Stored, r.DeadLettered, r.AlertsExpected, r.AlertsDelivered,
			r.Duration.Round(time.Second), r.Outcome, r.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TextTable writes results as an aligned text table for a terminal.
func TextTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tPUBLISHED\tREFUSED\tSTORED\tDEAD-LETTERED\tALERTS EXPECTED\tALERTS DELIVERED\tTIME\tOUTCOME")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Scenario, r.Published, r.Refused, r.Stored,
			r.DeadLettered, r.AlertsExpected, r.AlertsDelivered, r.Duration.Round(time.Second), r.Outcome)
	}
	return tw.Flush()
}
