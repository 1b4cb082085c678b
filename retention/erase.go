package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/schemas"
)

// ActionEraseSubject is the deletion log action of an erasure.
const ActionEraseSubject = "erase_subject"

// Erase deletes everything stored for subject (its events and alerts, and
// the status changes and webhook deliveries of those alerts) and waits
// until ClickHouse has, at most DefaultMutationTimeout per table. It
// refuses a subject under legal hold with an error wrapping ErrLegalHold.
// It logs one row per table to deletion_log with the rows before and
// after; the log names the subject only by the SHA-256 of its pseudonym,
// so it can prove an erasure without keeping the pseudonym. Erasing a
// subject again finds nothing and logs an empty erasure. It returns the
// rows there were before. Legal holds, erasure requests and the deletion
// log are never touched.
//
// Erasure requests with a status (Eraser) are the way to erase that
// survives a restart; Erase is the step they run.
func Erase(ctx context.Context, store *chstore.Store, subject string) (chstore.SubjectRows, error) {
	return erase(ctx, store, subject, DefaultMutationTimeout, nil, progress.HeartbeatInterval)
}

// erase is Erase waiting at most timeout per table; it reports each
// table's deletion to pr (nil: nowhere), with a heartbeat every interval.
func erase(ctx context.Context, store *chstore.Store, subject string, timeout time.Duration, pr progress.Reporter,
	every time.Duration) (chstore.SubjectRows, error) {
	if err := chstore.CheckSubject(subject); err != nil {
		return nil, fmt.Errorf("erase subject: %w", err)
	}
	if err := checkNotHeld(ctx, store, subject); err != nil {
		return nil, fmt.Errorf("erase subject: %w", err)
	}
	started := time.Now()
	each := func(table string, rows uint64, step func() error) error {
		_, err := progress.Track(pr, table, "rows", int64(rows), waitNote, every, func() (int64, error) {
			if err := step(); err != nil {
				return 0, err
			}
			return int64(rows), nil
		})
		return err
	}
	before, eraseErr := store.EraseSubject(ctx, subject, mutationPoll, timeout, each)
	if before == nil {
		return nil, fmt.Errorf("erase subject: %w", eraseErr)
	}
	// Count what is left even when a mutation failed or timed out: the
	// deletion log records the failure with the rows still there.
	after, err := store.CountSubjectRows(ctx, subject)
	if err != nil {
		return before, errors.Join(fmt.Errorf("erase subject: %w", eraseErr), fmt.Errorf("erase subject: %w", err))
	}
	target := "subject " + subjectHash(subject)
	job := "erase-" + started.UTC().Format("20060102T150405Z") + "-" + randomHex(4)
	finished := time.Now()
	var rows []chstore.DeletionLogRow
	var errs []error
	if eraseErr != nil {
		errs = append(errs, fmt.Errorf("erase subject: %w", eraseErr))
	}
	// On a cluster, every replica is asked too: the Distributed tables
	// read one replica of each shard.
	onReplicas, err := store.SubjectRowsOnReplicas(ctx, subject)
	if err != nil {
		errs = append(errs, fmt.Errorf("erase subject: not checked on every replica: %w", err))
	}
	for i, t := range SubjectTables {
		r := chstore.DeletionLogRow{
			ID: fmt.Sprintf("%s-%03d", job, i+1), Job: job, Policy: "erasure request", DataSet: t,
			Action: ActionEraseSubject, Target: target, RowsBefore: before[t], RowsAfter: after[t],
			Started: started, Finished: finished, Outcome: chstore.OutcomeOK,
		}
		left := replicasLeft(onReplicas[t])
		for _, n := range onReplicas[t] {
			r.RowsAfter = max(r.RowsAfter, n)
		}
		if left != "" && after[t] == 0 {
			r.Outcome, r.Error = chstore.OutcomeFailed, "rows left on "+left
			errs = append(errs, fmt.Errorf("erase subject: rows left in %s on %s", t, left))
		}
		if after[t] != 0 {
			r.Outcome, r.Error = chstore.OutcomeFailed, fmt.Sprintf("%d rows left", after[t])
			if eraseErr != nil {
				r.Error += ": " + eraseErr.Error()
			} else {
				errs = append(errs, fmt.Errorf("erase subject: %d rows left in %s", after[t], t))
			}
		}
		rows = append(rows, r)
	}
	if err := store.InsertDeletionLog(ctx, rows); err != nil {
		errs = append(errs, err)
	}
	return before, errors.Join(errs...)
}

// replicasLeft names the servers that still hold rows, with how many
// ("" for none), in a stable order.
func replicasLeft(byServer map[string]uint64) string {
	var parts []string
	for addr, n := range byServer {
		parts = append(parts, fmt.Sprintf("clickhouse %s (%d rows)", addr, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// SubjectTables are the tables an erasure deletes from, in the order
// results are shown.
var SubjectTables = []string{chstore.TableEvents, chstore.TableAlerts, chstore.TableAlertStatus, chstore.TableWebhookDeliveries}

// subjectHash names a subject in logs and the deletion log without its
// pseudonym: "sha256:<hex>".
func subjectHash(subject string) string { return schemas.SubjectHash(subject) }
