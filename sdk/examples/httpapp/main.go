// Command httpapp is a small net/http app that reports its session events
// to sessionmon with the Go SDK: a Reporter's middleware reports activity
// of signed-in sessions, and the /login and /logout handlers report
// logins, failed logins and logouts. Users, ids and addresses are
// pseudonymized in the app; none leaves it.
//
// Configuration, by flag or environment variable:
//
//	-addr     HTTPAPP_ADDR                  listen address (default 127.0.0.1:8080)
//	-nats     SESSIONMON_NATS_URL           NATS URL of sessionmon (default nats://127.0.0.1:4222)
//	-app      SESSIONMON_APP                app name (default shop)
//	-creds    SESSIONMON_CREDS_FILE         credentials file from `sessionmon creds app <app>`
//	-inbox    SESSIONMON_INBOX_PREFIX       inbox prefix of those credentials (default _INBOX_<app>)
//	-key-file SESSIONMON_PSEUDONYM_KEY_FILE file holding the pseudonymization key (32+ bytes, or hex)
//	          SESSIONMON_PSEUDONYM_KEY      the key itself, hex-encoded, if no file is given
//	-key-id   SESSIONMON_PSEUDONYM_KEY_ID   key id (default k1)
//
// Try it:
//
//	curl -c jar -d user=alice -d password='correct horse' http://127.0.0.1:8080/login
//	curl -b jar http://127.0.0.1:8080/
//	curl -b jar -X POST http://127.0.0.1:8080/logout
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sessionmon/sessionmon/sdk"
)

