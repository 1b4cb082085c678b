package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/detect"
	"github.com/sessionmon/sessionmon/schemas"
)

// Familiar networks: what impossible_travel learned and why, for triage.
// The shared egresses come from the schemas.NetworkBucket key-value
// bucket, where every detect engine publishes its list every 30 seconds;
// a subject's familiar networks, ASNs and devices are asked of the detect
// process that owns the subject's partition, over NATS
// (detect.AskFamiliar). Viewers may read both.

// sharedNetwork is a shared egress as the page and the API show it.
type sharedNetwork struct {
	detect.SharedEgress
	// Units are the detect engines that learned it ("all", "p3").
	Units []string `json:"units"`
}

// networkRow is a shared egress in one app's table of the page.
type networkRow struct {
	sharedNetwork
	App string
}

// SuppressURL opens the suppression form prefilled for the network in
// the row's app.
func (n networkRow) SuppressURL() string {
	q := url.Values{"detector": {"impossible_travel"}, "app": {n.App}, "ip_prefix": {n.Prefix}}
	return "/suppressions?" + q.Encode()
}

// networkApp is one app's shared egresses.
type networkApp struct {
	App      string
	Networks []networkRow
}

// networkUnit is a detect engine's published list.
type networkUnit struct {
	Unit      string
	UpdatedAt time.Time
	Networks  int
}

// sharedNetworks is everything in the networks bucket.
type sharedNetworks struct {
	Networks []sharedNetwork
	Units    []networkUnit
}

