package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// Erasure of batched messages. A batched message (schemas.SplitBatch) is
// stored on a batch subject, whatever the subjects of its events, so the
// purge by subject filter (schemas.SubjectEventFilters) does not reach the
// events of a subject it carries. purgeSubjectBatches finds those batches
// and rewrites each: it publishes the events of the other subjects as a new
// batch in the same partition, which names the original's stream sequence
// in schemas.ReplacesHeader, and once the stream has stored it, it deletes
// the original with JetStream's secure delete. Consumers read the
// replacement as a new message: ingest stores its events again (its table
// keeps one row per event id), and detect skips a replacement whose
// original it has already processed.

// batchScanFetch bounds the messages one fetch of the scan holds: a batch
// may be close to schemas.MaxBatchBytes, so a fetch stays below 16 MiB.
const batchScanFetch = 16

// storedEventFilters match every event message of the events stream,
// partitioned or not. NATS cannot filter on a token's prefix ("batch+"),
// so the scan reads them all and skips single events by their headers.
var storedEventFilters = []string{schemas.EventSubjectPrefix + "*.*.*", schemas.EventSubjectPrefix + "*.*"}

// batchEventRef is what an erasure reads of an event in a batch.
type batchEventRef struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
}

// purgeSubjectBatches removes subject's events from the batched messages
// of the events stream (see above) and returns how many events it removed.
// n is the stream's partition count (0: not partitioned). A batch that
// has no event of subject is left alone, even when its body names the
// pseudonym elsewhere. A batch of framing version 1 that cannot be split
// and names the pseudonym is deleted whole: no consumer can read it (ingest
// dead-lettered it) and its events cannot be told apart. A batch of a
// framing version this build does not read is left, and reported in the
// error, so that a build that reads it can erase the subject from it.
func purgeSubjectBatches(ctx context.Context, js jetstream.JetStream, n int, subject string) (uint64, error) {
	var purged uint64
	unread := 0
	err := natsconn.ScanStream(ctx, js, schemas.EventStream, func(seq uint64, m natsconn.ScannedMsg) error {
		h := m.Headers()
		if h.Get(schemas.BatchHeader) == "" || !schemas.MentionsPseudonym(m.Data(), subject) {
			return nil
		}
		if h.Get(schemas.BatchHeader) != schemas.BatchVersion {
			unread++
			return nil
		}
		k, err := rewriteBatch(ctx, js, n, seq, m, subject)
		purged += k
		return err
	}, natsconn.ScanFilter(storedEventFilters...), natsconn.ScanFetch(batchScanFetch))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return purged, nil
	}
	if err != nil {
		return purged, fmt.Errorf("purge its events from batches: %w", err)
	}
	if unread > 0 {
		return purged, fmt.Errorf("purge its events from batches: %d batches that name the subject are of a framing version this build does not read (it reads %q): erase the subject again with a build that reads them", unread, schemas.BatchVersion)
	}
	return purged, nil
}

// rewriteBatch removes subject's events from the batch m, stored at seq:
// it publishes the other events as its replacement, if any are left, then
// deletes m. It returns how many of subject's events it removed: none when
// m has none, or when m was gone before it could delete it.
func rewriteBatch(ctx context.Context, js jetstream.JetStream, n int, seq uint64, m natsconn.ScannedMsg, subject string) (uint64, error) {
	lines, _, err := schemas.SplitBatch(m.Headers(), m.Data())
	if err != nil {
		deleted, err := natsconn.SecureDeleteMessages(ctx, js, schemas.EventStream, []uint64{seq})
		if err != nil {
			return 0, fmt.Errorf("delete unreadable batch %d: %w", seq, err)
		}
		return deleted, nil
	}
	var (
		erased uint64
		kept   [][]byte
		refs   []batchEventRef
	)
	for _, line := range lines {
		var ref batchEventRef
		if err := json.Unmarshal(line, &ref); err != nil {
			// Not an event any consumer admits; it is the subject's
			// when it names the pseudonym.
			if schemas.MentionsPseudonym(line, subject) {
				erased++
				continue
			}
		} else if ref.Subject == subject {
			erased++
			continue
		}
		kept = append(kept, line)
		refs = append(refs, ref)
	}
	if erased == 0 {
		return 0, nil
	}
	if len(kept) > 0 {
		msgs, err := replacementBatches(m.Subject(), n, seq, refs, kept)
		if err != nil {
			return 0, fmt.Errorf("rewrite batch %d: %w", seq, err)
		}
		for _, r := range msgs {
			if _, err := js.PublishMsg(ctx, r, jetstream.WithExpectStream(schemas.EventStream)); err != nil {
				return 0, fmt.Errorf("rewrite batch %d: publish its replacement: %w", seq, err)
			}
		}
	}
	deleted, err := natsconn.SecureDeleteMessages(ctx, js, schemas.EventStream, []uint64{seq})
	if err != nil {
		return 0, fmt.Errorf("rewrite batch %d: %w", seq, err)
	}
	if deleted == 0 {
		return 0, nil
	}
	return erased, nil
}

