package chstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/schemas"
)

// dashT0 is the start of the dashboard tests' time range.
var dashT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// hostile are strings that must pass through every query unchanged and
// never be taken for SQL.
var hostile = []string{
	`x' OR '1'='1`,
	`') OR 1=1 --`,
	`shop"; DROP TABLE events; --`,
	`<script>alert("x")</script>`,
	"tab\tnew\nline \\ back\\slash ? ?",
	"ünïcødé 🙂 \x00nul",
}

// dashEvent returns a valid event row of subject and session at at.
func dashEvent(id, typ, subject, session, app string, at time.Time) chstore.EventRow {
	r := chstore.NewEventRow(testEvent(0), at.Add(time.Minute).Truncate(time.Second))
	r.ID, r.Type, r.Subject, r.Session, r.App = id, typ, subject, session, app
	r.Time, r.TimeMS = at.Truncate(time.Second), at.UnixMilli()
	r.TokenID, r.TokenKind, r.TokenFamily, r.TokenKID, r.TokenAlg, r.TokenClaims = "", "", "", "", "", nil
	return r
}

// dashAlert returns an alert row with id number i.
func dashAlert(i int, severity, detector, subject string, at time.Time, evidence ...string) chstore.AlertRow {
	rank := map[string]uint8{"low": 1, "medium": 2, "high": 3, "critical": 4}[severity]
	return chstore.AlertRow{
		ID: fmt.Sprintf("%032x", i), Detector: detector, Severity: severity, SeverityRank: rank,
		Time: at, DetectedAt: at.Add(time.Second), App: "shop", Subject: subject, Session: "ses_dash_1",
		Title: "title", Summary: "summary", Details: "{}", Evidence: evidence,
	}
}

func dashStatus(id, alert int, st string, at time.Time) chstore.AlertStatusRow {
	return chstore.AlertStatusRow{ID: fmt.Sprintf("st-%d", id), AlertID: fmt.Sprintf("%032x", alert), Status: st,
		Actor: "ana", Comment: "c", Time: at}
}

