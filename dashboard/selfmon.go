package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/schemas"
	"github.com/sessionmon/sessionmon/sdk"
)

// The dashboard watches itself: it publishes its own sign-ins, sessions,
// re-authentications, API tokens and sensitive actions as schema v1 events
// of the app MonitorApp through the sessionmon SDK, pseudonymized like any
// other app's, with its cookie attributes and timeouts, so sessionmon's
// own detectors (brute force, session fixation, insecure cookie, missing
// re-authentication, ...) check the dashboard too.

// MonitorApp is the app name of the dashboard's own events.
const MonitorApp = "sessionmon-dashboard"

// PseudonymKeyFile is the file under the data directory that holds the
// dashboard's pseudonymization key when none is configured.
const PseudonymKeyFile = "dashboard-pseudonym.key"

// pseudonymKeyID names the dashboard's key in its pseudonyms.
const pseudonymKeyID = "dashboard"

// LoadPseudonymKey returns the key the dashboard pseudonymizes its own
// events with: secret when set (at least sdk.MinKeyBytes bytes), else the
// key in dataDir/PseudonymKeyFile, made (32 random bytes, hex, mode 0600)
// the first time, so pseudonyms stay stable across restarts.
func LoadPseudonymKey(secret, dataDir string) ([]byte, error) {
	return loadKey(secret, dataDir, PseudonymKeyFile, "dashboard-pseudonym-key", "dashboard pseudonym key", false)
}

// loadKey returns secret when set (at least sdk.MinKeyBytes bytes), else
// the key in dataDir/file, made (32 random bytes, hex, mode 0600) the
// first time. option names the option that sets the key, what the key in
// errors. With private, a key file that group or others may read is
// refused.
func loadKey(secret, dataDir, file, option, what string, private bool) ([]byte, error) {
	if secret != "" {
		if len(secret) < sdk.MinKeyBytes {
			return nil, fmt.Errorf("%s: must be at least %d bytes", option, sdk.MinKeyBytes)
		}
		return []byte(secret), nil
	}
	path := filepath.Join(dataDir, file)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("%s: data-dir: %w", what, err)
		}
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		text := hex.EncodeToString(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			// Another process made it first: use theirs.
			return loadKey("", dataDir, file, option, what, private)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: create %s: %w", what, path, err)
		}
		_, werr := f.WriteString(text + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("%s: write %s: %w", what, path, err)
		}
		return []byte(text), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", what, path, err)
	}
	if private {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s: %s: readable by others (mode %v): make it 0600", what, path, fi.Mode().Perm())
		}
	}
	key := strings.TrimSpace(string(b))
	if len(key) < sdk.MinKeyBytes {
		return nil, fmt.Errorf("%s: %s: must hold at least %d bytes", what, path, sdk.MinKeyBytes)
	}
	return []byte(key), nil
}

// monitor publishes the dashboard's own events. With a nil client it only
// pseudonymizes (the request inspector still needs it).
type monitor struct {
	client *sdk.Client
	pz     *sdk.Pseudonymizer
	ri     *sdk.RequestInspector
	logger *slog.Logger
	cookie sdk.Cookie
	policy sdk.Policy
	// warned makes a failure to publish logged once, not once per request.
	warned sync.Once
}