// replacementBatches returns the batches that replace the batch stored at
// seq on the NATS subject stored, in a stream of n partitions, with the
// events lines (refs are what was read of them). A batch stored in a
// partition is replaced by one batch in that partition; one stored before
// the stream was partitioned is replaced by a batch in each partition its
// events belong to now (a publish on its unpartitioned subject would be
// moved to the partition of the batch token), or by one unpartitioned
// batch when the stream has no partitions.
func replacementBatches(stored string, n int, seq uint64, refs []batchEventRef, lines [][]byte) ([]*nats.Msg, error) {
	app, _, ok := schemas.EventSubjectTokens(stored)
	if !ok {
		return nil, fmt.Errorf("stored on a subject that is not an event subject")
	}
	if p, ok := storedPartition(stored); ok {
		// In its partition; one of an earlier layout with more
		// partitions stays where it was too.
		return []*nats.Msg{replacing(schemas.NewBatchMsg(app, p, n, batchIDs(refs), lines), p, app, seq)}, nil
	}
	if n == 0 {
		return []*nats.Msg{replacing(schemas.NewBatchMsg(app, 0, 0, batchIDs(refs), lines), 0, app, seq)}, nil
	}
	var order []int
	groups := map[int][]int{}
	for i, ref := range refs {
		p := schemas.EventPartition(ref.Subject, n)
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], i)
	}
	out := make([]*nats.Msg, 0, len(order))
	for _, p := range order {
		gRefs := make([]batchEventRef, 0, len(groups[p]))
		gLines := make([][]byte, 0, len(groups[p]))
		for _, i := range groups[p] {
			gRefs = append(gRefs, refs[i])
			gLines = append(gLines, lines[i])
		}
		out = append(out, replacing(schemas.NewBatchMsg(app, p, n, batchIDs(gRefs), gLines), p, app, seq))
	}
	return out, nil
}

// replacing marks r as a replacement of the batch stored at seq: it goes
// to partition p on the replacement subject (schemas.ReplacementToken,
// which apps may not publish, stored as published), names seq in
// schemas.ReplacesHeader, and its message id, derived from its events'
// ids and seq, is not deduplicated against the original's (the same
// events) but is against a replacement published again by a retried
// erasure.
func replacing(r *nats.Msg, p int, app string, seq uint64) *nats.Msg {
	r.Subject = partitionedSubject(p, app, schemas.ReplacementToken)
	s := strconv.FormatUint(seq, 10)
	r.Header.Set(schemas.ReplacesHeader, s)
	r.Header.Set(nats.MsgIdHdr, r.Header.Get(nats.MsgIdHdr)+"-r"+s)
	return r
}

// batchIDs returns the ids of refs, in order.
func batchIDs(refs []batchEventRef) []string {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids
}

// partitionedSubject returns the subject of an event message stored in
// partition p: sessionmon.events.<p>.<app>.<token>; the stream stores a
// message published on it as it is.
func partitionedSubject(p int, app, token string) string {
	return schemas.EventSubjectPrefix + strconv.Itoa(p) + "." + app + "." + token
}

// storedPartition returns the partition of an event message's stored
// subject, and false when it has none (it was stored before the stream was
// partitioned).
func storedPartition(stored string) (int, bool) {
	rest, _ := strings.CutPrefix(stored, schemas.EventSubjectPrefix)
	if strings.Count(rest, ".") != 2 {
		return 0, false
	}
	p, err := strconv.Atoi(rest[:strings.IndexByte(rest, '.')])
	return p, err == nil
}