func TestOverviewCountsEachEventOnce(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	from, to := dashT0.Add(30*time.Second), dashT0.Add(5*time.Minute)
	rows := []chstore.EventRow{
		dashEvent("e1", "token.used", "sub_dash_1", "ses_dash_1", "shop", dashT0.Add(40*time.Second)),
		dashEvent("e2", "token.used", "sub_dash_1", "ses_dash_1", "shop", dashT0.Add(59*time.Second+999*time.Millisecond)),
		dashEvent("e3", "token.used", "sub_dash_2", "ses_dash_2", "shop", dashT0.Add(time.Minute)),
		dashEvent("e4", "token.used", "sub_dash_2", "ses_dash_2", "bank", dashT0.Add(3*time.Minute+500*time.Millisecond)),
		// Outside: before from (same minute), and at to (exclusive).
		dashEvent("e5", "token.used", "sub_dash_2", "ses_dash_2", "bank", dashT0.Add(29*time.Second+999*time.Millisecond)),
		dashEvent("e6", "token.used", "sub_dash_2", "ses_dash_2", "bank", to),
	}
	require.NoError(t, s.InsertEvents(ctx, rows))
	// Redelivered: e1 and e4 stored twice, in a part of their own.
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{rows[0], rows[3]}))

	alerts := []chstore.AlertRow{
		dashAlert(1, "high", "brute_force", "sub_dash_1", dashT0.Add(time.Minute)),
		dashAlert(2, "high", "token_reuse", "sub_dash_1", dashT0.Add(2*time.Minute)),
		dashAlert(3, "low", "brute_force", "sub_dash_2", dashT0.Add(4*time.Minute)),
		dashAlert(4, "critical", "brute_force", "sub_dash_2", dashT0.Add(-time.Hour)), // outside
		dashAlert(5, "medium", "session_hijack", "sub_dash_2", dashT0.Add(4*time.Minute)),
	}
	require.NoError(t, s.InsertAlerts(ctx, alerts))
	require.NoError(t, s.InsertAlerts(ctx, alerts[:1])) // redelivered
	require.NoError(t, s.AppendAlertStatus(ctx,
		dashStatus(1, 2, string(schemas.StatusAcknowledged), dashT0.Add(time.Hour)),
		dashStatus(2, 3, string(schemas.StatusResolved), dashT0.Add(time.Hour)),
		dashStatus(3, 3, string(schemas.StatusOpen), dashT0.Add(2*time.Hour)), // reopened
		dashStatus(4, 5, string(schemas.StatusOpen), dashT0.Add(time.Hour)),
		dashStatus(5, 5, string(schemas.StatusFalsePositive), dashT0.Add(2*time.Hour)),
	))
	require.NoError(t, s.AppendAlertStatus(ctx, dashStatus(5, 5, string(schemas.StatusFalsePositive), dashT0.Add(2*time.Hour))))

	o, err := s.Overview(ctx, from, to)
	require.NoError(t, err)
	require.Equal(t, from, o.From)
	var perMinute []uint64
	for i, b := range o.EventsPerMinute {
		require.Equal(t, dashT0.Add(time.Duration(i)*time.Minute), b.Time)
		perMinute = append(perMinute, b.Count)
	}
	require.Equal(t, []uint64{2, 1, 0, 1, 0}, perMinute, "each event once, zeros filled, to exclusive")
	require.Equal(t, []chstore.NameCount{{Name: "shop", Count: 3}, {Name: "bank", Count: 1}}, o.TopApps)
	require.Equal(t, []chstore.TimeCount{{Time: dashT0, Count: 4}}, o.AlertsPerHour, "alert 1 once, alert 4 outside")
	require.Equal(t, []chstore.NameCount{{Name: "high", Count: 1}, {Name: "low", Count: 1}}, o.OpenBySeverity)
	require.Equal(t, []chstore.NameCount{{Name: "brute_force", Count: 2}}, o.OpenByDetector)

	_, err = s.Overview(ctx, to, from)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	require.ErrorContains(t, err, "to:")
	_, err = s.Overview(ctx, to.Add(-32*24*time.Hour), to)
	require.ErrorIs(t, err, chstore.ErrInvalidArgument)
	require.ErrorContains(t, err, "from:")
}

// seedAlertPages inserts n alerts over a day (every third shares its
// time_ms with the previous one) with statuses cycling through open (no
// change), acknowledged, resolved, reopened and false positive, and
// returns their ids by current status.
func seedAlertPages(t *testing.T, s *chstore.Store, n int) map[string][]string {
	t.Helper()
	ctx := t.Context()
	var (
		alerts  []chstore.AlertRow
		changes []chstore.AlertStatusRow
		byState = map[string][]string{}
	)
	for i := 1; i <= n; i++ {
		at := dashT0.Add(time.Duration(i-i%3) * 7 * time.Minute)
		a := dashAlert(i, []string{"low", "medium", "high", "critical"}[i%4], "brute_force", "sub_dash_1", at)
		alerts = append(alerts, a)
		st := string(schemas.StatusOpen)
		switch i % 5 {
		case 1:
			st = string(schemas.StatusAcknowledged)
			changes = append(changes, dashStatus(i*10, i, st, at.Add(time.Hour)))
		case 2:
			st = string(schemas.StatusResolved)
			changes = append(changes, dashStatus(i*10, i, string(schemas.StatusAcknowledged), at.Add(time.Hour)),
				dashStatus(i*10+1, i, st, at.Add(2*time.Hour)))
		case 3:
			changes = append(changes, dashStatus(i*10, i, string(schemas.StatusResolved), at.Add(time.Hour)),
				dashStatus(i*10+1, i, string(schemas.StatusOpen), at.Add(2*time.Hour)))
		case 4:
			st = string(schemas.StatusFalsePositive)
			changes = append(changes, dashStatus(i*10, i, st, at.Add(time.Hour)))
		}
		byState[st] = append(byState[st], a.ID)
	}
	require.NoError(t, s.InsertAlerts(ctx, alerts))
	require.NoError(t, s.InsertAlerts(ctx, alerts[:n/2])) // redelivered
	require.NoError(t, s.AppendAlertStatus(ctx, changes...))
	return byState
}

