package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// TestLoginBruteForceRaisesAlerts attacks the dashboard's own sign-in on a
// real pipeline (embedded NATS with the events and alerts streams,
// ClickHouse, the live detection service with its default configuration):
// password guessing against one account, then a list of user names tried
// from one address. The dashboard answers 429 once its limits are reached,
// and its self-monitoring events (app sessionmon-dashboard) make
// sessionmon raise brute_force for the account and credential_stuffing for
// the address, on the alerts stream.
// defaultBruteForceThreshold is the default threshold of detect's
// brute_force: failed logins of one subject within 10 minutes.
const defaultBruteForceThreshold = 10

func TestLoginBruteForceRaisesAlerts(t *testing.T) {
	t.Parallel()
	store := chtest.New(t)
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	_, err := natsconn.EnsureEventStream(t.Context(), js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	sc := detect.DefaultServiceConfig()
	_, err = natsconn.EnsureAlertStream(t.Context(), js, sc.Alerts)
	require.NoError(t, err)
	sc.Partitions = detect.Partitions{Count: natsconn.DefaultStreamConfig.Partitions}
	// The configuration of a config file without a detect: section.
	dc, err := detect.ParseConfig(nil)
	require.NoError(t, err)
	det, err := detect.NewService(js, sc, dc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := det.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("detect: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	monitor, err := sdk.NewClient(nc, sdk.WithApp(MonitorApp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = monitor.Close(context.Background()) })
	cfg := DefaultConfig()
	cfg.Users = []User{{Name: "alice", Role: RoleAdmin, PasswordHash: hashPasswordWith(testPassword, 8, 1, 1)}}
	s, err := New(t.Context(), cfg, Deps{Store: store, JS: js, Monitor: monitor, PseudonymKey: []byte("a dashboard pseudonym key of 32+ bytes")})
	require.NoError(t, err)

	// Password guessing against alice from one address: 401 up to the
	// per-user limit, then 429 with Retry-After, even for the right
	// password.
	const guesser, stuffer = "192.0.2.10:40000", "198.51.100.7:50000"
	for i := range loginFailsPerUser {
		rec := signIn(t, s, guesser, "alice", "Winter2026!"+strconv.Itoa(i))
		require.Equal(t, http.StatusUnauthorized, rec.Code, "guess %d", i+1)
	}
	for i := range defaultBruteForceThreshold {
		rec := signIn(t, s, guesser, "alice", "Spring2026!"+strconv.Itoa(i))
		require.Equal(t, http.StatusTooManyRequests, rec.Code, "guess %d past the limit", loginFailsPerUser+i+1)
		retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
		require.NoError(t, err, "Retry-After")
		require.Positive(t, retry)
		require.LessOrEqual(t, retry, int(loginWindow/time.Second))
	}
	rec := signIn(t, s, guesser, "alice", testPassword)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "the right password is refused too while the account is limited")
	require.Empty(t, sessionSet(s, rec), "no session while limited")

	// One address trying many user names: 401 up to the per-source limit,
	// then 429 for every name, known or not.
	for i := range loginFailsPerIP + 5 {
		rec := signIn(t, s, stuffer, fmt.Sprintf("user%02d", i), "hunter2")
		want := http.StatusUnauthorized
		if i >= loginFailsPerIP {
			want = http.StatusTooManyRequests
		}
		require.Equal(t, want, rec.Code, "name %d from one address", i+1)
	}

	// sessionmon sees its own dashboard attacked.
	alice := s.h.auth.mon.pz.Subject("alice").String()
	alerts := watchAlerts(t, js)
	poll.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		got := alerts()
		var bruteForce, stuffing bool
		for _, a := range got {
			if a.App != MonitorApp {
				continue
			}
			switch a.Detector {
			case "brute_force":
				bruteForce = bruteForce || a.Subject == alice
			case "credential_stuffing":
				stuffing = stuffing || (a.Source != nil && a.Source.IPPrefix == "198.51.100.0/24")
			}
		}
		if !bruteForce || !stuffing {
			return fmt.Errorf("brute_force for alice: %t, credential_stuffing from 198.51.100.0/24: %t (alerts: %+v)", bruteForce, stuffing, got)
		}
		return nil
	})
	for _, a := range alerts() {
		if a.App == MonitorApp && a.Detector == "brute_force" {
			require.NotContains(t, a.Summary+a.Subject, "alice", "the alert names the account by its pseudonym only")
		}
	}
}

// watchAlerts reads the alerts stream from its start; the returned func
// returns the alerts read so far.
func watchAlerts(t *testing.T, js jetstream.JetStream) func() []schemas.Alert {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), schemas.AlertStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.AlertSubjectPrefix + ">"},
	})
	require.NoError(t, err)
	var got []schemas.Alert
	return func() []schemas.Alert {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Logf("fetch alerts: %v", err)
			return got
		}
		for m := range batch.Messages() {
			var a schemas.Alert
			if err := json.Unmarshal(m.Data(), &a); err == nil && a.Detector != "" {
				got = append(got, a)
			}
		}
		return got
	}
}

// signIn loads the sign-in page and posts the form from remoteAddr, as a
// browser there does; it returns the answer to the POST.
func signIn(t *testing.T, s *Server, remoteAddr, user, password string) *httptest.ResponseRecorder {
	t.Helper()
	send := func(method, target string, form url.Values, cookies []*http.Cookie) *httptest.ResponseRecorder {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(form.Encode()))
		req.RemoteAddr = remoteAddr
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	page := send(http.MethodGet, "/login", nil, nil)
	require.Equal(t, http.StatusOK, page.Code)
	var token string
	for _, c := range page.Result().Cookies() {
		if c.Name == s.h.auth.loginCookieName {
			token = c.Value
		}
	}
	require.NotEmpty(t, token, "the sign-in page sets its CSRF cookie")
	return send(http.MethodPost, "/login", url.Values{"csrf_token": {token}, "username": {user}, "password": {password}},
		[]*http.Cookie{{Name: s.h.auth.loginCookieName, Value: token}})
}

// sessionSet returns the session cookie rec sets, "" if none.
func sessionSet(s *Server, rec *httptest.ResponseRecorder) string {
	for _, c := range rec.Result().Cookies() {
		if c.Name == s.h.auth.cookieName && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}