// loadSharedNetworks reads every engine's list from the networks bucket
// and merges them: a network learned by several engines (each learns from
// its own partitions' subjects) is listed once, with the most used
// engine's counts and every engine's apps. app, when set, keeps the
// networks seen in that app only.
func (h *handler) loadSharedNetworks(ctx context.Context, app string) (sharedNetworks, error) {
	out := sharedNetworks{Networks: []sharedNetwork{}, Units: []networkUnit{}}
	if h.js == nil {
		return out, echo.NewHTTPError(http.StatusServiceUnavailable, "familiar networks need NATS")
	}
	kv, err := h.js.KeyValue(ctx, schemas.NetworkBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return out, nil // no detect engine has published yet
	}
	if err != nil {
		return out, fmt.Errorf("network bucket: %w", err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return out, fmt.Errorf("list shared networks: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	byKey := map[string]int{}
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return out, fmt.Errorf("read shared networks: %w", err)
		}
		var l detect.NetworkList
		if err := json.Unmarshal(e.Value(), &l); err != nil || l.Unit == "" {
			continue // not written by detect
		}
		out.Units = append(out.Units, networkUnit{Unit: l.Unit, UpdatedAt: l.UpdatedAt.UTC(), Networks: len(l.Networks)})
		for _, n := range l.Networks {
			if app != "" && !slices.Contains(n.Apps, app) {
				continue
			}
			k := n.Prefix
			i, ok := byKey[k]
			if !ok {
				byKey[k] = len(out.Networks)
				out.Networks = append(out.Networks, sharedNetwork{SharedEgress: n, Units: []string{l.Unit}})
				continue
			}
			cur := &out.Networks[i]
			cur.Units = append(cur.Units, l.Unit)
			apps := append(slices.Clone(cur.Apps), n.Apps...)
			if n.Succeeded > cur.Succeeded {
				cur.SharedEgress = n
			}
			slices.Sort(apps)
			cur.Apps = slices.Compact(apps)
		}
	}
	for i := range out.Networks {
		slices.Sort(out.Networks[i].Units)
	}
	slices.SortFunc(out.Networks, func(a, b sharedNetwork) int {
		if a.Succeeded != b.Succeeded {
			return int(b.Succeeded) - int(a.Succeeded)
		}
		return strings.Compare(a.Prefix, b.Prefix)
	})
	slices.SortFunc(out.Units, func(a, b networkUnit) int { return strings.Compare(a.Unit, b.Unit) })
	return out, nil
}

// familiarLookup is the answer to a subject lookup.
type familiarLookup struct {
	Subject, App string
	// Unit and Process name who answered.
	Unit, Process string
	Familiar      detect.FamiliarSubject
	// Error says why there is no answer (no detect process answered).
	Error string
}

// familiarSection is one table of a lookup.
type familiarSection struct {
	Title   string
	Entries []detect.FamiliarEntry
}

// Sections returns the lookup's tables: networks, ASNs, devices.
func (l familiarLookup) Sections() []familiarSection {
	return []familiarSection{{"Networks", l.Familiar.Networks}, {"ASNs", l.Familiar.ASNs}, {"Devices", l.Familiar.Devices}}
}

// checkFamiliarParams validates a lookup's subject and app.
func checkFamiliarParams(subject, app string) error {
	if !schemas.ValidPseudonym(subject) {
		return badParam("subject", "must be a pseudonym: 8-128 characters of A-Z a-z 0-9 _ : ~ -")
	}
	if app != "" && !schemas.ValidApp(app) {
		return badParam("app", "must be an app name: 1-64 characters of A-Z a-z 0-9 _ -")
	}
	return nil
}

// lookupFamiliar asks detect for the subject's familiar networks. An
// error is a 503 HTTP error: NATS is not configured, no detect process
// answered, or the one that answered could not (still starting).
func (h *handler) lookupFamiliar(ctx context.Context, subject, app string) (familiarLookup, error) {
	l := familiarLookup{Subject: subject, App: app}
	if h.js == nil {
		return l, echo.NewHTTPError(http.StatusServiceUnavailable, "familiar networks need NATS")
	}
	rep, err := detect.AskFamiliar(ctx, h.js.Conn(), app, subject)
	l.Unit, l.Process, l.Familiar = rep.Unit, rep.Process, rep.Familiar
	switch {
	case errors.Is(err, detect.ErrNoFamiliarAnswer):
		return l, echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	case err != nil:
		return l, echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return l, nil
}

// networkPage is the "Familiar networks" page.
type networkPage struct {
	// App filters the shared egresses; Apps are them, per app.
	App   string
	Apps  []networkApp
	Units []networkUnit
	// Lookup is the subject lookup's answer (nil: none asked).
	Lookup *familiarLookup
}

// showNetworks renders the shared egresses per app and, with ?subject=,
// that subject's familiar networks, ASNs and devices.
func (h *handler) showNetworks(c echo.Context) error {
	ctx := c.Request().Context()
	app := strings.TrimSpace(c.QueryParam("app"))
	subject := strings.TrimSpace(c.QueryParam("subject"))
	if app != "" && !schemas.ValidApp(app) {
		return badParam("app", "must be an app name: 1-64 characters of A-Z a-z 0-9 _ -")
	}
	d := networkPage{App: app}
	if subject != "" {
		if err := checkFamiliarParams(subject, app); err != nil {
			return err
		}
		l, err := h.lookupFamiliar(ctx, subject, app)
		if err != nil {
			var he *echo.HTTPError
			if !errors.As(err, &he) {
				return err
			}
			// Shown on the page: the shared egresses are still useful.
			l.Error = fmt.Sprint(he.Message)
		}
		d.Lookup = &l
	}
	shared, err := h.loadSharedNetworks(ctx, app)
	if err != nil {
		return err
	}
	d.Units = shared.Units
	d.Apps = networksByApp(shared.Networks, app)
	return h.page(c, http.StatusOK, viewNetworkList, d)
}

// networksByApp lists the networks under each app they were seen in
// (only app's when set), apps in name order, each the most used first.
func networksByApp(nets []sharedNetwork, app string) []networkApp {
	idx := map[string]int{}
	var out []networkApp
	for _, n := range nets {
		for _, a := range n.Apps {
			if app != "" && a != app {
				continue
			}
			i, ok := idx[a]
			if !ok {
				i = len(out)
				idx[a] = i
				out = append(out, networkApp{App: a})
			}
			out[i].Networks = append(out[i].Networks, networkRow{sharedNetwork: n, App: a})
		}
	}
	slices.SortFunc(out, func(a, b networkApp) int { return strings.Compare(a.App, b.App) })
	return out
}

// apiSharedNetworks answers GET /api/v1/networks/shared.
//
// Query: app (optional). Response 200: {networks: [sharedNetwork],
// units: [{unit, updated_at, networks}]}, the most used first.
func (h *handler) apiSharedNetworks(c echo.Context) error {
	app := strings.TrimSpace(c.QueryParam("app"))
	if app != "" && !schemas.ValidApp(app) {
		return badParam("app", "must be an app name: 1-64 characters of A-Z a-z 0-9 _ -")
	}
	s, err := h.loadSharedNetworks(c.Request().Context(), app)
	if err != nil {
		return err
	}
	units := make([]map[string]any, 0, len(s.Units))
	for _, u := range s.Units {
		units = append(units, map[string]any{"unit": u.Unit, "updated_at": u.UpdatedAt, "networks": u.Networks})
	}
	return c.JSON(http.StatusOK, map[string]any{"networks": s.Networks, "units": units})
}

// apiSubjectFamiliar answers GET /api/v1/subjects/{subject}/familiar.
//
// Query: app (optional: the app the lookup is about). Response 200: {subject, unit, process, familiar:
// detect.FamiliarSubject}; 503 when no detect process answered within 2 s.
func (h *handler) apiSubjectFamiliar(c echo.Context) error {
	subject, err := subjectParam(c)
	if err != nil {
		return err
	}
	app := strings.TrimSpace(c.QueryParam("app"))
	if err := checkFamiliarParams(subject, app); err != nil {
		return err
	}
	l, err := h.lookupFamiliar(c.Request().Context(), subject, app)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"subject": subject, "unit": l.Unit, "process": l.Process, "familiar": l.Familiar})
}
