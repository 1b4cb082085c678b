package detect

import (
	"fmt"
	"strings"
	"time"

	"github.com/sessionmon/sessionmon/schemas"
)

const insecureCookieName = "insecure_cookie"

// InsecureCookieConfig configures the insecure_cookie detector.
type InsecureCookieConfig struct {
	Common `yaml:",inline"`
	// AllowSameSiteNone accepts same_site: none (apps embedded cross-site
	// or relying on cross-site POSTs need it); Secure and HttpOnly are still
	// required (default false).
	AllowSameSiteNone bool `yaml:"allow_same_site_none"`
}

func defaultInsecureCookieConfig() InsecureCookieConfig {
	return InsecureCookieConfig{Common: Common{
		Enabled:     true,
		Severity:    schemas.SeverityMedium,
		DedupWindow: Duration(24 * time.Hour),
	}}
}

// InsecureCookie flags a session cookie set without Secure or HttpOnly, or
// with SameSite=None. Any event with a cookie block is judged (schema v1's
// cookie block always describes the session cookie). An attribute the event
// does not report is not held against it: only secure: false,
// http_only: false and same_site: none count.
//
// A cookie's attributes are app configuration, so the dedup key is the app,
// the cookie name and the set of flaws: one alert per misconfiguration, not
// one per session. It keeps no state.
type InsecureCookie struct {
	cfg InsecureCookieConfig
}

var _ Detector = (*InsecureCookie)(nil)

// NewInsecureCookie returns the insecure_cookie detector, or an error naming
// every invalid setting.
func NewInsecureCookie(cfg InsecureCookieConfig) (*InsecureCookie, error) {
	if err := cfg.Validate(insecureCookieName); err != nil {
		return nil, err
	}
	return &InsecureCookie{cfg: cfg}, nil
}

// Name returns "insecure_cookie".
func (d *InsecureCookie) Name() string { return insecureCookieName }

// Observe alerts on a cookie block with an insecure attribute.
func (d *InsecureCookie) Observe(e *schemas.Event, emit Emit) {
	c := e.Cookie
	if c == nil {
		return
	}
	var flaws, missing []string
	if c.Secure != nil && !*c.Secure {
		flaws, missing = append(flaws, "secure"), append(missing, "Secure")
	}
	if c.HTTPOnly != nil && !*c.HTTPOnly {
		flaws, missing = append(flaws, "http_only"), append(missing, "HttpOnly")
	}
	sameSiteNone := c.SameSite == schemas.SameSiteNone && !d.cfg.AllowSameSiteNone
	if sameSiteNone {
		flaws = append(flaws, "same_site_none")
	}
	if len(flaws) == 0 {
		return
	}

	var what []string
	if len(missing) > 0 {
		what = append(what, "without "+strings.Join(missing, " and "))
	}
	if sameSiteNone {
		what = append(what, "with SameSite=None")
	}
	cookie := "The session cookie"
	if c.Name != "" {
		cookie = fmt.Sprintf("The session cookie %q", c.Name)
	}
	emit(schemas.Alert{
		Detector: insecureCookieName,
		Severity: d.cfg.Severity,
		Time:     e.Time,
		App:      e.App,
		Subject:  e.Subject,
		Session:  e.Session,
		Title:    "Insecure session cookie",
		Summary:  fmt.Sprintf("%s of app %s is set %s.", cookie, e.App, strings.Join(what, " and ")),
		Details: map[string]any{
			"cookie":    c.Name,
			"flaws":     flaws,
			"same_site": c.SameSite,
		},
		Evidence: []string{e.ID},
		Key:      e.App + "|" + c.Name + "|" + strings.Join(flaws, ","),
	})
}

// Expire does nothing: the detector keeps no state.
func (d *InsecureCookie) Expire(time.Time) {}

// Forget does nothing: the detector keeps no state.
func (d *InsecureCookie) Forget(string) {}
