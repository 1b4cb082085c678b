package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/retention"
)

func holdCommand() *command {
	return &command{
		name:  "hold",
		short: "set, lift or list legal holds on data subjects",
		usage: "sessionmon hold set --subject PSEUDONYM --reason TEXT | lift --subject PSEUDONYM | list [options]",
		summary: `Legal holds. 'set' puts a data subject under legal hold: until it is lifted,
erasure requests for the subject are refused, and the retention job keeps
the subject's events and alerts (and their status changes and webhook
deliveries) past their periods, reporting them as kept under legal hold.
While any hold is active the ClickHouse TTL backstop is removed (ClickHouse
20.10 and later) and put back once the last hold is lifted. 'lift' ends the
hold; 'list' shows the active holds. Every change is appended to the
legal_holds table with --reason and --requested-by (default: the OS user).`,
		options: join([]string{"log-format", "log-level", "subject", "reason", "requested-by", "format"}, clickhouseOptions, secretOptions),
		words:   true,
		run:     runHold,
	}
}

func runHold(ctx context.Context, e *env) error {
	if err := wantWord(e.args, "set", "lift", "list"); err != nil {
		return err
	}
	sr := e.cfg.SubjectRequest
	switch {
	case e.args[0] != "list" && sr.Subject == "":
		return usagef("%s: --subject is required", e.args[0])
	case e.args[0] == "set" && sr.Reason == "":
		return usagef("set: --reason is required (why the subject's data must be kept)")
	}
	// The TTL options let a lift put the TTL backstop back.
	store, _, err := openRetentionStore(ctx, e.cfg, e.logger)
	if err != nil {
		return err
	}
	defer store.Close()
	actor := requester(sr.RequestedBy)
	switch e.args[0] {
	case "set":
		h, err := retention.SetLegalHold(ctx, store, sr.Subject, sr.Reason, actor)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "legal hold set at %s by %s: %s\n", h.Time.Format(time.RFC3339), h.Actor, h.Reason)
	case "lift":
		if err := retention.LiftLegalHold(ctx, store, sr.Subject, actor); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "legal hold lifted")
	default:
		holds, err := store.ActiveLegalHolds(ctx)
		if err != nil {
			return err
		}
		if formatJSON(e) {
			out := make([]legalHoldJSON, 0, len(holds))
			for _, h := range holds {
				out = append(out, legalHoldJSON{Subject: h.Subject, Since: h.Time.UTC(), By: h.Actor, Reason: h.Reason})
			}
			return printJSON(e.stdout, out)
		}
		return printHolds(e.stdout, holds)
	}
	return nil
}

// legalHoldJSON is a row of hold list -o json: the columns of the table.
type legalHoldJSON struct {
	Subject string    `json:"subject"`
	Since   time.Time `json:"since"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
}

func printHolds(out io.Writer, holds []chstore.LegalHold) error {
	if len(holds) == 0 {
		fmt.Fprintln(out, "no active legal holds")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SUBJECT\tSINCE\tBY\tREASON")
	for _, h := range holds {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.Subject, h.Time.Format(time.RFC3339), h.Actor, h.Reason)
	}
	return w.Flush()
}
