package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/demo"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/internal/testutil/chtest"
	"github.com/sessionmon/sessionmon/internal/testutil/natstest"
	"github.com/sessionmon/sessionmon/internal/testutil/poll"
	"github.com/sessionmon/sessionmon/internal/testutil/repo"
	"github.com/sessionmon/sessionmon/sdk"
)

// EnvScreenshots, set to 1, makes TestBrowserTriage save its screenshots
// under docs/screenshots (docs/dashboard.md shows them).
const EnvScreenshots = "SESSIONMON_SCREENSHOTS"

// stack is the whole pipeline in process: embedded NATS, ingest and detect
// on a real ClickHouse, and the dashboard on a loopback port.
type stack struct {
	url   string
	store *chstore.Store
}

// startStack runs the pipeline until the test ends.
func startStack(t *testing.T, users []dashboard.User) (*stack, *sdk.Client) {
	t.Helper()
	store := chtest.New(t)
	dsn := chtest.DSN(t)
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := t.Context()
	_, err := natsconn.EnsureEventStream(ctx, js, natsconn.DefaultStreamConfig)
	require.NoError(t, err)
	_, err = natsconn.EnsureAlertStream(ctx, js, natsconn.DefaultAlertStreamConfig)
	require.NoError(t, err)

	ic := ingest.DefaultConfig()
	ic.BatchAge = 100 * time.Millisecond
	ing, err := ingest.New(js, dsn, ic)
	require.NoError(t, err)
	dc, err := detect.ParseConfig(nil)
	require.NoError(t, err)
	det, err := detect.NewService(js, detect.DefaultServiceConfig(), dc)
	require.NoError(t, err)
	ac := ingest.DefaultAlertConfig()
	ac.BatchAge = 100 * time.Millisecond
	alerts, err := ingest.NewAlerts(js, dsn, ac)
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := dashboard.DefaultConfig()
	cfg.Addr = ln.Addr().String()
	cfg.InsecureDevCookies = true // plain http on loopback
	cfg.Users = users
	monitor, err := sdk.NewClient(nc, sdk.WithApp("sessionmon-dashboard"))
	require.NoError(t, err)
	srv, err := dashboard.New(ctx, cfg, dashboard.Deps{Store: store, JS: js, Monitor: monitor})
	require.NoError(t, err)

	apps, err := sdk.NewClient(nc, sdk.WithApp(demo.App), sdk.WithAsyncBuffer(4096), sdk.WithBlockOnFull(30*time.Second))
	require.NoError(t, err)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return ing.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	g.Go(func() error { return det.Run(gctx) })
	g.Go(func() error { return srv.Serve(gctx, ln) })
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		require.NoError(t, apps.Close(cctx))
		require.NoError(t, monitor.Close(cctx))
		cancel()
		if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("pipeline: %v", err)
		}
	})
	return &stack{url: "http://" + cfg.Addr, store: store}, apps
}

// chromium returns the path of Debian's chromium, or skips the test (fails
// it with CI=true) when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: apt-get install -y chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts headless chromium; it is stopped when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first Do starts the browser; it must not carry a timeout.
	require.NoError(t, chromedp.Do(bctx), "start chromium")
	return bctx
}

// step runs browser actions with a deadline, failing the test on error.
func step(t *testing.T, bctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...), what)
}

// value runs one browser action that returns a value.
func value[T any](t *testing.T, bctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err, what)
	return v
}

// screenshot saves the viewport as docs/screenshots/<name>.png when
// SESSIONMON_SCREENSHOTS=1.
func screenshot(t *testing.T, bctx context.Context, name string) {
	t.Helper()
	if os.Getenv(EnvScreenshots) != "1" {
		return
	}
	png := value(t, bctx, "screenshot "+name, chromedp.CaptureScreenshot())
	root, err := repo.Root()
	require.NoError(t, err)
	dir := filepath.Join(root, "docs", "screenshots")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

func cookies(t *testing.T, bctx context.Context, url string) []*network.Cookie {
	t.Helper()
	return value(t, bctx, "read cookies", func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		return res.Cookies, err
	})
}