type config struct {
	addr, natsURL, app, creds, inbox, keyFile, keyHex, keyID string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseConfig(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("httpapp", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", env("HTTPAPP_ADDR", "127.0.0.1:8080"), "listen address")
	fs.StringVar(&c.natsURL, "nats", env("SESSIONMON_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL of sessionmon")
	fs.StringVar(&c.app, "app", env("SESSIONMON_APP", "shop"), "app name")
	fs.StringVar(&c.creds, "creds", env("SESSIONMON_CREDS_FILE", ""), "NATS credentials file")
	fs.StringVar(&c.inbox, "inbox", env("SESSIONMON_INBOX_PREFIX", ""), "inbox prefix of the credentials (default _INBOX_<app>)")
	fs.StringVar(&c.keyFile, "key-file", env("SESSIONMON_PSEUDONYM_KEY_FILE", ""), "file holding the pseudonymization key")
	fs.StringVar(&c.keyID, "key-id", env("SESSIONMON_PSEUDONYM_KEY_ID", "k1"), "pseudonymization key id")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.keyHex = os.Getenv("SESSIONMON_PSEUDONYM_KEY")
	if c.inbox == "" {
		c.inbox = "_INBOX_" + c.app
	}
	if c.keyFile == "" && c.keyHex == "" {
		return c, errors.New("no pseudonymization key: set SESSIONMON_PSEUDONYM_KEY_FILE or SESSIONMON_PSEUDONYM_KEY")
	}
	return c, nil
}

// loadKey reads the key from its file (raw bytes, or hex on one line) or
// from SESSIONMON_PSEUDONYM_KEY (hex).
func (c config) loadKey() ([]byte, error) {
	if c.keyFile == "" {
		k, err := hex.DecodeString(c.keyHex)
		if err != nil {
			return nil, fmt.Errorf("SESSIONMON_PSEUDONYM_KEY: not hex: %w", err)
		}
		return k, nil
	}
	b, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
		return k, nil
	}
	return b, nil
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(logger, os.Args[1:]); err != nil {
		logger.Error("httpapp failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(logger *slog.Logger, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	key, err := cfg.loadKey()
	if err != nil {
		return err
	}
	p, err := sdk.NewPseudonymizer(cfg.keyID, key)
	if err != nil {
		return err
	}
	opts := []sdk.Option{sdk.WithApp(cfg.app), sdk.WithInboxPrefix(cfg.inbox), sdk.WithLogger(logger)}
	if cfg.creds != "" {
		opts = append(opts, sdk.WithCredentialsFile(cfg.creds))
	}
	client, err := sdk.Connect(cfg.natsURL, opts...)
	if err != nil {
		return err
	}

	a := &app{sessions: make(map[string]string), users: map[string]string{"alice": "correct horse", "bob": "battery staple"}}
	rep, err := sdk.NewReporter(client, p, sdk.ReporterOptions{
		Subject: a.userOf,
		Session: a.sessionOf,
		Device:  cookieValue(deviceCookie),
		OnError: func(r *http.Request, err error) {
			logger.WarnContext(r.Context(), "sessionmon event not sent", slog.Any("error", err))
		},
	})
	if err != nil {
		return err
	}
	a.rep, a.log = rep, logger

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /", a.home)
	srv := &http.Server{Handler: withDevice(rep.Middleware(mux)), ReadHeaderTimeout: 5 * time.Second}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	logger.Info("listening", slog.String("addr", ln.Addr().String()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}

	// Stop taking requests, then publish what is still buffered.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if cerr := client.Close(shutdown); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	logger.Info("stopped")
	return err
}

const (
	sessionCookie = "sid"
	deviceCookie  = "device"
)

// app is the example's own state: users and sessions in memory.
type app struct {
	rep   *sdk.Reporter
	log   *slog.Logger
	users map[string]string // user -> password

	mu       sync.Mutex
	sessions map[string]string // session id -> user
}

func cookieValue(name string) func(*http.Request) string {
	return func(r *http.Request) string {
		if c, err := r.Cookie(name); err == nil {
			return c.Value
		}
		return ""
	}
}

// sessionOf returns r's session id if it is a live session.
func (a *app) sessionOf(r *http.Request) string {
	if a.userOf(r) == "" {
		return ""
	}
	return cookieValue(sessionCookie)(r)
}

// userOf returns the user signed in on r's session, or "".
func (a *app) userOf(r *http.Request) string {
	sid := cookieValue(sessionCookie)(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[sid]
}

func (a *app) report(r *http.Request, err error) {
	if err != nil {
		a.log.WarnContext(r.Context(), "sessionmon event not sent", slog.Any("error", err))
	}
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	if want, ok := a.users[user]; !ok || password != want {
		a.report(r, a.rep.LoginFailed(r, user, "bad_credentials"))
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	// Rotate the session at login, and tell sessionmon which one the new
	// session replaces.
	previous := cookieValue(sessionCookie)(r)
	sid := randomID()
	a.mu.Lock()
	delete(a.sessions, previous)
	a.sessions[sid] = user
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	yes, no := true, false
	a.report(r, a.rep.Login(r, sdk.Login{
		UserID: user, SessionID: sid, PreviousSessionID: previous,
		Auth:   &sdk.Auth{Method: "password", MFA: &no},
		Cookie: &sdk.Cookie{Name: sessionCookie, HTTPOnly: &yes, SameSite: sdk.SameSiteLax},
		Policy: &sdk.Policy{IdleTimeoutS: 1800, AbsoluteTimeoutS: 12 * 3600},
	}))
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	sid := cookieValue(sessionCookie)(r)
	a.mu.Lock()
	user := a.sessions[sid]
	delete(a.sessions, sid)
	a.mu.Unlock()
	if user != "" {
		a.report(r, a.rep.Logout(r, user, sid))
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	user := a.userOf(r)
	if user == "" {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, "hello %s\n", user)
}

// withDevice gives each browser a long-lived device cookie.
func withDevice(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie(deviceCookie); err != nil {
			id := randomID()
			http.SetCookie(w, &http.Cookie{Name: deviceCookie, Value: id, Path: "/", HttpOnly: true, MaxAge: 365 * 24 * 3600})
			r.AddCookie(&http.Cookie{Name: deviceCookie, Value: id})
		}
		next.ServeHTTP(w, r)
	})
}

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
