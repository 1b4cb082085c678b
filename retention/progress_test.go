package retention

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/progress"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/schemas"
)

// recorder keeps the progress events it hears.
type recorder struct {
	mu  sync.Mutex
	evs []progress.Event
}

func (r *recorder) Report(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

// steps returns, per step, the kinds of its events in order.
func (r *recorder) steps() map[string][]progress.Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]progress.Kind{}
	for _, e := range r.evs {
		out[e.Step] = append(out[e.Step], e.Kind)
	}
	return out
}

// requireTracked checks that kinds start, may wait, and finish.
func requireTracked(t *testing.T, step string, kinds []progress.Kind, wantWaiting bool) {
	t.Helper()
	require.GreaterOrEqual(t, len(kinds), 2, step)
	require.Equal(t, progress.Started, kinds[0], step)
	require.Equal(t, progress.Finished, kinds[len(kinds)-1], step)
	for _, k := range kinds[1 : len(kinds)-1] {
		require.Equal(t, progress.Waiting, k, step)
	}
	if wantWaiting {
		require.Greater(t, len(kinds), 2, "%s: a heartbeat while the mutation runs", step)
	}
}

func progressEvent(id string, typ schemas.Type, at time.Time) chstore.EventRow {
	return chstore.NewEventRow(&schemas.Event{ID: id, SchemaVersion: schemas.SchemaVersion, Type: typ,
		Time: schemas.At(at), App: "shop", Subject: "sub_0001"}, at)
}

// A mutation takes far longer than a millisecond: with heartbeats every
// millisecond, each mutation step reports that it waits.
func TestRetentionRunReportsHeartbeats(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	now := time.Now().UTC()
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{
		progressEvent("ev-1", schemas.LoginFailed, now.Add(-10*Day)),
		progressEvent("ev-2", schemas.LoginFailed, now.Add(-time.Hour)),
	}))
	cfg, err := ParseConfig([]byte("periods: {events: 30d}\nevent_types: {login.failed: 7d}\n"))
	require.NoError(t, err)
	var r recorder
	rep, err := Run(ctx, s, cfg, now, false, WithProgress(&r), func(o *runOptions) { o.heartbeat = time.Millisecond })
	require.NoError(t, err)
	require.Len(t, rep.Steps, 1)
	steps := r.steps()
	st := rep.Steps[0]
	requireTracked(t, "delete_rows", steps[st.DataSet+": "+st.Action+" "+st.Target], true)
	require.Equal(t, []progress.Kind{progress.Started, progress.Finished}, steps[DataSetEvents])
}

func TestEraserReportsEachTable(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := time.Now().UTC().Add(-time.Hour)
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{progressEvent("ev-1", schemas.LoginFailed, at)}))
	require.NoError(t, s.InsertAlerts(ctx, []chstore.AlertRow{{ID: "al-1", Detector: "brute_force", Severity: "medium",
		SeverityRank: 2, Time: at, DetectedAt: at, App: "shop", Subject: "sub_0001", Title: "t", Summary: "s"}}))
	var r recorder
	e := NewEraser(s, func(context.Context, string, []string) (chstore.StreamMessages, error) {
		return chstore.StreamMessages{schemas.EventStream: 2, schemas.AlertStream: 1}, nil
	}, nil, WithEraserProgress(&r))
	e.heartbeat = time.Millisecond
	req, err := e.Request(ctx, "sub_0001", "dpo")
	require.NoError(t, err)
	req, err = e.Process(ctx, req.ID)
	require.NoError(t, err)
	require.Equal(t, chstore.ErasureDone, req.Status)

	steps := r.steps()
	requireTracked(t, "alerts", steps[chstore.TableAlerts], true)
	requireTracked(t, "events", steps[chstore.TableEvents], true)
	require.NotContains(t, steps, chstore.TableWebhookDeliveries, "no rows, no step")
	requireTracked(t, "forget", steps["NATS streams and detector state"], false)
	require.Equal(t, []progress.Kind{progress.Advanced}, steps["NATS stream "+schemas.EventStream])
	requireTracked(t, "clear", steps["erasure requests: clear the pseudonym"], false)

	r.mu.Lock()
	defer r.mu.Unlock()
	var order []string
	for _, ev := range r.evs {
		if ev.Kind == progress.Started {
			order = append(order, ev.Step)
		}
		require.NotContains(t, ev.Step+ev.Note, "sub_0001", "events never name the subject")
		if ev.Kind == progress.Finished && ev.Step == chstore.TableEvents {
			require.Equal(t, int64(1), ev.Done)
			require.Equal(t, "rows", ev.Unit)
			require.Positive(t, ev.Elapsed)
		}
		if ev.Kind == progress.Finished && ev.Step == "NATS streams and detector state" {
			require.Equal(t, int64(3), ev.Done)
		}
	}
	require.Equal(t, []string{chstore.TableAlerts, chstore.TableEvents, "NATS streams and detector state",
		"erasure requests: clear the pseudonym"}, order)
}
