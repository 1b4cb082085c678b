package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/sessionmon/sessionmon/schemas"
)

// tokensView is the API tokens page's data.
type tokensView struct {
	Tokens []tokenRow
	// Created is the token just made, shown this once.
	Created *createdToken
	Roles   []string
	// DefaultDays and MaxDays bound the lifetime field.
	DefaultDays, MaxDays int
}

type tokenRow struct {
	ID, Name, Role, CreatedBy string
	Created, Expires          time.Time
	Expired                   bool
	// Refused is a record not made by this dashboard (its MAC does not
	// verify): it authenticates nothing and can only be deleted.
	Refused bool
}

type createdToken struct {
	Name, Role, Token string
	Expires           time.Time
}

// showTokens lists the API tokens (admin).
func (h *handler) showTokens(c echo.Context) error {
	return h.renderTokens(c, http.StatusOK, nil)
}

func (h *handler) renderTokens(c echo.Context, status int, created *createdToken) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
	defer cancel()
	list, err := h.auth.tokens.list(ctx)
	if err != nil {
		return err
	}
	now := h.now()
	v := tokensView{Created: created, Roles: []string{RoleViewer.String(), RoleAnalyst.String(), RoleAdmin.String()},
		DefaultDays: int(DefaultTokenTTL / (24 * time.Hour)), MaxDays: int(MaxTokenTTL / (24 * time.Hour))}
	for _, t := range list {
		if t.Refused {
			v.Tokens = append(v.Tokens, tokenRow{ID: t.ID, Refused: true})
			continue
		}
		v.Tokens = append(v.Tokens, tokenRow{ID: t.ID, Name: t.Name, Role: t.Role.String(), CreatedBy: t.CreatedBy,
			Created: t.Created, Expires: t.Expires, Expired: !now.Before(t.Expires)})
	}
	return h.page(c, status, viewAPITokenList, v)
}

// createToken makes an API token (admin, after re-authentication) and
// shows it once; only its SHA-256 is kept.
func (h *handler) createToken(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	if name == "" || len(name) > maxTokenNameLen || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return badParam("name", "must be 1-%d printable characters", maxTokenNameLen)
	}
	role, err := ParseRole(c.FormValue("role"))
	if err != nil {
		return badParam("role", "must be viewer, analyst or admin")
	}
	days := int(DefaultTokenTTL / (24 * time.Hour))
	if s := c.FormValue("expires_days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || time.Duration(n)*24*time.Hour > MaxTokenTTL {
			return badParam("expires_days", "must be a whole number of days from 1 to %d", int(MaxTokenTTL/(24*time.Hour)))
		}
		days = n
	}
	p := currentPrincipal(c)
	now := h.now().UTC()
	t := apiToken{Name: name, Role: role, Created: now, Expires: now.Add(time.Duration(days) * 24 * time.Hour), CreatedBy: p.Name}
	ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
	defer cancel()
	raw, t, err := h.auth.tokens.create(ctx, t)
	if err != nil {
		return err
	}
	h.audit(c, "token.create", "token:"+t.ID, auditSuccess,
		fmt.Sprintf("name=%q role=%s expires=%s", name, role, t.Expires.Format(time.RFC3339)))
	h.auth.mon.tokenEvent(c, schemas.TokenIssued, p.Name, sessionIDOf(c), t, now)
	return h.renderTokens(c, http.StatusCreated, &createdToken{Name: name, Role: role.String(), Token: raw, Expires: t.Expires})
}

// revokeToken deletes an API token (admin, after re-authentication): it
// stops working at once, in every dashboard process.
func (h *handler) revokeToken(c echo.Context) error {
	id := c.Param("id")
	ctx, cancel := context.WithTimeout(c.Request().Context(), storeTimeout)
	defer cancel()
	t, err := h.auth.tokens.revoke(ctx, id)
	if errors.Is(err, errNoToken) {
		return echo.NewHTTPError(http.StatusNotFound, "id: no such API token")
	}
	if err != nil {
		return err
	}
	h.audit(c, "token.revoke", "token:"+t.ID, auditSuccess, fmt.Sprintf("name=%q", t.Name))
	h.auth.mon.tokenEvent(c, schemas.TokenRevoked, currentPrincipal(c).Name, sessionIDOf(c), t, h.now())
	return h.redirectFlash(c, "/tokens", "token_revoked")
}

func sessionIDOf(c echo.Context) string {
	if as := sessionOf(c); as != nil {
		return as.id
	}
	return ""
}