func TestAlertsPagesReturnEachAlertOnce(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	byState := seedAlertPages(t, s, 47)
	all := slices.Concat(byState[string(schemas.StatusOpen)], byState[string(schemas.StatusAcknowledged)],
		byState[string(schemas.StatusResolved)], byState[string(schemas.StatusFalsePositive)])
	tests := []struct {
		name     string
		statuses []string
		want     []string
	}{
		{name: "no status filter", want: all},
		{name: "open", statuses: []string{string(schemas.StatusOpen)}, want: byState[string(schemas.StatusOpen)]},
		{name: "acknowledged or false positive", statuses: []string{string(schemas.StatusAcknowledged), string(schemas.StatusFalsePositive)},
			want: slices.Concat(byState[string(schemas.StatusAcknowledged)], byState[string(schemas.StatusFalsePositive)])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 4, 1000} {
				f := chstore.AlertFilter{From: dashT0, To: dashT0.Add(24 * time.Hour), Statuses: tc.statuses, Limit: limit}
				var got []string
				var last *chstore.AlertView
				for pages := 0; ; pages++ {
					require.Less(t, pages, 100, "paging must end")
					p, err := s.Alerts(ctx, f)
					require.NoError(t, err)
					require.LessOrEqual(t, len(p.Alerts), limit)
					for i := range p.Alerts {
						a := &p.Alerts[i]
						if last != nil {
							require.True(t, a.Time.Before(last.Time) || a.Time.Equal(last.Time) && a.ID < last.ID,
								"newest first, then by id: %s after %s", a.ID, last.ID)
						}
						if len(tc.statuses) > 0 {
							require.Contains(t, tc.statuses, a.Status)
						}
						last = a
						got = append(got, a.ID)
					}
					if p.Next == "" {
						break
					}
					f.Cursor = p.Next
				}
				require.ElementsMatch(t, tc.want, got, "limit %d: each matching alert exactly once", limit)
			}
		})
	}
}

