package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/dashboard"
	"github.com/sessionmon/sessionmon/ingest"
	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/internal/natsconn"
	"github.com/sessionmon/sessionmon/schemas"
)

// DashboardDatabase is the ClickHouse database the dashboard benchmark
// fills and drops.
const DashboardDatabase = "sessionmon_bench_dashboard"

// Dashboard benchmark shape: the target is 10 million events and
// 100k alerts; subjects and days as a mid-sized deployment has them.
const (
	benchDashboardDays     = 30
	benchDashboardSubjects = 40_000
	benchDashboardHeavy    = 200
	benchDashboardDupPct   = 1
	// benchDashboardRequests is how many times each page is measured.
	benchDashboardRequests = 50
)

// DashboardConfig shapes a Dashboard run.
type DashboardConfig struct {
	// Events and Alerts are how many distinct events and alerts are
	// seeded.
	Events, Alerts int
	// Reuse measures the data already in the database instead of seeding
	// it again.
	Reuse bool
	// DLQMaxAge is the dead-letter stream's max age (the overview reads
	// the dead letters).
	DLQMaxAge time.Duration
}

// Dashboard seeds store's database (DashboardDatabase) with synthetic
// events and alerts, unless cfg.Reuse, and reports to out the p50, p95
// and max latency of the store queries behind the dashboard's pages, then
// of its HTML pages over HTTP: the real dashboard.Server in this process,
// with its sessions in js, signed in as a generated viewer. logger is the
// dashboard's.
func Dashboard(ctx context.Context, out io.Writer, store *chstore.Store, js jetstream.JetStream, cfg DashboardConfig, logger *slog.Logger) error {
	seed := chstore.DashboardSeed{
		Events: cfg.Events, Alerts: cfg.Alerts, End: time.Now().UTC().Truncate(time.Minute),
		Days: benchDashboardDays, Subjects: benchDashboardSubjects, Heavy: benchDashboardHeavy,
		DuplicatePercent: benchDashboardDupPct,
	}
	if !cfg.Reuse {
		if err := benchDashboardSeed(ctx, out, store, seed); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "reusing the data in %s (SESSIONMON_BENCH_REUSE)\n", DashboardDatabase)
		var err error
		if seed.End, err = store.NewestEventTime(ctx); err != nil {
			return err
		}
	}
	pages := benchDashboardQueries(store, seed.End)
	if err := benchDashboardMeasure(ctx, out, "store queries (chstore, phase 1)", pages); err != nil {
		return err
	}
	return benchDashboardHTTP(ctx, out, store, js, cfg.DLQMaxAge, seed.End, logger)
}

func benchDashboardSeed(ctx context.Context, w io.Writer, store *chstore.Store, seed chstore.DashboardSeed) error {
	if err := store.DropDatabase(ctx); err != nil {
		return err
	}
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "seeding %d events (+%d%% duplicates), %d alerts, %d subjects over %d days into %s...\n",
		seed.Events, seed.DuplicatePercent, seed.Alerts, seed.Subjects, seed.Days, DashboardDatabase)
	start := time.Now()
	err := store.SeedDashboard(ctx, seed, func(n int) {
		fmt.Fprintf(w, "  %d events (%s)\n", n, time.Since(start).Round(time.Second))
	})
	if err != nil {
		return err
	}
	n, err := store.CountEvents(ctx)
	if err != nil {
		return err
	}
	rows, err := store.CountRows(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "seeded in %s: %d distinct events (%d rows stored)\n", time.Since(start).Round(time.Second), n, rows)
	return nil
}

// benchPage is one page (or query) to measure: call runs it once; the
// argument is the request number, to vary what is asked for.
type benchPage struct {
	name string
	call func(ctx context.Context, i int) error
}

// benchDashboardQueries returns the store queries behind the three pages
// of the target, plus the alert detail and session pages for context.
func benchDashboardQueries(store *chstore.Store, end time.Time) []benchPage {
	from := end.Add(-24 * time.Hour)
	return []benchPage{
		{"overview (24 h)", func(ctx context.Context, _ int) error {
			_, err := store.Overview(ctx, from, end)
			return err
		}},
		{"alert list (7 days, 50 a page)", func(ctx context.Context, _ int) error {
			_, err := store.Alerts(ctx, chstore.AlertFilter{From: end.Add(-7 * 24 * time.Hour), To: end, Limit: 50})
			return err
		}},
		{"alert list (open, high+critical, page 2)", func(ctx context.Context, _ int) error {
			f := chstore.AlertFilter{From: end.Add(-30 * 24 * time.Hour), To: end, Limit: 50,
				Severities: []string{"high", "critical"}, Statuses: []string{string(schemas.StatusOpen)}}
			p, err := store.Alerts(ctx, f)
			if err != nil || p.Next == "" {
				return err
			}
			f.Cursor = p.Next
			_, err = store.Alerts(ctx, f)
			return err
		}},
		{"subject (heavy, 30 days)", func(ctx context.Context, i int) error {
			_, err := store.Subject(ctx, chstore.BenchSubject(i%benchDashboardHeavy), end.Add(-30*24*time.Hour), end, 100)
			return err
		}},
		{"subject (typical, 30 days)", func(ctx context.Context, i int) error {
			_, err := store.Subject(ctx, chstore.BenchSubject(benchDashboardHeavy+i*37), end.Add(-30*24*time.Hour), end, 100)
			return err
		}},
	}
}

