package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/schemas"
)

//go:embed templates
var templateFS embed.FS

// renderer holds one template set per view: the layout, every partial and
// the view, parsed once at start. It implements echo.Renderer.
type renderer struct {
	views  map[string]*template.Template
	assets *assets
}

var _ echo.Renderer = (*renderer)(nil)

// newRenderer parses, from fsys (templateFS in production),
// templates/layout.html, templates/partials/*.html and the template of
// every view; it fails on a parse error or a missing view, naming every
// view that is missing.
func newRenderer(fsys fs.FS) (*renderer, error) {
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	base := template.New("layout.html").Funcs(templateFuncs(a))
	if _, err := base.ParseFS(fsys, "templates/layout.html", "templates/partials/*.html"); err != nil {
		return nil, fmt.Errorf("parse layout and partials: %w", err)
	}
	r := &renderer{views: make(map[string]*template.Template, numViews), assets: a}
	var missing []string
	for v := range numViews {
		name := v.String()
		if name == "" {
			return nil, fmt.Errorf("view %d has no template name in viewNames", v)
		}
		f := "templates/views/" + name + ".html"
		src, err := fs.ReadFile(fsys, f)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read view %s: %w", f, err)
		}
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout for %s: %w", f, err)
		}
		if _, err := t.New(name + ".html").Parse(string(src)); err != nil {
			return nil, fmt.Errorf("parse view %s: %w", f, err)
		}
		r.views[name] = t
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("templates/views: missing views: %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// Render executes the layout with view name's "title" and "content".
func (r *renderer) Render(w io.Writer, name string, data any, _ echo.Context) error {
	t, ok := r.views[name]
	if !ok {
		return fmt.Errorf("render: view %q: no such view", name)
	}
	if err := t.ExecuteTemplate(w, "layout", data); err != nil {
		return fmt.Errorf("render view %s: %w", name, err)
	}
	return nil
}

// templateFuncs are the functions every template may call.
func templateFuncs(a *assets) template.FuncMap {
	return template.FuncMap{
		"asset": a.url,
		// allows reports whether the principal has at least the named role.
		"allows": func(p Principal, role string) bool {
			r, err := ParseRole(role)
			return err == nil && p.Role.Allows(r)
		},
		"fmtTime": fmtTime,
		"rfc3339": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"msTime": func(ms int64) string {
			if ms == 0 {
				return "—"
			}
			return fmtTime(time.UnixMilli(ms))
		},
		"short": shorten,
		// technique describes an ATT&CK technique id; an id outside
		// sessionmon's catalog keeps only its id.
		"technique": func(id string) schemas.Technique {
			if t, ok := schemas.TechniqueByID(id); ok {
				return t
			}
			return schemas.Technique{ID: id}
		},
		"join": strings.Join,
		// severityClass maps a severity to its CSS class; unknown values get
		// a neutral one, so data never chooses a class.
		"severityClass": func(s string) string {
			switch s {
			case "low", "medium", "high", "critical":
				return "sev sev-" + s
			}
			return "sev"
		},
		"statusClass": func(s string) string {
			switch s {
			case string(schemas.StatusOpen), string(schemas.StatusAcknowledged), string(schemas.StatusResolved), string(schemas.StatusFalsePositive):
				return "status status-" + s
			}
			return "status"
		},
		"attrs": eventAttrs,
		"tri": func(v int8) string {
			switch v {
			case chstore.TriTrue:
				return "yes"
			case chstore.TriFalse:
				return "no"
			}
			return "—"
		},
	}
}

// eventAttr is one attribute of an event.
type eventAttr struct{ Key, Value string }

// eventAttrs returns an event's attributes in key order.
func eventAttrs(r chstore.EventRow) []eventAttr {
	out := make([]eventAttr, 0, len(r.AttrsKeys))
	for i, k := range r.AttrsKeys {
		v := ""
		if i < len(r.AttrsValues) {
			v = r.AttrsValues[i]
		}
		out = append(out, eventAttr{k, v})
	}
	return out
}

// fmtTime writes t for people: UTC, to the second; "—" when unknown.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// shorten cuts s to n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// navItem is one link of the navigation bar.
type navItem struct {
	Path, Label string
	Need        Role
}

var navItems = []navItem{
	{"/", "Overview", RoleViewer},
	{"/alerts", "Alerts", RoleViewer},
	{"/suppressions", "Suppressions", RoleViewer},
	{"/networks", "Familiar networks", RoleViewer},
	{"/subjects", "Subjects", RoleViewer},
	{"/dead-letters", "Dead letters", RoleViewer},
	{"/webhooks", "Webhooks", RoleViewer},
	{"/retention", "Retention", RoleViewer},
	{"/audit", "Audit log", RoleAdmin},
	{"/tokens", "API tokens", RoleAdmin},
}

// navLink is a navItem as the layout shows it.
type navLink struct {
	Path, Label string
	Current     bool
}

// page is what every view gets: the layout's data (who is signed in, the
// CSRF token for forms, the navigation, a flash message) and the view's
// own data in Data.
type page struct {
	Principal Principal
	CSRF      string
	Nav       []navLink
	Flash     string
	// Now is the request's time (UTC).
	Now  time.Time
	Data any
}

// page renders v with data inside the layout and answers with status.
func (h *handler) page(c echo.Context, status int, v view, data any) error {
	p := h.pageData(c, data)
	var buf bytes.Buffer
	if err := h.render.Render(&buf, v.String(), p, c); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

func (h *handler) pageData(c echo.Context, data any) page {
	p := page{Principal: currentPrincipal(c), CSRF: csrfToken(c), Now: h.now().UTC(), Data: data, Flash: h.takeFlash(c)}
	cur := c.Path()
	for _, n := range navItems {
		if !p.Principal.Role.Allows(n.Need) {
			continue
		}
		isCur := cur == n.Path || (n.Path != "/" && strings.HasPrefix(cur, n.Path+"/"))
		p.Nav = append(p.Nav, navLink{Path: n.Path, Label: n.Label, Current: isCur})
	}
	return p
}

// paramError is a request parameter (query, form or path) that is missing
// or invalid: a 400 naming the parameter.
type paramError struct {
	Field  string
	Reason string
}

func (e *paramError) Error() string { return e.Field + ": " + e.Reason }

func badParam(field, format string, args ...any) error {
	return &paramError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// errorView is the error page's data.
type errorView struct {
	Status  int
	Title   string
	Message string
	Field   string
}

// apiError is the JSON body of every /api/v1 error.
type apiError struct {
	Error string `json:"error"`
	// Field names the parameter at fault, if one is.
	Field string `json:"field,omitempty"`
}

// handleError is echo's HTTPErrorHandler: it logs the error once, with the
// request's attributes (the route pattern, never the path: paths hold
// pseudonyms), and answers with the error page, or a JSON error under
// /api/.
func (h *handler) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		h.logError(c, http.StatusInternalServerError, err)
		return
	}
	ev := classify(err)
	h.logError(c, ev.Status, err)
	if isAPI(c) {
		_ = c.JSON(ev.Status, apiError{Error: ev.Message, Field: ev.Field})
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ev.Status)
		return
	}
	if rerr := h.page(c, ev.Status, viewError, ev); rerr != nil {
		h.logger.Error("render error page", slog.Any("error", rerr))
		_ = c.String(ev.Status, ev.Message)
	}
}

