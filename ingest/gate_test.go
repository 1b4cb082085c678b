package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/pii"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// gateMarker is in every raw value the gate test hides; no dead letter,
// alert or row may contain it.
const gateMarker = "carol.raw"

// gateCase is a session of two events that raise alerts when they reach
// the detectors (an insecure session cookie, a sensitive action long after
// the login), with a raw value put in one field of both.
type gateCase struct {
	name   string
	app    string // the app token of the subject it is published on
	reason string // the dead letter's reason
	field  string // a field the dead letter names
	// edit changes the two events' JSON objects.
	edit func(start, action map[string]any)
	// raw, when set, replaces a member in the encoded JSON (for what
	// a map cannot hold: a duplicate key).
	raw func(body string) string
	// cleared: the field is one the end user chooses (the User-Agent, a
	// presented token's kid); it is emptied and the event kept, so that
	// nobody hides a sign-in from the detectors with a crafted header.
	cleared bool
}

func gateCases() []gateCase {
	email := gateMarker + "@example.com"
	set := func(path, v string) func(start, action map[string]any) {
		return func(start, action map[string]any) {
			for _, m := range []map[string]any{start, action} {
				obj, key, _ := strings.Cut(path, ".")
				if key == "" {
					m[obj] = v
					continue
				}
				sub, _ := m[obj].(map[string]any)
				if sub == nil {
					sub = map[string]any{}
					m[obj] = sub
				}
				sub[key] = v
			}
		}
	}
	return []gateCase{
		{name: "action.name", reason: pii.ReasonPII, field: "action.name", edit: set("action.name", email)},
		{name: "client.city", reason: pii.ReasonPII, field: "client.city", edit: set("client.city", email)},
		{name: "token.kid", cleared: true, edit: set("token.kid", email)},
		{name: "auth.method", reason: pii.ReasonPII, field: "auth.method", edit: set("auth.method", email)},
		{name: "cookie.name", reason: pii.ReasonPII, field: "cookie.name", edit: set("cookie.name", email)},
		{name: "client.user_agent", cleared: true, edit: set("client.user_agent", "Mozilla/5.0 "+email)},
		{name: "reason", reason: pii.ReasonPII, field: "reason", edit: set("reason", "user "+email)},
		{name: "attrs fullwidth at", reason: pii.ReasonPII, field: "attrs.note", edit: set("attrs.note", gateMarker+"＠example.com")},
		{name: "attrs entity", reason: pii.ReasonPII, field: "attrs.note", edit: set("attrs.note", gateMarker+"&#64;example.com")},
		{name: "attrs basic credentials", reason: pii.ReasonPII, field: "attrs.auth", edit: set("attrs.auth", "Basic Y2Fyb2wucmF3OnMzY3JldA==")},
		{name: "id", reason: pii.ReasonSchema, field: "id", edit: set("id", email)},
		{name: "app", app: "shop", reason: pii.ReasonSchema, field: "app", edit: set("app", email)},
		{name: "unknown field", reason: pii.ReasonSchema, field: "email", edit: set("email", email)},
		{name: "duplicate key", reason: pii.ReasonSchema, field: "action.name", edit: func(map[string]any, map[string]any) {},
			raw: func(body string) string {
				return strings.ReplaceAll(body, `"name":"export_data"`, `"name":"export_data","name":"`+email+`"`)
			}},
		{name: "app of another subject", app: "evil", reason: pii.ReasonAppMismatch, field: "app", edit: func(map[string]any, map[string]any) {}},
	}
}

// gateEvents returns the two events of case i, dated around now.
func gateEvents(t *testing.T, i int, c gateCase) (subject string, bodies []string) {
	t.Helper()
	subject = fmt.Sprintf("k1:gate-subject-%02d-AbCdEf", i)
	session := fmt.Sprintf("k1:gate-session-%02d-AbCdEf", i)
	at := time.Now().UTC().Add(-20 * time.Minute)
	ts := func(d time.Duration) string { return at.Add(d).Format("2006-01-02T15:04:05.000Z") }
	start := map[string]any{
		"id": fmt.Sprintf("gate-%02d-s", i), "schema_version": 1, "type": "session.started", "time": ts(0),
		"app": "shop", "subject": subject, "session": session,
		"client": map[string]any{"ip_prefix": "203.0.113.0/24", "country": "DE"},
		"auth":   map[string]any{"method": "password", "last_auth_at": ts(0)},
		"cookie": map[string]any{"name": "sid", "secure": false, "http_only": false, "same_site": "none"},
		"policy": map[string]any{"reauth_window_s": 300},
		"action": map[string]any{"name": "export_data"},
	}
	action := map[string]any{
		"id": fmt.Sprintf("gate-%02d-a", i), "schema_version": 1, "type": "action.performed", "time": ts(10 * time.Minute),
		"app": "shop", "subject": subject, "session": session,
		"client": map[string]any{"ip_prefix": "203.0.113.0/24", "country": "DE"},
		"action": map[string]any{"name": "export_data", "sensitive": true},
		"auth":   map[string]any{"method": "password", "last_auth_at": ts(0)},
	}
	c.edit(start, action)
	for _, m := range []map[string]any{start, action} {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		body := string(b)
		if c.raw != nil {
			body = c.raw(body)
		}
		bodies = append(bodies, body)
	}
	return subject, bodies
}