func TestAlertsStatusAndFilters(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	a := []chstore.AlertRow{
		dashAlert(1, "high", "brute_force", "sub_dash_1", dashT0.Add(time.Minute), "ev-a", "ev-b"),
		dashAlert(2, "low", "token_reuse", "sub_dash_2", dashT0.Add(2*time.Minute)),
		dashAlert(3, "high", "token_reuse", "sub_dash_2", dashT0.Add(3*time.Minute)),
	}
	a[1].App, a[1].Session = "bank", "ses_dash_2"
	// Untrusted text, stored and returned as is; the app name is hostile.
	a[2].App, a[2].Title, a[2].Summary = hostile[0], hostile[3], hostile[4]
	require.NoError(t, s.InsertAlerts(ctx, a))
	require.NoError(t, s.AppendAlertStatus(ctx, dashStatus(1, 1, string(schemas.StatusResolved), dashT0.Add(time.Hour))))
	base := chstore.AlertFilter{From: dashT0, To: dashT0.Add(time.Hour), Limit: 10}
	ids := func(f chstore.AlertFilter) []string {
		t.Helper()
		p, err := s.Alerts(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, v := range p.Alerts {
			out = append(out, v.ID[30:])
		}
		return out
	}
	f := base
	require.Equal(t, []string{"03", "02", "01"}, ids(f))
	f.Severities = []string{"high"}
	require.Equal(t, []string{"03", "01"}, ids(f))
	f.Detectors = []string{"token_reuse"}
	require.Equal(t, []string{"03"}, ids(f))
	f = base
	f.Apps = []string{"bank", hostile[0]}
	require.Equal(t, []string{"03", "02"}, ids(f), "a hostile app name is a value")
	f = base
	f.Subject, f.Session = "sub_dash_2", "ses_dash_2"
	require.Equal(t, []string{"02"}, ids(f))
	f = base
	f.From = dashT0.Add(2 * time.Minute)
	require.Equal(t, []string{"03", "02"}, ids(f), "from inclusive")
	f.To = dashT0.Add(3 * time.Minute)
	require.Equal(t, []string{"02"}, ids(f), "to exclusive")

	// Injection attempts in every filter are values that match nothing.
	for _, h := range hostile {
		for _, f := range []chstore.AlertFilter{
			{Severities: []string{h}}, {Detectors: []string{h}}, {Apps: []string{h, "bank"}},
		} {
			f.From, f.To, f.Limit = base.From, base.To, base.Limit
			got := ids(f)
			if slices.Contains(f.Apps, h) {
				if h == hostile[0] {
					require.Equal(t, []string{"03", "02"}, got)
				} else {
					require.Equal(t, []string{"02"}, got)
				}
				continue
			}
			require.Empty(t, got, "%q", h)
		}
	}

	p, err := s.Alerts(ctx, base)
	require.NoError(t, err)
	require.Equal(t, hostile[0], p.Alerts[0].App)
	require.Equal(t, hostile[3], p.Alerts[0].Title)
	require.Equal(t, hostile[4], p.Alerts[0].Summary)
	require.Equal(t, string(schemas.StatusOpen), p.Alerts[0].Status)
	require.True(t, p.Alerts[0].StatusTime.IsZero())
	v := p.Alerts[2]
	require.Equal(t, string(schemas.StatusResolved), v.Status)
	require.Equal(t, "ana", v.StatusActor)
	require.Equal(t, dashT0.Add(time.Hour), v.StatusTime)
	require.Equal(t, a[0].Evidence, v.Evidence)

	bad := []struct {
		name, field string
		f           func(*chstore.AlertFilter)
	}{
		{"cursor not base64", "cursor", func(f *chstore.AlertFilter) { f.Cursor = "%%%" }},
		{"cursor forged", "cursor", func(f *chstore.AlertFilter) { f.Cursor = "djEuMS54' OR 1=1" }},
		{"cursor injection", "cursor", func(f *chstore.AlertFilter) { f.Cursor = hostile[1] }},
		{"status", "status", func(f *chstore.AlertFilter) { f.Statuses = []string{hostile[0]} }},
		{"limit 0", "limit", func(f *chstore.AlertFilter) { f.Limit = 0 }},
		{"limit too big", "limit", func(f *chstore.AlertFilter) { f.Limit = 1001 }},
		{"subject", "subject", func(f *chstore.AlertFilter) { f.Subject = hostile[0] }},
		{"session", "session", func(f *chstore.AlertFilter) { f.Session = hostile[1] }},
		{"no from", "from", func(f *chstore.AlertFilter) { f.From = time.Time{} }},
	}
	for _, tc := range bad {
		f := base
		tc.f(&f)
		_, err := s.Alerts(ctx, f)
		require.ErrorIs(t, err, chstore.ErrInvalidArgument, tc.name)
		require.ErrorContains(t, err, tc.field, tc.name)
	}
}

func TestAlertDetail(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	at := dashT0.Add(10 * time.Minute)
	ev := []chstore.EventRow{
		// Two days before the alert, and another subject's: found by
		// the wider windows.
		dashEvent("ev-old", "login.succeeded", "sub_dash_1", "ses_dash_1", "shop", at.Add(-49*time.Hour)),
		dashEvent("ev-other", "login.failed", "sub_dash_9", "", "shop", at.Add(-time.Minute)),
		dashEvent("ev-new", "login.succeeded", "sub_dash_1", "ses_dash_1", "shop", at),
		dashEvent("ev-unrelated", "login.succeeded", "sub_dash_1", "ses_dash_1", "shop", at.Add(-time.Second)),
	}
	ev[2].AttrsKeys, ev[2].AttrsValues = []string{"note"}, []string{hostile[2]}
	require.NoError(t, s.InsertEvents(ctx, ev))
	require.NoError(t, s.InsertEvents(ctx, ev[2:3])) // redelivered
	a := dashAlert(7, "critical", "impossible_travel", "sub_dash_1", at, "ev-new", "ev-old", "ev-other", "ev-missing")
	require.NoError(t, s.InsertAlerts(ctx, []chstore.AlertRow{a, dashAlert(8, "low", "brute_force", "sub_dash_1", at)}))
	require.NoError(t, s.AppendAlertStatus(ctx,
		dashStatus(1, 7, string(schemas.StatusAcknowledged), at.Add(time.Hour)),
		dashStatus(2, 7, string(schemas.StatusResolved), at.Add(2*time.Hour))))
	require.NoError(t, s.InsertWebhookDeliveries(ctx, []chstore.WebhookDeliveryRow{
		{Webhook: "siem", AlertID: a.ID, Attempt: 1, Status: chstore.DeliveryRetry, HTTPStatus: 503, Time: at.Add(time.Second)},
		{Webhook: "siem", AlertID: a.ID, Attempt: 2, Status: chstore.DeliveryDelivered, HTTPStatus: 200, Time: at.Add(5 * time.Second)},
	}))

	d, err := s.AlertDetail(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, a.ID, d.Alert.ID)
	require.Equal(t, string(schemas.StatusResolved), d.Alert.Status)
	require.Len(t, d.History, 2)
	require.Equal(t, string(schemas.StatusAcknowledged), d.History[0].Status)
	require.Len(t, d.Deliveries, 2)
	require.Equal(t, uint32(1), d.Deliveries[0].Attempt)
	var got []string
	for _, e := range d.Evidence {
		got = append(got, e.ID)
	}
	require.Equal(t, []string{"ev-old", "ev-other", "ev-new"}, got, "oldest first, each once, the missing one left out")
	require.Equal(t, map[string]string{"note": hostile[2]}, d.Evidence[2].Attrs())
	require.Equal(t, ev[2].TimeMS, d.Evidence[2].TimeMS)

	_, err = s.AlertDetail(ctx, fmt.Sprintf("%032x", 99))
	require.ErrorIs(t, err, chstore.ErrNotFound)
	for _, id := range append([]string{"", "ABCDEF0123456789ABCDEF0123456789"}, hostile...) {
		_, err = s.AlertDetail(ctx, id)
		require.ErrorIs(t, err, chstore.ErrInvalidArgument, "%q", id)
		require.ErrorContains(t, err, "id:")
	}
}

func TestSubjectAndSession(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	const sub = "sub_dash_1"
	ev := func(id, typ, session string, min int) chstore.EventRow {
		return dashEvent(id, typ, sub, session, "shop", dashT0.Add(time.Duration(min)*time.Minute))
	}
	rows := []chstore.EventRow{
		ev("s1-1", string(schemas.SessionStarted), "ses_dash_1", 0),
		ev("s1-2", string(schemas.TokenIssued), "ses_dash_1", 1),
		ev("s1-3", string(schemas.TokenUsed), "ses_dash_1", 2),
		ev("s1-4", string(schemas.TokenUsed), "ses_dash_1", 3),
		ev("s1-5", string(schemas.TokenRevoked), "ses_dash_1", 4),
		ev("s1-6", string(schemas.SessionEnded), "ses_dash_1", 5),
		ev("s2-1", string(schemas.SessionStarted), "ses_dash_2", 60),
		ev("s2-2", string(schemas.TokenUsed), "ses_dash_2", 61),
		ev("nos-1", string(schemas.LoginFailed), "", 59),
		ev("out-1", string(schemas.TokenUsed), "ses_dash_3", 24*60),                             // outside the subject's range
		dashEvent("x-1", string(schemas.TokenUsed), "sub_dash_2", "ses_dash_1", "shop", dashT0), // another subject
	}
	rows[1].TokenID, rows[1].TokenKind, rows[1].TokenFamily, rows[1].TokenIssuedAtMS, rows[1].TokenExpiresAtMS = "tok_a", "access", "fam_a", dashT0.Add(time.Minute).UnixMilli(), dashT0.Add(time.Hour).UnixMilli()
	for _, i := range []int{2, 3, 4} {
		rows[i].TokenID, rows[i].TokenKind, rows[i].TokenFamily, rows[i].TokenIssuedAtMS, rows[i].TokenExpiresAtMS = "tok_a", "", "", 0, 0
	}
	rows[7].TokenID = "tok_b"
	rows[10].TokenID = "tok_x"
	rows[0].ClientCountry, rows[0].ClientCity = "FR", "Paris"
	rows[0].UABrowser, rows[0].UAOS, rows[0].UADevice = "Firefox", "Linux", "desktop"
	rows[3].ClientDevice = "dev_2"
	rows[6].PreviousSession = "ses_dash_1"
	rows[6].AttrsKeys, rows[6].AttrsValues = []string{"k"}, []string{hostile[5]}
	require.NoError(t, s.InsertEvents(ctx, rows))
	require.NoError(t, s.InsertEvents(ctx, []chstore.EventRow{rows[2], rows[6]})) // redelivered
	alerts := []chstore.AlertRow{
		dashAlert(1, "high", "token_reuse", sub, dashT0.Add(3*time.Minute)),
		dashAlert(2, "low", "idle_timeout_exceeded", sub, dashT0.Add(4*time.Minute)),
		dashAlert(3, "low", "brute_force", "sub_dash_2", dashT0.Add(4*time.Minute)),
	}
	alerts[1].Session = "ses_dash_2"
	alerts[2].Session = "ses_dash_1"
	require.NoError(t, s.InsertAlerts(ctx, alerts))
	require.NoError(t, s.AppendAlertStatus(ctx, dashStatus(1, 1, string(schemas.StatusAcknowledged), dashT0.Add(time.Hour))))

	v, err := s.Subject(ctx, sub, dashT0, dashT0.Add(2*time.Hour), 3)
	require.NoError(t, err)
	require.Len(t, v.Sessions, 2)
	s2, s1 := v.Sessions[0], v.Sessions[1]
	require.Equal(t, "ses_dash_2", s2.Session, "the most recently active first")
	require.Equal(t, uint64(2), s2.Events, "each event once")
	require.Equal(t, "ses_dash_1", s2.PreviousSession)
	require.False(t, s2.Ended)
	require.Equal(t, uint64(1), s2.Alerts)
	require.Equal(t, uint64(6), s1.Events)
	require.True(t, s1.Ended)
	require.Equal(t, dashT0, s1.First)
	require.Equal(t, dashT0.Add(5*time.Minute), s1.Last)
	require.Equal(t, []string{"DE", "FR"}, s1.Countries)
	require.Equal(t, []string{"Berlin", "Paris"}, s1.Cities)
	require.Equal(t, []string{"dev_1", "dev_2"}, s1.Devices)
	require.Equal(t, []string{"Firefox / Linux / desktop"}, s1.Browsers)
	require.Equal(t, []string{"203.0.113.0/24"}, s1.IPPrefixes)
	require.Equal(t, uint64(1), s1.Alerts, "the other subject's alert in the same session does not count")
	var ids []string
	for _, e := range v.Events {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"s2-2", "s2-1", "nos-1"}, ids, "newest first, each once, at most limit")
	require.Equal(t, map[string]string{"k": hostile[5]}, v.Events[1].Attrs())
	require.Len(t, v.Alerts, 2)
	require.Equal(t, string(schemas.StatusOpen), v.Alerts[0].Status)
	require.Equal(t, string(schemas.StatusAcknowledged), v.Alerts[1].Status)

	for _, h := range hostile {
		_, err = s.Subject(ctx, h, dashT0, dashT0.Add(time.Hour), 10)
		require.ErrorIs(t, err, chstore.ErrInvalidArgument)
		require.ErrorContains(t, err, "subject:")
		_, err = s.Session(ctx, h)
		require.ErrorIs(t, err, chstore.ErrInvalidArgument)
		require.ErrorContains(t, err, "session:")
	}
	_, err = s.Subject(ctx, sub, dashT0, dashT0.Add(time.Hour), 0)
	require.ErrorContains(t, err, "limit")

	sv, err := s.Session(ctx, "ses_dash_1")
	require.NoError(t, err)
	ids = nil
	for _, e := range sv.Events {
		ids = append(ids, e.ID)
	}
	// Both subjects' events of the session, oldest first, each once.
	require.Equal(t, []string{"s1-1", "x-1", "s1-2", "s1-3", "s1-4", "s1-5", "s1-6"}, ids)
	require.Equal(t, uint64(7), sv.Summary.Events)
	require.True(t, sv.Summary.Ended)
	require.Equal(t, []chstore.TokenSummary{
		{ID: "tok_x", LastSeen: dashT0, Uses: 1},
		{ID: "tok_a", Kind: "access", Family: "fam_a", IssuedAt: dashT0.Add(time.Minute), ExpiresAt: dashT0.Add(time.Hour),
			LastSeen: dashT0.Add(4 * time.Minute), Uses: 2, Revoked: true},
	}, sv.Tokens, "first seen first; uses counted once although s1-3 was stored twice")
	require.Len(t, sv.Alerts, 2)
	require.Equal(t, uint64(2), sv.Summary.Alerts)

	_, err = s.Session(ctx, "ses_dash_none")
	require.ErrorIs(t, err, chstore.ErrNotFound)
}