// benchDashboardMeasure runs each page benchDashboardRequests times (after
// one warm-up) and prints p50, p95 and max.
func benchDashboardMeasure(ctx context.Context, w io.Writer, title string, pages []benchPage) error {
	fmt.Fprintf(w, "\n%s, %d requests each:\n\n", title, benchDashboardRequests)
	fmt.Fprintln(w, "| page | p50 | p95 | max |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, p := range pages {
		if err := p.call(ctx, 0); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		d := make([]time.Duration, benchDashboardRequests)
		for i := range d {
			start := time.Now()
			if err := p.call(ctx, i+1); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", p.name, ms(d[len(d)/2]), ms(d[(len(d)*95+99)/100-1]), ms(d[len(d)-1]))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// benchDashboardHTTP measures the HTML pages of the three target pages
// over HTTP (phase 2): the real dashboard.Server in this process, on a
// loopback port, signed in as a generated viewer through the sign-in form
// and its CSRF token, as a browser does.
func benchDashboardHTTP(ctx context.Context, out io.Writer, store *chstore.Store, js jetstream.JetStream, dlqMaxAge time.Duration, end time.Time, logger *slog.Logger) error {
	password := rand.Text()
	hash, err := dashboard.HashPassword(password)
	if err != nil {
		return fmt.Errorf("bench user: %w", err)
	}
	cfg := dashboard.DefaultConfig()
	cfg.Addr, cfg.InsecureDevCookies = "127.0.0.1:0", true
	cfg.Users = []dashboard.User{{Name: "bench", Role: dashboard.RoleViewer, PasswordHash: hash}}
	// The overview reads the ingest consumer's lag and the dead letters:
	// give it both, as serve has them.
	if _, err := natsconn.EnsureDLQStream(ctx, js, dlqMaxAge, 1); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, schemas.EventStream, jetstream.ConsumerConfig{
		Durable: ingest.DefaultConfig().Durable, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		return fmt.Errorf("bench dashboard: ingest consumer: %w", err)
	}
	srv, err := dashboard.New(ctx, cfg, dashboard.Deps{Store: store, JS: js, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("bench dashboard: listen: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-done
	}()
	base := "http://" + ln.Addr().String()
	client, err := benchSignIn(ctx, base, "bench", password)
	if err != nil {
		return err
	}
	get := func(path string) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			p := strings.ReplaceAll(path, "{heavy}", chstore.BenchSubject(i%benchDashboardHeavy))
			p = strings.ReplaceAll(p, "{typical}", chstore.BenchSubject(benchDashboardHeavy+i*37))
			return benchGet(ctx, client, base+p)
		}
	}
	// The pages' own defaults: 24 h overview, 7 days of alerts, 30 days
	// and 500 events of a subject; the server's clock is now, so the
	// ranges are given to end at the newest seeded event.
	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }
	to := rfc(end)
	pages := []benchPage{
		{"overview (24 h)", get("/?from=" + rfc(end.Add(-24*time.Hour)) + "&to=" + to)},
		{"alert list (7 days)", get("/alerts?from=" + rfc(end.Add(-7*24*time.Hour)) + "&to=" + to)},
		{"subject (heavy, 30 days)", get("/subjects/{heavy}?from=" + rfc(end.Add(-30*24*time.Hour)) + "&to=" + to)},
		{"subject (typical, 30 days)", get("/subjects/{typical}?from=" + rfc(end.Add(-30*24*time.Hour)) + "&to=" + to)},
	}
	return benchDashboardMeasure(ctx, out, "HTML pages over HTTP (dashboard.Server, phase 2)", pages)
}

// benchSignIn signs in through the sign-in form: GET /login sets the
// pre-session CSRF cookie and puts the token in the form; POST /login
// sends it back with the credentials.
func benchSignIn(ctx context.Context, base, user, password string) (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	client := &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/login", nil)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in: GET /login: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("sign in: GET /login: %w", err)
	}
	m := csrfInput.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return nil, fmt.Errorf("sign in: GET /login: status %d, csrf_token found: %t", resp.StatusCode, m != nil)
	}
	form := url.Values{"username": {user}, "password": {password}, "csrf_token": {html.UnescapeString(string(m[1]))}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in: POST /login: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("sign in: POST /login: status %d, want 303", resp.StatusCode)
	}
	return client, nil
}

// csrfInput finds the sign-in form's CSRF token.
var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// benchGet fetches url and reads the whole body; anything but 200 fails.
func benchGet(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", req.URL.Path, resp.StatusCode)
	}
	return nil
}
