package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
)

// The familiarity fixture: eight colleagues sign in from the office
// network over 40 minutes (a shared egress of shop), and the owner signs
// in from home in three different hours (a familiar network).
const (
	netOwner  = "k1:owner-FamiliarAAAA"
	netHome   = "203.0.113.0/24"
	netOffice = "198.51.100.0/24"
)

// netEvents are the fixture's events from start on, as the SDK sends
// them (the ASN stands for what GeoIP would add).
func netEvents(start time.Time) []*schemas.Event {
	ev := func(id, subject, prefix string, asn uint32, at time.Time) *schemas.Event {
		return &schemas.Event{ID: id, SchemaVersion: schemas.SchemaVersion, Type: schemas.LoginSucceeded,
			Time: schemas.At(at.UTC().Truncate(time.Millisecond)), App: "shop", Subject: subject,
			Session: "k1:ses-" + strings.ReplaceAll(id, "-", ""),
			Client:  &schemas.Client{Device: "k1:dev-FamiliarLaptop01", IPPrefix: prefix, ASN: asn}}
	}
	var evs []*schemas.Event
	for i := range 8 {
		evs = append(evs, ev(fmt.Sprintf("office-%02d", i), fmt.Sprintf("k1:colleague-%08d", i), netOffice, 64501,
			start.Add(time.Duration(i)*5*time.Minute+time.Minute)))
	}
	for i := range 3 {
		evs = append(evs, ev(fmt.Sprintf("home-%d", i), netOwner, netHome, 64500, start.Add(time.Duration(i+1)*time.Hour+10*time.Minute)))
	}
	return evs
}

// startDetect runs a real detect service on js until the test ends. With
// a first lookback of 0 the events already stored are replayed, so its
// first published list of shared egresses has them.
func startDetect(t *testing.T, js jetstream.JetStream) (stop func()) {
	t.Helper()
	cfg := detect.DefaultServiceConfig()
	cfg.FirstLookback = 0
	cfg.Snapshots.Interval = 0
	svc, err := detect.NewService(js, cfg, detect.DefaultConfig())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("detect did not stop")
		}
	}
	t.Cleanup(stop)
	poll.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error { return svc.Ready(ctx) })
	return stop
}

// TestFamiliarNetworksFromDetect runs the dashboard and a detect service
// on one NATS server: what detect learned from the events shows in the
// API and on the page, with why; without detect, the lookup says so.
func TestFamiliarNetworksFromDetect(t *testing.T) {
	env := newPagesEnvAt(t, time.Now)
	ctx := t.Context()
	_, err := natsconn.EnsureEventStream(ctx, env.js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	for _, e := range netEvents(time.Now().Add(-5 * time.Hour)) {
		b, err := schemas.Encode(e)
		require.NoError(t, err)
		m := nats.NewMsg(schemas.EventSubject(e.App, e.Subject))
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		m.Data = b
		_, err = env.js.PublishMsg(ctx, m)
		require.NoError(t, err)
	}
	stop := startDetect(t, env.js)

	var shared struct {
		Networks []sharedNetwork `json:"networks"`
		Units    []struct {
			Unit     string `json:"unit"`
			Networks int    `json:"networks"`
		} `json:"units"`
	}
	poll.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		rec := env.get(t, "/api/v1/networks/shared?app=shop")
		if rec.Code != http.StatusOK {
			return fmt.Errorf("status %d: %s", rec.Code, rec.Body.String())
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &shared); err != nil {
			return err
		}
		if len(shared.Networks) == 0 {
			return fmt.Errorf("nothing published yet: %s", rec.Body.String())
		}
		return nil
	})
	require.Len(t, shared.Networks, 1)
	n := shared.Networks[0]
	require.Equal(t, []string{"shop"}, n.Apps)
	require.Equal(t, netOffice, n.Prefix)
	require.Equal(t, uint32(8), n.Succeeded)
	require.NotEmpty(t, n.Why)
	require.Equal(t, []string{"all"}, n.Units)
	require.Equal(t, "all", shared.Units[0].Unit)

	rec := env.get(t, "/api/v1/networks/shared?app=bank")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `[]`, string(mustField(t, rec.Body.Bytes(), "networks")), "the app filter applies")

	rec = env.get(t, "/api/v1/subjects/"+url.PathEscape(netOwner)+"/familiar?app=shop")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var fam struct {
		Subject  string                 `json:"subject"`
		Unit     string                 `json:"unit"`
		Familiar detect.FamiliarSubject `json:"familiar"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fam))
	require.Equal(t, netOwner, fam.Subject)
	require.Equal(t, "all", fam.Unit)
	require.Len(t, fam.Familiar.Networks, 1)
	home := fam.Familiar.Networks[0]
	require.Equal(t, netHome, home.Prefix)
	require.True(t, home.Familiar)
	require.Equal(t, 3, home.Hours)
	require.Contains(t, home.Why, "active in 3 different hours")
	require.Contains(t, home.Why, "familiar from 2 hours")
	require.Len(t, fam.Familiar.Devices, 1)
	require.NotContains(t, rec.Body.String(), "FamiliarLaptop", "a device only as a short hash")

	rec = env.get(t, "/api/v1/subjects/not-a-pseudonym!/familiar")
	require.Equal(t, http.StatusBadRequest, rec.Code)

	page := env.get(t, "/networks?subject="+url.QueryEscape(netOwner)+"&app=shop")
	require.Equal(t, http.StatusOK, page.Code, page.Body.String())
	body := page.Body.String()
	require.Contains(t, body, netOffice)
	require.Contains(t, body, `href="/suppressions?app=shop&amp;detector=impossible_travel&amp;ip_prefix=198.51.100.0%2F24">Suppress for this network</a>`)
	require.Contains(t, body, netHome)
	require.Contains(t, body, "familiar from 2 hours")

	// The link opens the suppression form, prefilled.
	form := env.get(t, "/suppressions?app=shop&detector=impossible_travel&ip_prefix=198.51.100.0%2F24")
	require.Equal(t, http.StatusOK, form.Code)
	require.Contains(t, form.Body.String(), `name="ip_prefix" value="198.51.100.0/24"`)
	require.Contains(t, form.Body.String(), `name="detector" value="impossible_travel"`)

	stop()
	rec = env.get(t, "/api/v1/subjects/"+url.PathEscape(netOwner)+"/familiar")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "no detect process")
	page = env.get(t, "/networks?subject="+url.QueryEscape(netOwner))
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body.String(), "no detect process answered")
}

// mustField returns the raw JSON of body's field.
func mustField(t *testing.T, body []byte, field string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	return m[field]
}

// TestFamiliarNetworksViewerMayRead: triage information, open to viewers.
func TestFamiliarNetworksViewerMayRead(t *testing.T) {
	env := newPagesEnvAt(t, time.Now)
	tok, _, err := env.s.h.auth.tokens.create(t.Context(), apiToken{Name: "viewer", Role: RoleViewer,
		Created: env.now, Expires: env.now.Add(time.Hour), CreatedBy: "adam"})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/api/v1/networks/shared", http.NoBody)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	env.s.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"networks":[],"units":[]}`, rec.Body.String(), "nothing published: empty lists")
}