func TestSeedDashboard(t *testing.T) {
	t.Parallel()
	s := chtest.New(t)
	ctx := t.Context()
	end := dashT0.Add(72 * time.Hour)
	seed := chstore.DashboardSeed{Events: 20_000, Alerts: 300, End: end, Days: 3, Subjects: 500, Heavy: 5, DuplicatePercent: 2}
	var progress []int
	require.NoError(t, s.SeedDashboard(ctx, seed, func(n int) { progress = append(progress, n) }))
	require.Equal(t, []int{20_000}, progress)
	n, err := s.CountEvents(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(20_000), n, "each seeded event once")
	rows, err := s.CountRows(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(20_400), rows, "2% stored twice")

	o, err := s.Overview(ctx, end.Add(-24*time.Hour), end.Add(time.Second))
	require.NoError(t, err)
	var total uint64
	for _, b := range o.EventsPerMinute {
		total += b.Count
	}
	require.InDelta(t, 20_000/3, total, 600, "a third of the events in the last day")

	// A heavy subject has far more events than a typical one.
	heavy, err := s.Subject(ctx, chstore.BenchSubject(0), end.Add(-72*time.Hour), end.Add(time.Second), 10_000)
	require.NoError(t, err)
	typical, err := s.Subject(ctx, chstore.BenchSubject(100), end.Add(-72*time.Hour), end.Add(time.Second), 10_000)
	require.NoError(t, err)
	require.Greater(t, len(heavy.Events), 10*len(typical.Events))

	// Every alert's evidence is a seeded event of its subject, a second
	// before it; a quarter were triaged.
	p, err := s.Alerts(ctx, chstore.AlertFilter{From: end.Add(-96 * time.Hour), To: end.Add(time.Hour), Limit: 1000})
	require.NoError(t, err)
	require.Len(t, p.Alerts, 300)
	triaged := 0
	for _, a := range p.Alerts[:20] {
		d, err := s.AlertDetail(ctx, a.ID)
		require.NoError(t, err)
		require.Len(t, d.Evidence, 1)
		require.Equal(t, a.Subject, d.Evidence[0].Subject)
		require.Equal(t, a.Time.Add(-time.Second), time.UnixMilli(d.Evidence[0].TimeMS).UTC())
	}
	for _, a := range p.Alerts {
		if a.Status != string(schemas.StatusOpen) || a.StatusActor != "" {
			triaged++
		}
	}
	require.InDelta(t, 75, triaged, 30)

	_, err = s.Session(ctx, heavy.Sessions[0].Session)
	require.NoError(t, err)
	require.ErrorIs(t, s.SeedDashboard(ctx, chstore.DashboardSeed{Events: 1, Days: 1, Subjects: 1, Heavy: 1}, nil), chstore.ErrInvalidArgument)
}