// TestGateBeforeStorageAndDetectors publishes, through a real NATS
// server, events with raw personal data in each field an attacker or a
// careless app could use, and an event of one app published on another
// app's subject, to a running ingest and detect on a real ClickHouse: each
// is dead-lettered with its reason and redacted and raises no alert, except
// those whose personal data is in a field the end user chooses, which are
// kept with the field cleared; no dead letter, alert or stored row holds a
// raw value.
func TestGateBeforeStorageAndDetectors(t *testing.T) {
	st := newStack(t)
	store := chtest.New(t)
	dsn := chtest.DSN(t)

	cases := gateCases()
	refused, kept := 0, map[string]bool{}
	for i, c := range cases {
		subject, bodies := gateEvents(t, i, c)
		app := c.app
		if app == "" {
			app = "shop"
		}
		for _, b := range bodies {
			_, err := st.js.Publish(t.Context(), schemas.EventSubject(app, subject), []byte(b))
			require.NoError(t, err)
			if !c.cleared {
				refused++
			}
		}
		if c.cleared {
			kept[subject] = true
		}
	}
	// A clean session of the same shape raises the alerts the others
	// would have, and proves the detectors ran.
	cleanSubject, clean := gateEvents(t, len(cases), gateCase{edit: func(map[string]any, map[string]any) {}})
	kept[cleanSubject] = true
	for _, b := range clean {
		_, err := st.js.Publish(t.Context(), schemas.EventSubject("shop", cleanSubject), []byte(b))
		require.NoError(t, err)
	}

	m := NewMetrics(nil)
	svc, err := New(st.js, dsn, testConfig(), WithMetrics(m))
	require.NoError(t, err)
	runService(t, svc)

	dcfg := detect.DefaultServiceConfig()
	dcfg.FirstLookback = time.Hour
	dcfg.AckWait = 5 * time.Second
	dcfg.RetryMin, dcfg.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	_, err = natsconn.EnsureAlertStream(t.Context(), st.js, dcfg.Alerts)
	require.NoError(t, err)
	aw, err := NewAlerts(st.js, dsn, alertTestConfig())
	require.NoError(t, err)
	runService(t, aw)
	dsvc, err := detect.NewService(st.js, dcfg, detect.DefaultConfig())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ddone := make(chan error, 1)
	go func() { ddone <- dsvc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ddone:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("detect did not stop within 30 s")
		}
	})

	// Ingest: only the clean and the cleared sessions are stored; the rest
	// is dead-lettered.
	waitForCount(t, store, uint64(len(clean)*len(kept)), time.Minute)
	var dead []DeadLetter
	poll.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		dead, err = ListDeadLetters(t.Context(), st.js, 1000)
		if err != nil {
			return err
		}
		if len(dead) != refused {
			return fmt.Errorf("%d of %d dead letters", len(dead), refused)
		}
		return nil
	})
	j := 0 // dead letters checked, oldest first
	for _, c := range cases {
		if c.cleared {
			continue
		}
		for range 2 {
			d := dead[len(dead)-1-j] // newest first
			j++
			require.Equal(t, c.reason, d.Reason, "%s: %s", c.name, d.Error)
			require.Contains(t, d.Fields, c.field, "%s: %s", c.name, d.Error)
			require.NotContains(t, string(d.Body), gateMarker, "%s: the dead letter keeps the raw value", c.name)
			require.NotContains(t, d.Error, gateMarker, c.name)
			require.NotContains(t, strings.Join(d.Fields, ","), gateMarker, c.name)
			if c.reason != pii.ReasonAppMismatch {
				require.True(t, d.Redacted, c.name)
				require.Contains(t, string(d.Body), "[redacted:", "%s: the dead letter keeps a redacted body", c.name)
			}
		}
	}

	// Detect: the alerts of the sessions kept, and nothing else, on the
	// stream and in ClickHouse.
	var rows []string
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		alerts, err := store.AlertsSince(t.Context(), time.Now().Add(-time.Hour), 1000)
		if err != nil {
			return err
		}
		rows = rows[:0]
		for _, a := range alerts {
			b, err := json.Marshal(a)
			if err != nil {
				return err
			}
			rows = append(rows, string(b))
		}
		// missing_reauth is per session; insecure_cookie is one alert for
		// the app's cookie.
		for subject := range kept {
			if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, subject) }) {
				return fmt.Errorf("no alert about %s among %d", subject, len(rows))
			}
		}
		return nil
	})
	aboutKept := func(s string) bool {
		for subject := range kept {
			if strings.Contains(s, subject) {
				return true
			}
		}
		return false
	}
	for _, r := range rows {
		require.True(t, aboutKept(r), "an alert about a refused event: %s", r)
		require.NotContains(t, r, gateMarker)
	}
	stream, err := st.js.Stream(t.Context(), schemas.AlertStream)
	require.NoError(t, err)
	info, err := stream.Info(t.Context())
	require.NoError(t, err)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		msg, err := stream.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		require.NotContains(t, string(msg.Data), gateMarker)
		if !strings.HasPrefix(msg.Subject, schemas.StatusSubjectPrefix) {
			require.True(t, aboutKept(string(msg.Data)), "an alert about a refused event: %s", msg.Data)
		}
	}

	// Stored rows: the kept sessions' only, without the marker.
	for i := range len(cases) + 1 {
		subject := fmt.Sprintf("k1:gate-subject-%02d-AbCdEf", i)
		events, err := store.EventsBySubject(t.Context(), subject, 100)
		require.NoError(t, err)
		if !kept[subject] {
			require.Empty(t, events, "%s: a refused event was stored", subject)
			continue
		}
		require.Len(t, events, 2)
		b, err := json.Marshal(events)
		require.NoError(t, err)
		require.NotContains(t, string(b), gateMarker)
	}
}
