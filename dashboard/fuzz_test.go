package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/schemas"
)

// Fuzz targets of the dashboard's query and path parameters and of its
// redirect targets. Their seed corpora are in testdata/fuzz/<FuzzName>/;
// scripts/test.sh runs each for FUZZTIME. The pure targets need no server;
// FuzzLoginRedirect needs an embedded NATS server (sessions) and
// FuzzAPIParams ClickHouse too (it skips without one, like chtest does).

// fuzzNow is the clock of the pure targets.
var fuzzNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// alertFilterParams are the parameters parseAlertFilter reads, hence the
// only ones its errors may name.
var alertFilterParams = []string{"from", "to", "severity", "detector", "app", "status", "subject", "session", "cursor", "limit"}

// FuzzAlertFilter checks parseAlertFilter on any query string: it never
// panics, an invalid query gives a *paramError naming a parameter of the
// query, and a valid one gives a filter within the documented bounds
// (those the store also demands, so the store never answers a filter the
// dashboard accepted with an error that names no parameter).
func FuzzAlertFilter(f *testing.F) {
	f.Add("")
	f.Add("severity=high,critical&status=open&limit=1000")
	f.Fuzz(func(t *testing.T, raw string) {
		// ParseQuery keeps what it could parse next to its error, as
		// echo's QueryParams does.
		q, _ := url.ParseQuery(raw)
		fl, err := parseAlertFilter(q, fuzzNow)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("query %q: error %v (%T) names no parameter", raw, err, err)
			}
			if !slices.Contains(alertFilterParams, pe.Field) {
				t.Fatalf("query %q: error names %q, not a parameter of the alert list", raw, pe.Field)
			}
			// The parameter named was given, or it is from, whose default
			// depends on the to given.
			if _, given := q[pe.Field]; !given && (pe.Field != "from" || q.Get("to") == "") {
				t.Fatalf("query %q: error names %q, which the query does not have: %v", raw, pe.Field, err)
			}
			if pe.Reason == "" || !strings.HasPrefix(err.Error(), pe.Field+": ") {
				t.Fatalf("query %q: error %q does not say what is wrong with %s", raw, err, pe.Field)
			}
			return
		}
		checkAlertFilter(t, raw, q, fl)
	})
}

// checkAlertFilter checks the bounds of a filter parseAlertFilter
// accepted.
func checkAlertFilter(t *testing.T, raw string, q url.Values, fl chstore.AlertFilter) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("query %q: accepted filter %+v: "+format, append([]any{raw, fl}, args...)...)
	}
	if fl.Limit < 1 || fl.Limit > maxPageSize || fl.Limit > chstore.MaxAlertPage {
		fail("limit %d out of 1..%d", fl.Limit, maxPageSize)
	}
	if q.Get("limit") == "" && fl.Limit != defaultPageSize {
		fail("limit %d without a limit parameter, want %d", fl.Limit, defaultPageSize)
	}
	if fl.From.IsZero() || fl.To.IsZero() || !fl.From.Before(fl.To) {
		fail("from %s is not before to %s", fl.From, fl.To)
	}
	for _, tm := range []time.Time{fl.From, fl.To} {
		if tm.Before(minQueryTime) || !tm.Before(maxQueryTime) {
			fail("time %s outside what ClickHouse's DateTime holds (%s to %s)", tm, minQueryTime, maxQueryTime)
		}
	}
	for _, s := range fl.Severities {
		if !slices.Contains(severities, s) {
			fail("unknown severity %q", s)
		}
	}
	for _, s := range fl.Statuses {
		if !slices.Contains(alertStatuses, s) {
			fail("unknown status %q", s)
		}
	}
	for _, d := range fl.Detectors {
		if !detectorPattern.MatchString(d) {
			fail("detector %q is no detector name", d)
		}
	}
	for _, a := range fl.Apps {
		if !schemas.ValidApp(a) {
			fail("app %q is no app name", a)
		}
	}
	for _, list := range [][]string{fl.Severities, fl.Statuses, fl.Detectors, fl.Apps} {
		if len(slices.Compact(slices.Sorted(slices.Values(list)))) != len(list) {
			fail("duplicate values in %q", list)
		}
	}
	for name, v := range map[string]string{"subject": fl.Subject, "session": fl.Session} {
		if v != "" && !schemas.ValidPseudonym(v) {
			fail("%s %q is no pseudonym", name, v)
		}
	}
	if fl.Cursor != "" && !cursorPattern.MatchString(fl.Cursor) {
		fail("cursor %q does not look like a cursor", fl.Cursor)
	}
}