// TestBrowserTriage drives the dashboard in headless Chromium over the
// real pipeline: demo traffic raises an impossible travel alert; an analyst
// signs in, finds it in the list, opens its detail and map, acknowledges
// it, sees the new status, signs out, and the old session cookie is dead.
func TestBrowserTriage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short (scripts/test.sh runs it with the long tests)")
	}
	chromium(t)
	const user, password = "ana-analyst", "correct horse battery staple"
	hash, err := dashboard.HashPassword(password)
	require.NoError(t, err)
	st, apps := startStack(t, []dashboard.User{{Name: user, Role: dashboard.RoleAnalyst, PasswordHash: hash}})

	// Demo traffic: ordinary users plus every attack, dated over the last
	// hours, published as fast as the stream takes it.
	_, err = demo.Run(t.Context(), apps, demo.Options{Users: 20, Seed: 1}, 50000, 0, nil)
	require.NoError(t, err)
	var alert chstore.AlertRow
	poll.CheckFor(t, 90*time.Second, 250*time.Millisecond, func() error {
		rows, err := st.store.AlertsSince(t.Context(), time.Now().Add(-48*time.Hour), 1000)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Detector == "impossible_travel" {
				alert = r
				return nil
			}
		}
		n, _ := st.store.CountEvents(t.Context())
		return fmt.Errorf("no impossible_travel alert among %d alerts yet (%d events stored)", len(rows), n)
	})

	b := newBrowser(t)

	// Anonymous: the alerts page sends us to sign in, and back afterwards.
	step(t, b, "open alerts anonymously",
		chromedp.Navigate(st.url+"/alerts?detector=impossible_travel"),
		chromedp.WaitVisible(`input[name="username"]`),
	)
	require.Contains(t, value(t, b, "location", chromedp.Location()), "/login")
	screenshot(t, b, "login")
	step(t, b, "sign in",
		chromedp.SendKeys(`input[name="username"]`, user),
		chromedp.SendKeys(`input[name="password"]`, password),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`table.alerts`),
	)
	loc := value(t, b, "location", chromedp.Location())
	require.Contains(t, loc, "/alerts?detector=impossible_travel", "sign-in returns to the page asked for")
	session := sessionCookie(t, cookies(t, b, st.url))

	// The alert is in the list; the overview shows the pipeline.
	link := fmt.Sprintf(`a[href="/alerts/%s"]`, alert.ID)
	step(t, b, "find the alert in the list", chromedp.WaitVisible(link))
	screenshot(t, b, "alerts")
	step(t, b, "overview", chromedp.Navigate(st.url+"/"), chromedp.WaitVisible(`main`))
	screenshot(t, b, "overview")

	// Its detail, with the map of both points.
	step(t, b, "open the alert",
		chromedp.Navigate(st.url+"/alerts?detector=impossible_travel"),
		chromedp.Click(link),
		chromedp.WaitVisible(`svg.map`),
	)
	title := value(t, b, "alert title", chromedp.Text(`h1`))
	require.Contains(t, title, alert.Title)
	require.Contains(t, title, "open")
	mapLabel := value(t, b, "map label", chromedp.Evaluate[string](`document.querySelector("svg.map").getAttribute("aria-label")`))
	from, to, ok := strings.Cut(strings.TrimPrefix(mapLabel, "From "), " to ")
	require.True(t, ok, "map label %q names both places", mapLabel)
	require.NotEqual(t, from, to, "the two points of an impossible travel")
	points := value(t, b, "map points", chromedp.Evaluate[int](`document.querySelectorAll("svg.map circle.point").length`))
	require.Equal(t, 2, points, "both points on the map")
	facts := value(t, b, "map facts", chromedp.Text(`svg.map + dl.facts`))
	require.Contains(t, facts, "km/h", "the implied speed")
	screenshot(t, b, "alert-detail")

	// Acknowledge it with a comment; the page shows the new status and the
	// history names the analyst.
	step(t, b, "acknowledge",
		chromedp.SetValue(`select[name="status"]`, "acknowledged"),
		chromedp.SendKeys(`textarea[name="comment"]`, "travelling? asked the user"),
		chromedp.Submit(`textarea[name="comment"]`),
	)
	// The status change goes through the alerts stream into ClickHouse.
	poll.CheckFor(t, 20*time.Second, 250*time.Millisecond, func() error {
		history, err := st.store.AlertStatusHistory(t.Context(), alert.ID)
		if err != nil {
			return err
		}
		if len(history) == 0 || history[len(history)-1].Status != "acknowledged" {
			return fmt.Errorf("alert status history: %+v", history)
		}
		return nil
	})
	step(t, b, "reload the alert", chromedp.Navigate(st.url+"/alerts/"+alert.ID), chromedp.WaitVisible(`svg.map`))
	require.Contains(t, value(t, b, "alert title", chromedp.Text(`h1`)), "acknowledged")
	body := value(t, b, "page text", chromedp.Text(`main`))
	require.Contains(t, body, "travelling? asked the user")
	require.Contains(t, body, user)
	screenshot(t, b, "after-ack")
	history, err := st.store.AlertStatusHistory(t.Context(), alert.ID)
	require.NoError(t, err)
	require.NotEmpty(t, history)
	last := history[len(history)-1]
	require.Equal(t, "acknowledged", last.Status)
	require.Equal(t, user, last.Actor)

	// Sign out: the browser is back at the sign-in page, and the old
	// session cookie no longer opens anything.
	step(t, b, "sign out",
		chromedp.Click(`form[action="/logout"] button`),
		chromedp.WaitVisible(`input[name="username"]`),
	)
	for _, c := range cookies(t, b, st.url) {
		require.NotEqual(t, session.Name, c.Name, "the session cookie is cleared")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, st.url+"/alerts", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a logged-out session cookie must not work")
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/login"), "Location %q", resp.Header.Get("Location"))
}

// sessionCookie finds the dashboard's session cookie (the dev name: the
// test serves plain http) and checks its attributes.
func sessionCookie(t *testing.T, cs []*network.Cookie) *network.Cookie {
	t.Helper()
	for _, c := range cs {
		if c.Name == "sessionmon" {
			require.True(t, c.HTTPOnly, "session cookie HttpOnly")
			require.Equal(t, network.CookieSameSiteStrict, c.SameSite)
			require.Equal(t, "/", c.Path)
			return c
		}
	}
	t.Fatalf("no session cookie after sign-in (cookies: %d)", len(cs))
	return nil
}
