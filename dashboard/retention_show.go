package dashboard

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/retention"
)

// Retention page limits.
const (
	deletionLogRows = 200
	erasureRows     = 100
)

// dataSetJSON is one data set of the record of processing.
type dataSetJSON struct {
	Name   string `json:"name"`
	Period string `json:"period"`
	// StoredIn is the ClickHouse table or the JetStream stream.
	StoredIn string     `json:"stored_in"`
	Oldest   *time.Time `json:"oldest,omitempty"`
	Fields   []string   `json:"fields"`
}

// policyJSON is the retention policy.
type policyJSON struct {
	Schedule   string            `json:"schedule"`
	TimeZone   string            `json:"time_zone"`
	MaxPeriod  string            `json:"max_period"`
	EventTypes map[string]string `json:"event_types"`
	Apps       map[string]string `json:"apps"`
}

// deletionJSON is a row of the deletion log.
type deletionJSON struct {
	ID         string    `json:"id"`
	Job        string    `json:"job"`
	Policy     string    `json:"policy"`
	DataSet    string    `json:"data_set"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	RowsBefore uint64    `json:"rows_before"`
	RowsAfter  uint64    `json:"rows_after"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
	Outcome    string    `json:"outcome"`
	Error      string    `json:"error,omitempty"`
}

// erasureJSON is an erasure request with its current status. It names the
// subject by the SHA-256 of its pseudonym only, as the audit log and the
// deletion log do: the request is the proof of an erasure, and must not
// keep, or show, the pseudonym it erased.
type erasureJSON struct {
	ID          string            `json:"id"`
	SubjectHash string            `json:"subject_hash"`
	RequestedBy string            `json:"requested_by"`
	Status      string            `json:"status"`
	Error       string            `json:"error,omitempty"`
	Rows        map[string]uint64 `json:"rows_deleted,omitempty"`
	Messages    map[string]uint64 `json:"messages_deleted,omitempty"`
	Requested   time.Time         `json:"requested"`
	Updated     time.Time         `json:"updated"`
}

// legalHoldJSON is a subject under legal hold.
type legalHoldJSON struct {
	Subject string    `json:"subject"`
	Reason  string    `json:"reason"`
	Actor   string    `json:"actor"`
	Since   time.Time `json:"since"`
}

// retentionData is the retention and erasure page.
type retentionData struct {
	Policy        policyJSON
	DataSets      []dataSetJSON
	LastRun       *deletionJSON
	DeletionLog   []deletionJSON
	Erasures      []erasureJSON
	Holds         []legalHoldJSON
	EraserEnabled bool
}

func newDeletionJSON(r chstore.DeletionLogRow) deletionJSON {
	return deletionJSON{ID: r.ID, Job: r.Job, Policy: r.Policy, DataSet: r.DataSet, Action: r.Action, Target: r.Target,
		RowsBefore: r.RowsBefore, RowsAfter: r.RowsAfter, Started: r.Started.UTC(), Finished: r.Finished.UTC(),
		Outcome: r.Outcome, Error: r.Error}
}

func newErasureJSON(r chstore.ErasureRequest) erasureJSON {
	return erasureJSON{ID: r.ID, SubjectHash: r.SubjectHash, RequestedBy: r.RequestedBy, Status: r.Status, Error: r.Error,
		Rows: r.Rows, Messages: r.Streams, Requested: r.Requested.UTC(), Updated: r.Updated.UTC()}
}

// recordOfProcessing lists each data set with its period, where it is
// stored, its oldest data and its fields.
func (h *handler) recordOfProcessing(ctx context.Context) ([]dataSetJSON, error) {
	var out []dataSetJSON
	for _, ds := range retention.DataSets {
		d := dataSetJSON{Name: ds, Period: h.retention.Periods[ds].String(), Fields: []string{}}
		table, ok := retention.Tables[ds]
		if !ok {
			d.StoredIn = "JetStream stream SESSIONMON_DLQ (expires by the stream's max age)"
			out = append(out, d)
			continue
		}
		d.StoredIn = "ClickHouse table " + h.store.Database() + "." + table
		exists, err := h.store.TableExists(ctx, table)
		if err != nil {
			return nil, err
		}
		if !exists {
			d.StoredIn += " (not created yet)"
			out = append(out, d)
			continue
		}
		oldest, ok, err := h.store.OldestRow(ctx, table)
		if err != nil {
			return nil, err
		}
		if ok {
			d.Oldest = &oldest
		}
		cols, err := h.store.TableColumns(ctx, table)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			d.Fields = append(d.Fields, c.Name)
		}
		out = append(out, d)
	}
	return out, nil
}

