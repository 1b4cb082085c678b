package dashboard

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/schemas"
)

// showSuppressions renders the suppression rules: active, expired, and
// values detect ignores, each with a delete button for analysts. With
// any of ?detector, app, subject, ip_prefix or asn (the "Suppress for
// this network" link of the familiar networks page) it also shows a new
// rule's form prefilled with them.
func (h *handler) showSuppressions(c echo.Context) error {
	l, err := h.loadSuppressions(c.Request().Context())
	if err != nil {
		return err
	}
	l.New = h.suppressionPrefill(c)
	return h.page(c, http.StatusOK, viewSuppressionList, l)
}

// suppressionPrefill is a new rule's form, prefilled from the query. The
// values are only proposed: creating the rule validates them.
type suppressionPrefill struct {
	Detector, App, Subject, IPPrefix, ASN string
	// Until is the proposed expiry (datetime-local, UTC).
	Until string
	// Severities are those the lower action offers.
	Severities []string
}

// suppressionPrefill returns the form the query asks for, or nil.
func (h *handler) suppressionPrefill(c echo.Context) *suppressionPrefill {
	q := c.QueryParams()
	p := suppressionPrefill{Detector: q.Get("detector"), App: q.Get("app"), Subject: q.Get("subject"),
		IPPrefix: q.Get("ip_prefix"), ASN: q.Get("asn")}
	if p.App == "" && p.Subject == "" && p.IPPrefix == "" && p.ASN == "" {
		return nil
	}
	if !knownDetector(p.Detector) {
		p.Detector = "*"
	}
	p.Until = h.now().UTC().Add(defaultSuppressionDays * 24 * time.Hour).Format("2006-01-02T15:04")
	p.Severities = []string{string(schemas.SeverityLow), string(schemas.SeverityMedium), string(schemas.SeverityHigh)}
	return &p
}

// createSuppression is the "Suppress similar" form of the alert page
// (POST /suppressions): it stores the rule and redirects to the list.
func (h *handler) createSuppression(c echo.Context) error {
	if _, err := h.createRule(c); err != nil {
		return err
	}
	return h.redirectFlash(c, "/suppressions", "suppression_created")
}

// deleteSuppression is the list's delete button (POST
// /suppressions/:id/delete).
func (h *handler) deleteSuppression(c echo.Context) error {
	if _, err := h.deleteRule(c); err != nil {
		return err
	}
	return h.redirectFlash(c, "/suppressions", "suppression_deleted")
}

// apiSuppressions answers GET /api/v1/suppressions.
//
// No parameters. Response 200: {suppressions: [suppressionView]}, the
// active rules then the expired ones, each newest first; values detect
// ignores as invalid are left out.
func (h *handler) apiSuppressions(c echo.Context) error {
	l, err := h.loadSuppressions(c.Request().Context())
	if err != nil {
		return err
	}
	out := append(append(make([]suppressionView, 0, len(l.Active)+len(l.Expired)), l.Active...), l.Expired...)
	return c.JSON(http.StatusOK, map[string]any{"suppressions": out})
}

// apiCreateSuppression answers POST /api/v1/suppressions.
//
// Body (JSON or form): detector (a name or *), app, subject, ip_prefix,
// asn (at least one), action (silence or lower), severity (for lower),
// reason, expires_at (RFC 3339, at most 90 days ahead). The owner is the
// token's or user's name. Response 201: suppressionView; 400 naming the
// invalid field.
func (h *handler) apiCreateSuppression(c echo.Context) error {
	r, err := h.createRule(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, suppressionView{SuppressionRule: r, Active: true})
}

// apiDeleteSuppression answers DELETE /api/v1/suppressions/{id}: 204, or
// 404 when there is no such rule.
func (h *handler) apiDeleteSuppression(c echo.Context) error {
	if _, err := h.deleteRule(c); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
