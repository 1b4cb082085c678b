package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

// Labels is the labels file: the attacks of a simulation.
type Labels struct {
	// Seed is the simulation's seed.
	Seed int64 `json:"seed"`
	// Users is the number of accounts of the simulated user base: the
	// denominator of the false-positive rate.
	Users int `json:"users"`
	// Attacks are the labelled attacks, one per detector expected to
	// raise it.
	Attacks []Label `json:"attacks"`
}

// Label is one attack and the detector that should report it.
type Label struct {
	// Detector is the detector's name (e.g. "brute_force").
	Detector string `json:"detector"`
	App      string `json:"app"`
	// Subjects are the victims' pseudonyms; for credential_stuffing, the
	// accounts tried.
	Subjects []string `json:"subjects"`
	// Sources are the attacker's networks (ip_prefix) and ASNs the
	// GeoIP databases give them.
	Sources []string `json:"sources"`
	ASNs    []uint32 `json:"asns"`
	// From and To are the times of the attack's first and last event.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Kind says what the attack is, for people.
	Kind string `json:"kind"`
}

// sourceKeyed are the detectors whose alerts name a network, not a
// subject.
var sourceKeyed = map[string]bool{"credential_stuffing": true}

// MatchWindow is how long after a labelled attack's last event an alert
// of its detector still counts for it: the detector's longest window of
// evidence. impossible_travel may report when the owner is next seen,
// hours later; brute_force reports the account's next successful login
// within its 24-hour window, credential_stuffing counts over 24 hours.
func MatchWindow(detector string) time.Duration {
	switch detector {
	case "impossible_travel", "brute_force", "credential_stuffing":
		return 24 * time.Hour
	}
	return time.Hour
}

// Matches reports whether alert a counts as a detection of l: the same
// detector, one of l's subjects (for a source-keyed detector, also an
// alert on one of l's networks or ASNs), and a time within [From, To +
// MatchWindow(detector)]. The app is not compared: the subject-keyed
// detectors follow an account across the apps that share its pseudonym,
// and may report an attack on one app at the account's next event in
// another.
func (l *Label) Matches(a *schemas.Alert) bool {
	if a.Detector != l.Detector {
		return false
	}
	if a.Time.Before(l.From) || a.Time.After(l.To.Add(MatchWindow(l.Detector))) {
		return false
	}
	if slices.Contains(l.Subjects, a.Subject) && a.Subject != "" {
		return true
	}
	if src := a.Source; src != nil && sourceKeyed[l.Detector] {
		return (src.IPPrefix != "" && slices.Contains(l.Sources, src.IPPrefix)) ||
			(src.ASN != 0 && slices.Contains(l.ASNs, src.ASN))
	}
	return false
}

// Row is one detector's line of the quality report.
type Row struct {
	Detector string `json:"detector"`
	// Attacks are the labelled attacks for the detector, Detected those
	// with at least one matching alert, Recall their ratio (0 without
	// attacks).
	Attacks  int     `json:"attacks"`
	Detected int     `json:"detected"`
	Recall   float64 `json:"recall"`
	// FPSubjects are the distinct subjects the detector alerted on that
	// no label of the detector names; FPRate is their share of the user
	// base.
	FPSubjects int     `json:"fp_subjects"`
	FPRate     float64 `json:"fp_rate"`
	// FPAlerts are the detector's alerts that match no label of it
	// (for a source-keyed detector: alerts on networks of no attack).
	FPAlerts int `json:"fp_alerts"`
	// Alerts are all the detector's alerts.
	Alerts int `json:"alerts"`
}

// Evaluate scores alerts against labels: a row per detector that has
// labels or alerts, in name order.
func Evaluate(alerts []schemas.Alert, labels Labels) []Row {
	rows := map[string]*Row{}
	row := func(d string) *Row {
		if r, ok := rows[d]; ok {
			return r
		}
		r := &Row{Detector: d}
		rows[d] = r
		return r
	}
	labelled := map[string]map[string]bool{} // detector → subjects of its labels
	for _, l := range labels.Attacks {
		row(l.Detector).Attacks++
		if labelled[l.Detector] == nil {
			labelled[l.Detector] = map[string]bool{}
		}
		for _, s := range l.Subjects {
			labelled[l.Detector][s] = true
		}
	}
	detected := make([]bool, len(labels.Attacks))
	fpSubjects := map[string]map[string]bool{}
	for i := range alerts {
		a := &alerts[i]
		r := row(a.Detector)
		r.Alerts++
		matched := false
		for j := range labels.Attacks {
			if labels.Attacks[j].Matches(a) {
				detected[j], matched = true, true
			}
		}
		if !matched {
			r.FPAlerts++
		}
		if a.Subject != "" && !labelled[a.Detector][a.Subject] {
			if fpSubjects[a.Detector] == nil {
				fpSubjects[a.Detector] = map[string]bool{}
			}
			fpSubjects[a.Detector][a.Subject] = true
		}
	}
	for j, l := range labels.Attacks {
		if detected[j] {
			rows[l.Detector].Detected++
		}
	}
	var out []Row
	for _, d := range slices.Sorted(maps.Keys(rows)) {
		r := rows[d]
		if r.Attacks > 0 {
			r.Recall = float64(r.Detected) / float64(r.Attacks)
		}
		r.FPSubjects = len(fpSubjects[d])
		if labels.Users > 0 {
			r.FPRate = float64(r.FPSubjects) / float64(labels.Users)
		}
		out = append(out, *r)
	}
	return out
}

// PrintTable writes rows as a text table: detector, attacks, detected,
// recall, FP subjects, FP rate, FP alerts and all alerts.
func PrintTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "detector\tattacks\tdetected\trecall\tFP subjects\tFP rate\tFP alerts\talerts\t\n")
	for _, r := range rows {
		recall := "-"
		if r.Attacks > 0 {
			recall = fmt.Sprintf("%.3f", r.Recall)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%.2f%%\t%d\t%d\t\n",
			r.Detector, r.Attacks, r.Detected, recall, r.FPSubjects, 100*r.FPRate, r.FPAlerts, r.Alerts)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write quality table: %w", err)
	}
	return nil
}

// ReadLabels decodes a labels file.
func ReadLabels(r io.Reader) (Labels, error) {
	var l Labels
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Labels{}, fmt.Errorf("decode labels: %w", err)
	}
	for i, a := range l.Attacks {
		if a.Detector == "" || a.App == "" || a.From.IsZero() || a.To.Before(a.From) {
			return Labels{}, fmt.Errorf("labels: attacks[%d]: needs a detector, an app and from <= to", i)
		}
	}
	return l, nil
}
