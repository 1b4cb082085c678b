package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/config"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/retention"
	"github.com/sessionmon/sessionmon/schemas"
)

func subjectEnv(t *testing.T, out *bytes.Buffer, subject string) *env {
	t.Helper()
	cfg := config.Default()
	cfg.ClickHouseDSN = chtest.DSN(t)
	cfg.SubjectRequest.Subject = subject
	// An erasure needs NATS: the detectors' saved state lives there.
	cfg.NATS.URL = natstest.RunServer(t).ClientURL()
	// Progress goes to stderr, apart from the result on stdout.
	return &env{cfg: &cfg, logger: slog.New(slog.DiscardHandler), stdout: out, stderr: new(bytes.Buffer)}
}

// seedSubject stores an event of subject sub_0001, an alert about it and
// the alert's webhook delivery, an hour old.
func seedSubject(t *testing.T, store *chstore.Store) {
	t.Helper()
	ctx := t.Context()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	require.NoError(t, store.InsertEvents(ctx, []chstore.EventRow{chstore.NewEventRow(&schemas.Event{
		ID: "ev-1", SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginFailed,
		Time: schemas.At(at), App: "shop", Subject: "sub_0001",
	}, at)}))
	require.NoError(t, store.InsertAlerts(ctx, []chstore.AlertRow{{ID: "al-1", Detector: "brute_force", Severity: "medium",
		SeverityRank: 2, Time: at, DetectedAt: at, App: "shop", Subject: "sub_0001", Title: "t", Summary: "s"}}))
	require.NoError(t, store.InsertWebhookDeliveries(ctx, []chstore.WebhookDeliveryRow{{Webhook: "chat", AlertID: "al-1",
		Attempt: 1, Status: chstore.DeliveryDelivered, HTTPStatus: 200, Latency: 15 * time.Millisecond, Time: at}}))
}