// leavesSite reports whether a browser on the dashboard, answered with
// Location loc, would leave its origin. It reads loc as the WHATWG URL
// parser does for an https page: tabs and newlines are removed, leading and
// trailing C0 controls and spaces trimmed, and a backslash is a slash; then
// only "/" followed by something else than a slash is a path on the same
// origin ("//host", "///host", "scheme:..." are not, nor, to be safe, a
// relative path).
func leavesSite(loc string) bool {
	loc = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, loc)
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
	return !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//")
}

// checkLocalRedirect fails unless loc, a Location header, keeps a browser
// on the dashboard's origin, also once percent-decoded (a proxy in front
// of the dashboard may decode "/%2F/evil.com" into "//evil.com").
func checkLocalRedirect(t *testing.T, input, loc string) {
	t.Helper()
	if loc == "" || loc[0] != '/' || strings.ContainsAny(loc, "\\\r\n\t") || leavesSite(loc) {
		t.Fatalf("next %q: redirect to %q leaves the site", input, loc)
	}
	dec, err := url.PathUnescape(loc)
	if err != nil {
		t.Fatalf("next %q: redirect to %q is not a valid escaped path: %v", input, loc, err)
	}
	if leavesSite(dec) {
		t.Fatalf("next %q: redirect to %q leaves the site once decoded (%q)", input, loc, dec)
	}
}

// FuzzRedirectPath checks that redirectPath returns a path on this site,
// and next itself whenever it returns something else than "/".
func FuzzRedirectPath(f *testing.F) {
	f.Add("/alerts?severity=high")
	f.Add("//evil.com")
	f.Fuzz(func(t *testing.T, next string) {
		got := redirectPath(next)
		if got != "/" && got != next {
			t.Fatalf("redirectPath(%q) = %q: want next itself or /", next, got)
		}
		checkLocalRedirect(t, next, got)
	})
}

// FuzzLoginRedirect signs in, reloads the sign-in page and
// re-authenticates through the real handlers with next as the redirect
// target: every redirect stays on the site.
func FuzzLoginRedirect(f *testing.F) {
	f.Add("/alerts")
	f.Add("/\\evil.com")
	env := newFuzzAuthEnv(f)
	f.Fuzz(func(t *testing.T, next string) {
		b := env.browser(t)
		rec := b.do(http.MethodGet, "/login?next="+url.QueryEscape(next), nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /login?next=%q: %d %s", next, rec.Code, rec.Body)
		}
		token := b.cookies[env.s.h.auth.loginCookieName]
		rec = b.do(http.MethodPost, "/login", url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {testPassword}, "next": {next}})
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("POST /login next=%q: %d, want 303", next, rec.Code)
		}
		checkLocalRedirect(t, next, rec.Header().Get(echo.HeaderLocation))

		// Signed in, the sign-in page sends the user on to next.
		rec = b.do(http.MethodGet, "/login?next="+url.QueryEscape(next), nil)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("GET /login?next=%q signed in: %d, want 303", next, rec.Code)
		}
		checkLocalRedirect(t, next, rec.Header().Get(echo.HeaderLocation))

		rec = b.do(http.MethodPost, "/reauth", url.Values{"csrf_token": {b.csrf()}, "password": {testPassword}, "next": {next}})
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("POST /reauth next=%q: %d, want 303: %s", next, rec.Code, rec.Body)
		}
		checkLocalRedirect(t, next, rec.Header().Get(echo.HeaderLocation))
	})
}

// newFuzzAuthEnv is newAuthEnv for a fuzz target: a dashboard on an
// embedded NATS server with the users alice and bob.
func newFuzzAuthEnv(f *testing.F) *authEnv {
	f.Helper()
	_, js := natstest.Connect(f, natstest.RunServer(f))
	cfg := DefaultConfig()
	cfg.Users = []User{{Name: "alice", Role: RoleAdmin, PasswordHash: hashPasswordWith(testPassword, 8, 1, 1)}}
	clock := &testClock{}
	s, err := New(f.Context(), cfg, Deps{JS: js, Now: clock.nowFunc()})
	if err != nil {
		f.Fatalf("dashboard: %v", err)
	}
	return &authEnv{s: s, clock: clock, js: js}
}