// seedGoldenNetworks publishes a fixed list of shared egresses, as a
// detect engine does.
func seedGoldenNetworks(t *testing.T, env *pagesEnv) {
	t.Helper()
	kv, err := natsconn.EnsureNetworkBucket(t.Context(), env.js, 1)
	require.NoError(t, err)
	at := func(d time.Duration) time.Time { return env.now.Add(-d).UTC() }
	for _, l := range []detect.NetworkList{
		{UpdatedAt: at(10 * time.Second), Unit: "p0", Networks: []detect.SharedEgress{
			{Apps: []string{"shop"}, Prefix: "198.51.100.0/24", ASN: 64501, Since: at(20 * time.Hour), First: at(21 * time.Hour), Last: at(time.Minute),
				Succeeded: 120, Failed: 3, Why: "at least 8 signed-in accounts used it within 40m (123 sign-ins, 2% failed)"},
			{Apps: []string{"bank", "shop"}, Prefix: "2001:db8:1::/48", Since: at(30 * time.Hour), First: at(31 * time.Hour), Last: at(time.Hour),
				Succeeded: 40, Why: "at least 8 signed-in accounts used it within 1h (40 sign-ins, 0% failed) " + hostile},
		}},
		{UpdatedAt: at(20 * time.Second), Unit: "p1", Networks: []detect.SharedEgress{
			{Apps: []string{"crm"}, Prefix: "198.51.100.0/24", ASN: 64501, Since: at(22 * time.Hour), First: at(23 * time.Hour), Last: at(2 * time.Minute),
				Succeeded: 90, Why: "fewer"},
		}},
	} {
		b, err := json.Marshal(l)
		require.NoError(t, err)
		_, err = kv.Put(t.Context(), detect.NetworkListKey(l.Unit), b)
		require.NoError(t, err)
	}
}

// answerFamiliarFrom answers familiarity requests on nc from an engine
// that saw events, as a detect process owning every partition does.
func answerFamiliarFrom(t *testing.T, nc *nats.Conn, events []*schemas.Event) {
	t.Helper()
	dcfg := detect.DefaultConfig()
	dets, err := detect.NewDetectors(dcfg)
	require.NoError(t, err)
	eng, err := detect.NewEngine(dcfg, dets)
	require.NoError(t, err)
	for _, e := range events {
		eng.Process(e)
	}
	eng.Flush()
	// The client runs the handler one message at a time: the engine has
	// one user.
	sub, err := nc.Subscribe(schemas.DetectFamiliarSubject, func(m *nats.Msg) {
		var req detect.FamiliarRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return
		}
		b, _ := json.Marshal(detect.FamiliarReply{Process: "test", Unit: "all", Familiar: eng.Familiar(req.Subject)})
		_ = m.Respond(b)
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
}