func newMonitor(cfg Config, client *sdk.Client, key []byte, cookieName string, secure bool, logger *slog.Logger) (*monitor, error) {
	if client != nil && client.App() != MonitorApp {
		return nil, fmt.Errorf("Deps.Monitor: app must be %q (got %q)", MonitorApp, client.App())
	}
	if key == nil {
		// No key given: the pseudonyms of this process are its own, which
		// is enough to hash addresses but not to correlate across
		// restarts; LoadPseudonymKey gives a stable one.
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	pz, err := sdk.NewPseudonymizer(pseudonymKeyID, key)
	if err != nil {
		return nil, fmt.Errorf("dashboard pseudonym key: %w", err)
	}
	// X-Forwarded-For counts only from the configured proxies, read as
	// the SDK reads it.
	ri, err := sdk.NewRequestInspector(pz, cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("request inspector: %w", err)
	}
	httpOnly := true
	return &monitor{
		client: client, pz: pz, ri: ri, logger: logger,
		cookie: sdk.Cookie{Name: cookieName, Secure: &secure, HTTPOnly: &httpOnly, SameSite: sdk.SameSiteStrict},
		policy: sdk.Policy{
			IdleTimeoutS:     int64(cfg.IdleTimeout / time.Second),
			AbsoluteTimeoutS: int64(cfg.AbsoluteTimeout / time.Second),
			ReauthWindowS:    int64(cfg.ReauthWindow / time.Second),
		},
	}, nil
}

// publish sends ev without waiting: the request never blocks on or fails
// because of self-monitoring. c fills the client block.
func (m *monitor) publish(c echo.Context, ev *sdk.Event) {
	if m.client == nil {
		return
	}
	if c != nil && ev.Client == nil {
		ci := m.ri.ClientInfo(c.Request())
		ev.Client = &ci
	}
	// The request's context ends with the request; the event must not.
	if err := m.client.PublishAsync(context.WithoutCancel(c.Request().Context()), ev); err != nil {
		m.warned.Do(func() {
			m.logger.Warn("self-monitoring event not published (further failures are not logged)",
				slog.String("type", string(ev.Type)), slog.Any("error", err))
		})
	}
}

// auth describes a password sign-in at t.
func passwordAuth(t time.Time) *sdk.Auth {
	mfa := false
	return &sdk.Auth{Method: "password", MFA: &mfa, LastAuthAt: t}
}

func (m *monitor) loginSucceeded(c echo.Context, user, sid string, now time.Time) {
	m.publish(c, &sdk.Event{Type: schemas.LoginSucceeded, Time: now, Subject: m.pz.Subject(user),
		Session: m.pz.Session(sid), Auth: passwordAuth(now)})
}

// loginFailed reports a failed sign-in; name is what was typed, which is
// pseudonymized like any subject (it may even be a mistyped password).
func (m *monitor) loginFailed(c echo.Context, name, reason string, now time.Time) {
	if name == "" {
		name = "(empty)"
	}
	m.publish(c, &sdk.Event{Type: schemas.LoginFailed, Time: now, Subject: m.pz.Subject(name), Reason: reason})
}

func (m *monitor) sessionStarted(c echo.Context, user, sid, previous string, now time.Time) {
	cookie := m.cookie
	policy := m.policy
	m.publish(c, &sdk.Event{Type: schemas.SessionStarted, Time: now, Subject: m.pz.Subject(user),
		Session: m.pz.Session(sid), PreviousSession: m.pz.Session(previous),
		Auth: passwordAuth(now), Cookie: &cookie, Policy: &policy})
}

func (m *monitor) sessionEnded(c echo.Context, user, sid, reason string, now time.Time) {
	m.publish(c, &sdk.Event{Type: schemas.SessionEnded, Time: now, Subject: m.pz.Subject(user),
		Session: m.pz.Session(sid), Reason: reason})
}

func (m *monitor) reauthSucceeded(c echo.Context, user, sid string, now time.Time) {
	m.publish(c, &sdk.Event{Type: schemas.ReauthSucceeded, Time: now, Subject: m.pz.Subject(user),
		Session: m.pz.Session(sid), Auth: passwordAuth(now)})
}

// actionPerformed reports an action of a signed-in user (sid and authAt of
// their session) or of an API token (sid empty).
func (m *monitor) actionPerformed(c echo.Context, p Principal, sid string, authAt time.Time, action string, sensitive bool, now time.Time) {
	ev := &sdk.Event{Type: schemas.ActionPerformed, Time: now, Subject: m.pz.Subject(p.Name),
		Session: m.pz.Session(sid), Action: &sdk.Action{Name: action, Sensitive: sensitive}}
	if !authAt.IsZero() {
		ev.Auth = passwordAuth(authAt)
	}
	m.publish(c, ev)
}

// tokenEvent reports an API token issued or revoked by user.
func (m *monitor) tokenEvent(c echo.Context, typ schemas.Type, user, sid string, t apiToken, now time.Time) {
	m.publish(c, &sdk.Event{Type: typ, Time: now, Subject: m.pz.Subject(user), Session: m.pz.Session(sid),
		Token: &sdk.Token{ID: m.pz.TokenID(t.ID), Kind: schemas.TokenAPIKey, IssuedAt: t.Created, ExpiresAt: t.Expires},
		Attrs: map[string]string{"role": t.Role.String()}})
}
