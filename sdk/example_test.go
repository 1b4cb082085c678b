package sdk_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/sdk"
)

// exampleKey stands in for the app's secret: in production, 32 bytes from
// crypto/rand kept with the app's other secrets.
var exampleKey = []byte("example key: use 32 random bytes")

// loginHandler is an app's login handler that reports to sessionmon. It
// rotates the session at login and tells sessionmon which session the new
// one replaces, with pseudonyms only: the user id, the session ids, the
// device cookie and the client address never leave the app.
func loginHandler(client sdk.Publisher, p *sdk.Pseudonymizer, ri *sdk.RequestInspector, authenticate func(user, password string) (userID string, ok bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ci := ri.ClientInfo(r)
		if c, err := r.Cookie("device"); err == nil {
			ci.Device = p.Device(c.Value)
		}
		userID, ok := authenticate(r.PostFormValue("user"), r.PostFormValue("password"))
		if !ok {
			report(r.Context(), client, &sdk.Event{
				Type:    sdk.LoginFailed,
				Subject: p.Subject(r.PostFormValue("user")),
				Reason:  "bad_credentials",
				Client:  &ci,
			})
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}

		var previous sdk.Pseudonym
		if c, err := r.Cookie("sid"); err == nil {
			previous = p.Session(c.Value)
		}
		sid := newSessionID()
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: sid, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})

		subject, session := p.Subject(userID), p.Session(sid)
		yes := true
		report(r.Context(), client, &sdk.Event{
			Type:    sdk.LoginSucceeded,
			Subject: subject,
			Session: session,
			Client:  &ci,
			Auth:    &sdk.Auth{Method: "password", MFA: new(bool)},
		})
		report(r.Context(), client, &sdk.Event{
			Type:            sdk.SessionStarted,
			Subject:         subject,
			Session:         session,
			PreviousSession: previous,
			Client:          &ci,
			Cookie:          &sdk.Cookie{Name: "sid", Secure: &yes, HTTPOnly: &yes, SameSite: sdk.SameSiteLax},
			Policy:          &sdk.Policy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 12 * 3600},
		})
		w.WriteHeader(http.StatusNoContent)
	}
}

// newSessionID returns a new random session id.
func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// report publishes ev without slowing the request. Monitoring must never
// break a login: a full buffer is logged and the login goes on.
func report(ctx context.Context, client sdk.Publisher, ev *sdk.Event) {
	if err := client.PublishAsync(ctx, ev); err != nil {
		slog.WarnContext(ctx, "sessionmon event not sent", slog.String("type", string(ev.Type)), slog.Any("error", err))
	}
}

// This example wires the SDK into an app: a Pseudonymizer, a
// RequestInspector that trusts the app's load balancers, a Client, and the
// login handler above. Close at shutdown publishes what is still buffered.
func Example() {
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if err != nil {
		log.Fatal(err)
	}
	client, err := sdk.Connect(os.Getenv("SESSIONMON_NATS_URL"),
		sdk.WithApp("shop"),
		sdk.WithCredentialsFile("/run/secrets/shop.creds"), // sessionmon creds app shop
		sdk.WithInboxPrefix("_INBOX_shop"),
		sdk.WithLogger(slog.Default()),
	)
	if err != nil {
		log.Fatal(err)
	}

	users := map[string]string{"alice": "correct horse"}
	authenticate := func(user, password string) (string, bool) {
		return "user-" + user, users[user] == password && password != ""
	}
	srv := &http.Server{Addr: ":8080", Handler: loginHandler(client, p, ri, authenticate), ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			log.Print(err)
		}
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Print(err)
	}

	// After the last request: drain the buffer before exiting.
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Close(closeCtx); err != nil {
		log.Print(err)
	}
}

// Pseudonyms are deterministic per key, and each kind of identifier has
// its own domain: the same string as a subject and as a session gives
// unrelated values.
func ExamplePseudonymizer() {
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Subject("user-42"))
	again, _ := sdk.NewPseudonymizer("k1", exampleKey)
	fmt.Println(p.Subject("user-42") == again.Subject("user-42"))
	fmt.Println(p.Session("user-42"))
	fmt.Println(p.TokenID("eyJhbGciOiJFZERTQSJ9.e30.sig"))
	fmt.Println(p.Subject("").IsZero())
	// Output:
	// k1:TC0MKYu4yNSSboC78x8g7A
	// true
	// k1:viBMIgrIuuu1XE_AfGRqlg
	// k1:XhtVm7qtnHJXaVyt7BINeA
	// true
}

