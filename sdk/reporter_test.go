package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionmon/sessionmon/sdk"
	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

// fakePublisher keeps the JSON of what it is given, as a Client would
// send it, or refuses with err.
type fakePublisher struct {
	mu     sync.Mutex
	events []map[string]any
	err    error
}

func (f *fakePublisher) PublishAsync(_ context.Context, ev *sdk.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	data, err := ev.MarshalJSONFor(testApp)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	f.events = append(f.events, m)
	return nil
}

func (f *fakePublisher) taken() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.events
	f.events = nil
	return out
}

// cookieValue reads a cookie of r, or "".
func cookieValue(name string) func(*http.Request) string {
	return func(r *http.Request) string {
		if c, err := r.Cookie(name); err == nil {
			return c.Value
		}
		return ""
	}
}

func newReporter(t *testing.T, pub sdk.Publisher, opts sdk.ReporterOptions) *sdk.Reporter {
	t.Helper()
	rp, err := sdk.NewReporter(pub, newPseudonymizer(t), opts)
	check.NoError(t, err)
	return rp
}

func request(user, session string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/account", nil)
	r.RemoteAddr = "203.0.113.7:40000"
	r.Header.Set("User-Agent", "Mozilla/5.0")
	if user != "" {
		r.AddCookie(&http.Cookie{Name: "user", Value: user})
	}
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "sid", Value: session})
	}
	r.AddCookie(&http.Cookie{Name: "device", Value: "device-1"})
	return r
}

func TestMiddlewareThrottlesActivity(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	rp := newReporter(t, pub, sdk.ReporterOptions{
		Subject: cookieValue("user"), Session: cookieValue("sid"), Device: cookieValue("device"),
		ActivityInterval: time.Hour,
	})
	served := 0
	h := rp.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++ }))
	serve := func(r *http.Request) { h.ServeHTTP(httptest.NewRecorder(), r) }

	serve(request("alice", "s-1"))
	serve(request("alice", "s-1"))
	serve(request("alice", "s-1"))
	serve(request("alice", "s-2"))
	serve(request("", "s-3")) // not signed in
	serve(request("bob", "")) // no session
	check.Equal(t, 6, served, "every request reaches the handler")

	got := pub.taken()
	check.Len(t, got, 2, "one activity per session within the interval")
	p := newPseudonymizer(t)
	for i, sid := range []string{"s-1", "s-2"} {
		ev := got[i]
		check.Equal(t, "session.activity", ev["type"])
		check.Equal(t, p.Subject("alice").String(), ev["subject"])
		check.Equal(t, p.Session(sid).String(), ev["session"])
		client := ev["client"].(map[string]any)
		check.Equal(t, "203.0.113.0/24", client["ip_prefix"])
		check.Equal(t, p.Device("device-1").String(), client["device"])
		check.Equal(t, "Mozilla/5.0", client["user_agent"])
	}

	// After a logout the session is reported again at once: a request
	// that still uses it is what a detector wants to see.
	check.NoError(t, rp.Logout(request("alice", "s-1"), "alice", "s-1"))
	serve(request("alice", "s-1"))
	got = pub.taken()
	check.Len(t, got, 2)
	check.Equal(t, "session.ended", got[0]["type"])
	check.Equal(t, "logout", got[0]["reason"])
	check.Equal(t, "session.activity", got[1]["type"])
}

func TestMiddlewareReportsRefusals(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{err: sdk.ErrBufferFull}
	var errs []error
	rp := newReporter(t, pub, sdk.ReporterOptions{
		Subject: cookieValue("user"), Session: cookieValue("sid"), ActivityInterval: time.Hour,
		OnError: func(_ *http.Request, err error) { errs = append(errs, err) },
	})
	h := rp.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request("alice", "s-1"))
	check.Equal(t, http.StatusTeapot, w.Code, "a refused event does not fail the request")
	check.Len(t, errs, 1)
	check.ErrorIs(t, errs[0], sdk.ErrBufferFull)

	// An event not handed over is tried again on the next request.
	pub.mu.Lock()
	pub.err = nil
	pub.mu.Unlock()
	h.ServeHTTP(httptest.NewRecorder(), request("alice", "s-1"))
	check.Len(t, pub.taken(), 1)
}

