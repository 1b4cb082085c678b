package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/retention"
)

const holdUsage = "usage: sessionmon hold set --subject PSEUDONYM --reason TEXT | hold lift --subject PSEUDONYM | hold list"

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
		options: join([]string{"log-format", "log-level", "subject", "reason", "requested-by"}, clickhouseOptions, secretOptions),
		run:     runHold,
	}
}

func runHold(ctx context.Context, e *env) error {
	if len(e.args) != 1 || (e.args[0] != "set" && e.args[0] != "lift" && e.args[0] != "list") {
		return errors.New(holdUsage)
	}
	sr := e.cfg.SubjectRequest
	switch {
	case e.args[0] != "list" && sr.Subject == "":
		return fmt.Errorf("hold %s: --subject is required", e.args[0])
	case e.args[0] == "set" && sr.Reason == "":
		return errors.New("hold set: --reason is required (why the subject's data must be kept)")
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
		return printHolds(e.stdout, holds)
	}
	return nil
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