// classify maps an error to its status and the message users see; the
// text of an internal error is not shown.
func classify(err error) errorView {
	var (
		pe *paramError
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &pe):
		return errorView{Status: http.StatusBadRequest, Message: pe.Error(), Field: pe.Field}
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		return errorView{Status: he.Code, Message: msg}
	case errors.Is(err, chstore.ErrNotFound):
		return errorView{Status: http.StatusNotFound, Message: "not found"}
	case errors.Is(err, chstore.ErrInvalidArgument):
		return errorView{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return errorView{Status: http.StatusInternalServerError, Message: "internal error; the server logged it"}
}

func (h *handler) logError(c echo.Context, status int, err error) {
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelError
	}
	h.logger.LogAttrs(c.Request().Context(), lvl, "request failed",
		slog.String("method", c.Request().Method),
		slog.String("route", c.Path()),
		slog.Int("status", status),
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		slog.Any("error", err))
}

func isAPI(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/api/")
}

// The flash message survives one redirect in a short-lived cookie that
// holds only a key of flashMessages: nothing a request sets can make the
// page say something else.
const flashMaxAge = 60

var flashMessages = map[string]string{
	"acknowledged":   "Alert acknowledged.",
	"resolved":       "Alert resolved.",
	"false_positive": "Alert marked as a false positive.",
	"open":           "Alert reopened.",
	"redelivered":    "Alert queued for redelivery.",
	"erasure_filed":  "Erasure request filed.",
	"hold_set":       "Legal hold set.",
	"hold_lifted":    "Legal hold lifted.",
	"token_revoked":  "API token revoked.",

	"suppression_created": "Suppression rule created: detect applies it within seconds.",
	"suppression_deleted": "Suppression rule deleted.",
}

func (h *handler) flashCookieName() string {
	if h.cfg.InsecureDevCookies {
		return "sessionmon_flash"
	}
	return "__Host-sessionmon_flash"
}

// redirectFlash answers a form with 303 to location and a flash message.
func (h *handler) redirectFlash(c echo.Context, location, flash string) error {
	if _, ok := flashMessages[flash]; ok {
		c.SetCookie(&http.Cookie{
			Name: h.flashCookieName(), Value: flash, Path: "/", MaxAge: flashMaxAge,
			Secure: !h.cfg.InsecureDevCookies, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		})
	}
	return c.Redirect(http.StatusSeeOther, location)
}

// takeFlash returns the pending flash message, if any, and clears it.
func (h *handler) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(h.flashCookieName())
	if err != nil {
		return ""
	}
	c.SetCookie(&http.Cookie{
		Name: h.flashCookieName(), Value: "", Path: "/", MaxAge: -1,
		Secure: !h.cfg.InsecureDevCookies, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	return flashMessages[ck.Value]
}