func TestReporterHelpers(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	rp := newReporter(t, pub, sdk.ReporterOptions{Device: cookieValue("device")})
	p := newPseudonymizer(t)
	r := request("", "")
	yes := true

	check.NoError(t, rp.LoginFailed(r, "alice@example.com", "bad_password"))
	check.NoError(t, rp.Login(r, sdk.Login{
		UserID: "uid-1", SessionID: "s-new", PreviousSessionID: "s-old",
		Auth:   &sdk.Auth{Method: "password"},
		Cookie: &sdk.Cookie{Name: "sid", Secure: &yes, HTTPOnly: &yes, SameSite: sdk.SameSiteLax},
		Policy: &sdk.Policy{IdleTimeoutS: 1800},
	}))
	check.NoError(t, rp.Token(r, sdk.TokenIssued, "uid-1", "s-new", sdk.TokenEvent{Token: "eyJ.raw.token", Kind: sdk.TokenAccess, Claims: []string{"sub"}}))
	check.NoError(t, rp.Logout(r, "uid-1", "s-new"))
	var ve *sdk.ValidationError
	check.ErrorAs(t, rp.Login(r, sdk.Login{}), &ve)
	check.Equal(t, []string{"subject", "session"}, ve.Fields())

	got := pub.taken()
	var types []string
	for _, ev := range got {
		types = append(types, ev["type"].(string))
		check.Equal(t, p.Device("device-1").String(), ev["client"].(map[string]any)["device"])
		data, _ := json.Marshal(ev)
		for _, raw := range []string{"alice@example.com", "uid-1", "s-new", "s-old", "eyJ.raw.token", "203.0.113.7", "device-1"} {
			check.False(t, strings.Contains(string(data), raw), "%q was sent", raw)
		}
	}
	check.Equal(t, []string{"login.failed", "login.succeeded", "session.started", "token.issued", "session.ended"}, types)
	check.Equal(t, p.Subject("alice@example.com").String(), got[0]["subject"])
	check.Equal(t, "bad_password", got[0]["reason"])
	check.Equal(t, p.Session("s-old").String(), got[2]["previous_session"])
	check.Equal(t, got[1]["session"], got[2]["session"])
	check.Equal(t, p.TokenID("eyJ.raw.token").String(), got[3]["token"].(map[string]any)["id"])
}

func TestNewReporterRejects(t *testing.T) {
	t.Parallel()
	p := newPseudonymizer(t)
	_, err := sdk.NewReporter(nil, p, sdk.ReporterOptions{})
	check.ErrorIs(t, err, sdk.ErrInvalidOption)
	_, err = sdk.NewReporter(&fakePublisher{}, nil, sdk.ReporterOptions{})
	check.ErrorIs(t, err, sdk.ErrInvalidOption)
	_, err = sdk.NewReporter(&fakePublisher{}, p, sdk.ReporterOptions{ActivityInterval: -time.Second})
	check.ErrorContains(t, err, "ActivityInterval")
}

// TestMiddlewareConcurrent: requests of many goroutines report each
// session exactly once within the interval.
func TestMiddlewareConcurrent(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	rp := newReporter(t, pub, sdk.ReporterOptions{Subject: cookieValue("user"), Session: cookieValue("sid"), ActivityInterval: time.Hour})
	h := rp.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	const workers, sessions = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				h.ServeHTTP(httptest.NewRecorder(), request("alice", fmt.Sprintf("s-%d", (w+i)%sessions)))
			}
		}()
	}
	wg.Wait()
	seen := map[any]int{}
	for _, ev := range pub.taken() {
		seen[ev["session"]]++
	}
	check.Len(t, seen, sessions)
	for s, n := range seen {
		check.Equal(t, 1, n, "session %v", s)
	}
}
