package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// purgeFilter purges the messages of stream on filter and returns how many
// there were when it started (the purge API does not return its count).
func purgeFilter(ctx context.Context, stream jetstream.Stream, filter string) (uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	if n == 0 {
		return 0, nil
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
		return 0, err
	}
	return n, nil
}

// PurgeSubjectAlerts deletes from SESSIONMON_ALERTS every message about
// subject and returns how many it deleted: the alerts about it (found by
// their schemas.SubjectHashHeader, or for alerts published before that
// header, by the pseudonym in the body, which also finds an alert of
// another subject whose details name it), and the status changes of those
// alerts and of alertIDs (the subject's alerts as ClickHouse knew them
// before the erasure: an alert may have aged out of the stream before its
// status changes did). Status changes go first, so that a run stopped
// half-way still finds them through their alerts when it is run again.
// Messages are deleted with JetStream's secure delete, which overwrites
// them on disk. Call it once the running detectors have forgotten the
// subject (Service.Forget), so that none publishes a new alert about it. A
// missing stream has nothing to delete.
func PurgeSubjectAlerts(ctx context.Context, js jetstream.JetStream, subject string, alertIDs []string) (uint64, error) {
	if !schemas.ValidPseudonym(subject) {
		return 0, fmt.Errorf("purge subject alerts: not a valid pseudonym")
	}
	ids := make(map[string]bool, len(alertIDs))
	for _, id := range alertIDs {
		ids[id] = true
	}
	var alertSeqs, statusSeqs []uint64
	statusOf := map[uint64]string{} // status change sequence → alert id
	err := natsconn.ScanStream(ctx, js, schemas.AlertStream, func(seq uint64, m natsconn.ScannedMsg) error {
		isStatus := strings.HasPrefix(m.Subject(), schemas.StatusSubjectPrefix)
		if natsconn.Mentions(m, subject) {
			if isStatus {
				statusSeqs = append(statusSeqs, seq)
				return nil
			}
			alertSeqs = append(alertSeqs, seq)
			var a struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(m.Data(), &a) == nil && a.ID != "" {
				ids[a.ID] = true
			}
			return nil
		}
		if isStatus {
			var c struct {
				AlertID string `json:"alert_id"`
			}
			if json.Unmarshal(m.Data(), &c) == nil && c.AlertID != "" {
				statusOf[seq] = c.AlertID
			}
		}
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("purge subject alerts: %w", err)
	}
	for seq, id := range statusOf {
		if ids[id] {
			statusSeqs = append(statusSeqs, seq)
		}
	}
	n, err := natsconn.SecureDeleteMessages(ctx, js, schemas.AlertStream, statusSeqs)
	if err != nil {
		return n, fmt.Errorf("purge subject alerts: status changes: %w", err)
	}
	m, err := natsconn.SecureDeleteMessages(ctx, js, schemas.AlertStream, alertSeqs)
	if err != nil {
		return n + m, fmt.Errorf("purge subject alerts: %w", err)
	}
	return n + m, nil
}