func TestExportThenErase(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	seedSubject(t, store)

	var out bytes.Buffer
	require.NoError(t, runExport(ctx, subjectEnv(t, &out, "sub_0001")))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	var first struct {
		DataSet string         `json:"data_set"`
		Row     map[string]any `json:"row"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, "events", first.DataSet)
	require.Equal(t, "sub_0001", first.Row["subject"])
	require.Equal(t, "login.failed", first.Row["type"])
	require.Contains(t, first.Row, "client_ip_prefix")
	require.Contains(t, first.Row, "time_ms")
	require.Contains(t, lines[2], `"data_set":"webhook_deliveries"`)
	require.Contains(t, lines[2], `"latency_ms":15`)

	out.Reset()
	require.NoError(t, runErase(ctx, subjectEnv(t, &out, "sub_0001")))
	require.Regexp(t, `^request (erasure-\S+): pending\nrequest erasure-\S+: done\n`, out.String())
	require.Contains(t, out.String(), "events: 1 rows erased\nalerts: 1 rows erased\nalert_status: 0 rows erased\nwebhook_deliveries: 1 rows erased\n")

	out.Reset()
	require.NoError(t, runErase(ctx, subjectEnv(t, &out, "sub_0001")))
	require.Contains(t, out.String(), ": done\nnothing stored for this subject\ndetector state: ", out.String())
	out.Reset()
	require.NoError(t, runExport(ctx, subjectEnv(t, &out, "sub_0001")))
	require.Empty(t, out.String())

	out.Reset()
	list := subjectEnv(t, &out, "")
	list.args = []string{"list"}
	require.NoError(t, runErase(ctx, list))
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, "a header and two requests")
	require.Contains(t, lines[1], " done ")
	require.NotContains(t, out.String(), "sub_0001", "the list does not show pseudonyms")

	// -o json: the same rows and columns, one JSON array.
	out.Reset()
	list.cfg.Format = "json"
	require.NoError(t, runErase(ctx, list))
	require.NotContains(t, out.String(), "sub_0001", "the list does not show pseudonyms")
	var reqs []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &reqs), out.String())
	require.Len(t, reqs, 2)
	require.Equal(t, "done", reqs[0]["status"])
	for _, k := range []string{"id", "subject_hash", "requested", "requested_by", "updated", "rows_erased", "messages_deleted", "error"} {
		require.Contains(t, reqs[0], k)
	}
	require.Len(t, reqs[0], 9, "the columns of the table, nothing more")

	require.ErrorContains(t, runErase(ctx, subjectEnv(t, &out, "")), "--subject is required")
	require.ErrorIs(t, runErase(ctx, subjectEnv(t, &out, "bad subject!")), chstore.ErrInvalidArgument)
	require.ErrorIs(t, runExport(ctx, subjectEnv(t, &out, "bad subject!")), chstore.ErrInvalidArgument)
}

func TestHoldBlocksErase(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	ctx := t.Context()
	at := time.Now().UTC().Add(-time.Hour)
	require.NoError(t, store.InsertEvents(ctx, []chstore.EventRow{chstore.NewEventRow(&schemas.Event{
		ID: "ev-1", SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginFailed,
		Time: schemas.At(at), App: "shop", Subject: "sub_0001",
	}, at)}))
	var out bytes.Buffer
	hold := func(args ...string) *env {
		e := subjectEnv(t, &out, "sub_0001")
		e.args = args
		e.cfg.SubjectRequest.RequestedBy = "dpo"
		return e
	}
	require.ErrorContains(t, runHold(ctx, hold("set")), "--reason is required")
	setEnv := hold("set")
	setEnv.cfg.SubjectRequest.Reason = "case 42"
	require.NoError(t, runHold(ctx, setEnv))
	require.Contains(t, out.String(), "legal hold set at ")

	out.Reset()
	require.NoError(t, runHold(ctx, hold("list")))
	require.Contains(t, out.String(), "sub_0001")
	require.Contains(t, out.String(), "case 42")
	out.Reset()
	listJSON := hold("list")
	listJSON.cfg.Format = "json"
	require.NoError(t, runHold(ctx, listJSON))
	var holds []legalHoldJSON
	require.NoError(t, json.Unmarshal(out.Bytes(), &holds), out.String())
	require.Len(t, holds, 1)
	require.Equal(t, legalHoldJSON{Subject: "sub_0001", Since: holds[0].Since, By: "dpo", Reason: "case 42"}, holds[0])
	require.WithinDuration(t, time.Now(), holds[0].Since, time.Minute)

	out.Reset()
	err := runErase(ctx, subjectEnv(t, &out, "sub_0001"))
	require.ErrorIs(t, err, retention.ErrLegalHold)
	require.ErrorContains(t, err, "(reason: case 42); lift it with `sessionmon hold lift --subject PSEUDONYM`")
	n, err := store.CountEvents(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)

	require.NoError(t, runHold(ctx, hold("lift")))
	out.Reset()
	require.NoError(t, runErase(ctx, subjectEnv(t, &out, "sub_0001")))
	require.Contains(t, out.String(), "events: 1 rows erased")
	var ue *usageError
	require.ErrorAs(t, runHold(ctx, hold("frobnicate")), &ue)
	require.Contains(t, ue.Error(), "want set or lift or list")
}

func TestEraseAsksRunningDetectorsToForget(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	var out bytes.Buffer
	const subject = "k1:AAAAAAAAAAAAAAAAAAAAAA"
	e := subjectEnv(t, &out, subject)
	e.cfg.NATS.URL = s.ClientURL()
	res, err := purgeDetectorState(t.Context(), e, subject, nil)
	require.NoError(t, err)
	require.Equal(t, "no detector is running, nothing to purge", res.String())

	_, err = natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	require.NoError(t, ensureAlertStream(t.Context(), js, true))
	svc, err := newDetect(e.cfg, js, e.logger, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	poll.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error { return svc.Ready(t.Context()) })
	require.NoError(t, detect.ServeForget(js.Conn(), svc, e.logger))

	res, err = purgeDetectorState(t.Context(), e, subject, nil)
	require.NoError(t, err)
	require.Contains(t, res.String(), "forgotten by 1 of 1 detect processes: ")
	require.Contains(t, res.String(), "(partitions all, source detectors)")
}
