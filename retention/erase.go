package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
)

// ActionEraseSubject is the deletion log action of an erasure.
const ActionEraseSubject = "erase_subject"

// Erase deletes everything stored for subject (its events and alerts, and
// the status changes and webhook deliveries of those alerts) and waits
// until ClickHouse has. It logs one row per table to deletion_log with the
// rows before and after; the log names the subject only by the SHA-256 of
// its pseudonym, so it can prove an erasure without keeping the pseudonym.
// Erasing a subject again finds nothing and logs an empty erasure. It
// returns the rows there were before.
func Erase(ctx context.Context, store *chstore.Store, subject string) (chstore.SubjectRows, error) {
	started := time.Now()
	before, err := store.EraseSubject(ctx, subject, mutationPoll)
	if err != nil {
		return before, fmt.Errorf("erase subject: %w", err)
	}
	after, err := store.CountSubjectRows(ctx, subject)
	if err != nil {
		return before, fmt.Errorf("erase subject: %w", err)
	}
	sum := sha256.Sum256([]byte(subject))
	target := "subject sha256:" + hex.EncodeToString(sum[:])
	job := "erase-" + started.UTC().Format("20060102T150405Z") + "-" + randomHex(4)
	finished := time.Now()
	var rows []chstore.DeletionLogRow
	var errs []error
	for i, t := range []string{chstore.TableEvents, chstore.TableAlerts, chstore.TableAlertStatus, chstore.TableWebhookDeliveries} {
		r := chstore.DeletionLogRow{
			ID: fmt.Sprintf("%s-%03d", job, i+1), Job: job, Policy: "erasure request", DataSet: t,
			Action: ActionEraseSubject, Target: target, RowsBefore: before[t], RowsAfter: after[t],
			Started: started, Finished: finished, Outcome: chstore.OutcomeOK,
		}
		if after[t] != 0 {
			r.Outcome, r.Error = chstore.OutcomeFailed, fmt.Sprintf("%d rows left", after[t])
			errs = append(errs, fmt.Errorf("erase subject: %d rows left in %s", after[t], t))
		}
		rows = append(rows, r)
	}
	if err := store.InsertDeletionLog(ctx, rows); err != nil {
		errs = append(errs, err)
	}
	return before, errors.Join(errs...)
}