// A RequestInspector reads the client behind a trusted proxy and keeps
// only its network and a keyed hash of its address.
func ExampleRequestInspector_ClientInfo() {
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.RemoteAddr = "10.0.0.2:40000" // the load balancer
	r.Header.Set("X-Forwarded-For", "192.0.2.1, 203.0.113.7")
	r.Header.Set("User-Agent", "Mozilla/5.0")

	ci := ri.ClientInfo(r)
	fmt.Println(ci.IPPrefix)
	fmt.Println(ci.IPHash)
	fmt.Println(ci.UserAgent)
	// Output:
	// 203.0.113.0/24
	// k1:e5Ij33D1iwI5HzpiUnFgxA
	// Mozilla/5.0
}

// MarshalJSONFor shows what the Client sends: times in UTC, host
// addresses cut to their network.
func ExampleEvent_MarshalJSONFor() {
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	ev := sdk.Event{
		ID:      "01JDEMO",
		Type:    sdk.LoginSucceeded,
		Time:    time.Date(2026, 11, 25, 11, 0, 0, 0, time.FixedZone("CET", 3600)),
		Subject: p.Subject("user-42"),
		Session: p.Session("8f14e45fceea167a"),
		Client:  &sdk.ClientInfo{IPPrefix: netip.MustParsePrefix("203.0.113.7/32")},
	}
	data, err := ev.MarshalJSONFor("shop")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	// Output:
	// {"id":"01JDEMO","schema_version":1,"type":"login.succeeded","time":"2026-11-25T10:00:00.000Z","app":"shop","subject":"k1:TC0MKYu4yNSSboC78x8g7A","session":"k1:WyGVRXuG3yPd8-AKOIrvkA","client":{"ip_prefix":"203.0.113.0/24"}}
}

func ExampleNewEventID() {
	id := sdk.NewEventID()
	fmt.Println(len(id), regexp.MustCompile(`^[A-Za-z0-9_:.~-]{1,64}$`).MatchString(id))
	// Output:
	// 26 true
}

// A tool that imports events already in schema v1 (already pseudonymized)
// reuses its connection with NewClient and publishes them with PublishJSON.
func ExampleClient_PublishJSON() {
	nc, err := nats.Connect(os.Getenv("SESSIONMON_NATS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	client, err := sdk.NewClient(nc, sdk.WithApp("shop"))
	if err != nil {
		log.Fatal(err)
	}
	line := []byte(`{"id":"01JDEMO","schema_version":1,"type":"login.failed","time":"2026-11-25T10:00:00.000Z","app":"shop","subject":"k1:TC0MKYu4yNSSboC78x8g7A","reason":"bad_credentials"}`)
	if err := client.PublishJSON(context.Background(), line); err != nil {
		log.Print(err) // a *sdk.ValidationError names the broken fields
	}
	if err := client.Close(context.Background()); err != nil {
		log.Print(err)
	}
}

// A Reporter reports throttled session.activity from its middleware, and
// logins and logouts from the app's handlers, from raw ids it pseudonymizes.
func ExampleReporter() {
	p, err := sdk.NewPseudonymizer("k1", exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	client, err := sdk.Connect(os.Getenv("SESSIONMON_NATS_URL"), sdk.WithApp("shop"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	var sessions sync.Map // session id -> user id: the app's session store
	userOf := func(sid string) string {
		v, _ := sessions.Load(sid)
		s, _ := v.(string)
		return s
	}
	sessionID := func(r *http.Request) string {
		if c, err := r.Cookie("sid"); err == nil {
			return c.Value
		}
		return ""
	}
	rep, err := sdk.NewReporter(client, p, sdk.ReporterOptions{
		Subject: func(r *http.Request) string { return userOf(sessionID(r)) },
		Session: sessionID,
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		sid := sessionID(r)
		if err := rep.Logout(r, userOf(sid), sid); err != nil {
			log.Print(err)
		}
		sessions.Delete(sid)
	})
	// chi: r.Use(rep.Middleware); echo: e.Use(echo.WrapMiddleware(rep.Middleware)).
	log.Fatal(http.ListenAndServe(":8080", rep.Middleware(mux)))
}