// FuzzSubjectParam routes /subjects/<segment> through echo, as the
// dashboard does, and checks subjectParam: a *paramError naming subject,
// or the unescaped segment, which is a pseudonym.
func FuzzSubjectParam(f *testing.F) {
	f.Add("k1:AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("k1%3AAAAAAAAAAAAAAAAAAAAAAA")
	e := echo.New()
	var (
		got    string
		gotErr error
	)
	e.GET("/subjects/:subject", func(c echo.Context) error {
		got, gotErr = subjectParam(c)
		return nil
	})
	f.Fuzz(func(t *testing.T, seg string) {
		if seg == "" || strings.ContainsAny(seg, "/?#") {
			t.Skip("not one path segment")
		}
		got, gotErr = "", nil
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		// The segment as the client sent it, escapes and all.
		req.URL.RawPath = "/subjects/" + seg
		req.URL.Path = req.URL.RawPath
		if p, err := url.PathUnescape(req.URL.RawPath); err == nil {
			req.URL.Path = p
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("segment %q: not routed: %d", seg, rec.Code)
		}
		if gotErr != nil {
			var pe *paramError
			if !errors.As(gotErr, &pe) || pe.Field != "subject" {
				t.Fatalf("segment %q: error %v does not name subject", seg, gotErr)
			}
			return
		}
		if !schemas.ValidPseudonym(got) {
			t.Fatalf("segment %q: accepted %q, which is no pseudonym", seg, got)
		}
		if want, err := url.PathUnescape(seg); err != nil || want != got {
			t.Fatalf("segment %q: accepted %q, want its unescaped form %q (%v)", seg, got, want, err)
		}
	})
}

// apiParams are the parameters the API calls of FuzzAPIParams read.
var apiParams = append([]string{"id"}, alertFilterParams...)

// FuzzAPIParams sends GET /api/v1/alerts?<query>, GET
// /api/v1/subjects/<segment>?<query> and GET /api/v1/sessions/<segment>
// to the dashboard on real ClickHouse: whatever the parameters, the answer
// is 200 (404 for an unknown session) or a 400 whose body names the
// parameter at fault, never a 500
// (which would mean the store refused what the dashboard let through).
// It covers what the pure targets cannot: the cursor, which only the store
// decodes.
func FuzzAPIParams(f *testing.F) {
	f.Add(uint8(0), "", "cursor=djEuMTcwMDAwMDAwMDAwMC4wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMQ")
	f.Add(uint8(1), "k1:AAAAAAAAAAAAAAAAAAAAAA", "from=1970-01-01T00:00:00Z")
	store := chtest.New(f)
	_, js := natstest.Connect(f, natstest.RunServer(f))
	cfg := DefaultConfig()
	// The token's creator: a token works only while its creator exists.
	cfg.Users = []User{{Name: "fuzz", Role: RoleViewer, PasswordHash: hashPasswordWith("unused-fuzz", 8, 1, 1)}}
	s, err := New(f.Context(), cfg, Deps{Store: store, JS: js})
	if err != nil {
		f.Fatalf("dashboard: %v", err)
	}
	now := time.Now()
	bearer, _, err := s.h.auth.tokens.create(f.Context(), apiToken{Name: "fuzz", Role: RoleViewer,
		Created: now, Expires: now.Add(24 * time.Hour), CreatedBy: "fuzz"})
	if err != nil {
		f.Fatalf("api token: %v", err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, seg, query string) {
		var path string
		switch kind % 3 {
		case 0:
			path = "/api/v1/alerts"
		case 1:
			path = "/api/v1/subjects/"
		case 2:
			path = "/api/v1/sessions/"
		}
		if kind%3 != 0 {
			if seg == "" || strings.ContainsAny(seg, "/?#") {
				t.Skip("not one path segment")
			}
			path += seg
		}
		if strings.ContainsAny(query, "#") || strings.ContainsFunc(path+query, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Skip("not sendable in a request line")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		req.URL.RawPath, req.URL.RawQuery = path, query
		req.URL.Path = path
		if p, err := url.PathUnescape(path); err == nil {
			req.URL.Path = p
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNotFound:
			if kind%3 == 0 {
				t.Fatalf("GET %s?%s: 404 %s", path, query, rec.Body)
			}
		case http.StatusOK:
			if kind%3 == 0 {
				var body alertListJSON
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !body.From.Before(body.To) {
					t.Fatalf("GET %s?%s: 200 with %s (%v)", path, query, rec.Body, err)
				}
			}
		case http.StatusBadRequest:
			var body apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !slices.Contains(apiParams, body.Field) {
				t.Fatalf("GET %s?%s: 400 naming no parameter: %s", path, query, rec.Body)
			}
		default:
			t.Fatalf("GET %s?%s: %d %s", path, query, rec.Code, rec.Body)
		}
	})
}