// loadRetention loads the policy, the record of processing, the last runs,
// the deletion log, the erasure requests and the legal holds.
func (h *handler) loadRetention(c echo.Context) (retentionData, error) {
	ctx := c.Request().Context()
	d := retentionData{
		Policy: policyJSON{Schedule: h.retention.Schedule, TimeZone: h.retention.TimeZone, MaxPeriod: h.retention.MaxPeriod.String(),
			EventTypes: map[string]string{}, Apps: map[string]string{}},
		EraserEnabled: h.eraser != nil,
	}
	for t, p := range h.retention.EventTypes {
		d.Policy.EventTypes[string(t)] = p.String()
	}
	for app, p := range h.retention.Apps {
		d.Policy.Apps[app] = p.String()
	}
	var err error
	if d.DataSets, err = h.recordOfProcessing(ctx); err != nil {
		return d, err
	}
	last, ok, err := h.store.LastRun(ctx, chstore.OutcomeOK)
	if err != nil {
		return d, err
	}
	if ok {
		l := newDeletionJSON(last)
		d.LastRun = &l
	}
	log, err := h.store.DeletionLog(ctx, deletionLogRows)
	if err != nil {
		return d, err
	}
	d.DeletionLog = make([]deletionJSON, len(log))
	for i, r := range log {
		d.DeletionLog[i] = newDeletionJSON(r)
	}
	if d.Erasures, err = h.loadErasures(ctx); err != nil {
		return d, err
	}
	if d.Holds, err = h.loadHolds(ctx); err != nil {
		return d, err
	}
	return d, nil
}

func (h *handler) loadErasures(ctx context.Context) ([]erasureJSON, error) {
	reqs, err := h.store.ErasureRequests(ctx, erasureRows)
	if err != nil {
		return nil, err
	}
	out := make([]erasureJSON, len(reqs))
	for i, r := range reqs {
		out[i] = newErasureJSON(r)
	}
	return out, nil
}

func (h *handler) loadHolds(ctx context.Context) ([]legalHoldJSON, error) {
	holds, err := h.store.ActiveLegalHolds(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]legalHoldJSON, len(holds))
	for i, hl := range holds {
		out[i] = legalHoldJSON{Subject: hl.Subject, Reason: hl.Reason, Actor: hl.Actor, Since: hl.Time.UTC()}
	}
	return out, nil
}

// showRetention renders the retention and erasure page, with the admin's
// forms to file an erasure and to set or lift a legal hold.
func (h *handler) showRetention(c echo.Context) error {
	d, err := h.loadRetention(c)
	if err != nil {
		return err
	}
	return h.page(c, http.StatusOK, viewRetentionShow, d)
}

// retentionJSON is the answer of GET /api/v1/retention.
type retentionJSON struct {
	Policy      policyJSON     `json:"policy"`
	DataSets    []dataSetJSON  `json:"data_sets"`
	LastRun     *deletionJSON  `json:"last_run,omitempty"`
	DeletionLog []deletionJSON `json:"deletion_log"`
}

// apiRetention answers GET /api/v1/retention.
//
// No parameters. Response 200: retentionJSON {policy: {schedule,
// time_zone, max_period, event_types}, data_sets: [{name, period,
// stored_in, oldest, fields}] (the record of processing), last_run (the
// last successful run's summary row), deletion_log: [row] newest first}.
func (h *handler) apiRetention(c echo.Context) error {
	d, err := h.loadRetention(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, retentionJSON{Policy: d.Policy, DataSets: d.DataSets, LastRun: d.LastRun, DeletionLog: d.DeletionLog})
}
